"""/v1/aiexperiments: runs-only experiments inside a project."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Response

from assay import run_schemas as rs
from assay.server.deps import Principal, reader, writer
from assay.server.runs_deps import runs
from assay.service_runs import RunService

router = APIRouter(prefix="/v1/aiexperiments", tags=["aiexperiments"])


@router.get("")
def list_aiexperiments(state: str | None = None, project: str | None = None, limit: int | None = None,
                       before: str | None = None, after: str | None = None, svc: RunService = Depends(runs),
                       p: Principal = Depends(reader)) -> dict[str, Any]:
    return svc.list_aiexperiments(client_id=p.client_id, project=project, state=state, limit=limit, before=before,
                                  after=after).to_json()


@router.get("/{experiment_id}")
def get_aiexperiment(experiment_id: str, svc: RunService = Depends(runs),
                     p: Principal = Depends(reader)) -> dict[str, Any]:
    return svc.get_aiexperiment(experiment_id, client_id=p.client_id)


@router.put("/{experiment_id}")
def update_aiexperiment(experiment_id: str, body: dict[str, Any] = Body(...), svc: RunService = Depends(runs),
                        p: Principal = Depends(writer)) -> dict[str, Any]:
    return svc.update_aiexperiment(experiment_id, body, client_id=p.client_id, actor=p)


@router.delete("/{experiment_id}", status_code=204)
def delete_aiexperiment(experiment_id: str, include_runs: bool = False, svc: RunService = Depends(runs),
                        p: Principal = Depends(writer)) -> Response:
    svc.delete_aiexperiment(experiment_id, client_id=p.client_id, include_runs=include_runs, actor=p)
    return Response(status_code=204)


@router.post("/{experiment_id}/training_runs")
def create_run(experiment_id: str, body: rs.TrainingRunIn | None = Body(None), svc: RunService = Depends(runs),
               p: Principal = Depends(writer)) -> dict[str, Any]:
    return svc.create_aiexperiment_run(experiment_id, body, client_id=p.client_id,
                                       random_only=p.development).to_json()


@router.get("/{experiment_id}/best_training_runs")
def best_training_runs(experiment_id: str, svc: RunService = Depends(runs),
                       p: Principal = Depends(reader)) -> dict[str, Any]:
    return svc.best_training_runs(experiment_id, client_id=p.client_id).to_json()
