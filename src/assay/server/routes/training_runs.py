"""Training runs and their checkpoints: /v1/training_runs, /v1/clients/{id}/projects/{ref}/training_runs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request, Response

from assay import run_schemas as rs
from assay.server.deps import Principal, reader, writer
from assay.server.runs_deps import check_client, runs
from assay.service_runs import RunService

router = APIRouter(prefix="/v1", tags=["training_runs"])


def _reply(request: Request, obj: Any) -> Any:
    """SigOpt's client asks for no body with ``X-Response-Content: skip``."""
    if request.headers.get("x-response-content", "").lower() == "skip":
        return Response(status_code=204)
    return obj.to_json()


# -- inside a project --------------------------------------------------------------------------
@router.post("/clients/{client_id}/projects/{project}/training_runs")
def create_run(client_id: str, project: str, body: rs.TrainingRunIn, svc: RunService = Depends(runs),
               p: Principal = Depends(writer)) -> dict[str, Any]:
    return svc.create_run(project, body, client_id=check_client(client_id, p)).to_json()


@router.post("/clients/{client_id}/projects/{project}/training_runs/batch")
def create_runs_batch(client_id: str, project: str, body: rs.TrainingRunBatch, svc: RunService = Depends(runs),
                      p: Principal = Depends(writer)) -> dict[str, Any]:
    return svc.create_runs_batch(project, body, client_id=check_client(client_id, p)).to_json()


@router.get("/clients/{client_id}/projects/{project}/training_runs")
def list_project_runs(client_id: str, project: str, filters: str | None = None, state: str | None = None,
                      experiment: str | None = None, limit: int | None = None, before: str | None = None,
                      after: str | None = None, sort: str | None = None, ascending: str | None = None,
                      svc: RunService = Depends(runs),
                      p: Principal = Depends(reader)) -> dict[str, Any]:
    return svc.list_runs(client_id=check_client(client_id, p), project=project, experiment=experiment,
                         filters=filters, state=state, limit=limit, before=before, after=after, sort=sort,
                         ascending=ascending).to_json()


@router.get("/clients/{client_id}/training_runs")
def list_client_runs(client_id: str, filters: str | None = None, state: str | None = None,
                     experiment: str | None = None, limit: int | None = None, before: str | None = None,
                     after: str | None = None, sort: str | None = None, ascending: str | None = None,
                     svc: RunService = Depends(runs),
                     p: Principal = Depends(reader)) -> dict[str, Any]:
    return svc.list_runs(client_id=check_client(client_id, p), experiment=experiment, filters=filters, state=state,
                         limit=limit, before=before, after=after, sort=sort, ascending=ascending).to_json()


@router.post("/projects/{project}/training_runs")
def create_run_in_project(project: str, body: rs.TrainingRunIn, svc: RunService = Depends(runs),
                          p: Principal = Depends(writer)) -> dict[str, Any]:
    return svc.create_run(project, body, client_id=p.client_id).to_json()


@router.get("/projects/{project}/training_runs")
def list_runs_in_project(project: str, filters: str | None = None, state: str | None = None,
                         experiment: str | None = None, limit: int | None = None, before: str | None = None,
                         after: str | None = None, sort: str | None = None, ascending: str | None = None,
                         svc: RunService = Depends(runs),
                         p: Principal = Depends(reader)) -> dict[str, Any]:
    return svc.list_runs(client_id=p.client_id, project=project, experiment=experiment, filters=filters,
                         state=state, limit=limit, before=before, after=after, sort=sort,
                         ascending=ascending).to_json()


# -- one run -----------------------------------------------------------------------------------
@router.get("/training_runs/{run_id}")
def get_run(run_id: str, svc: RunService = Depends(runs), p: Principal = Depends(reader)) -> dict[str, Any]:
    return svc.get_run(run_id, client_id=p.client_id).to_json()


@router.put("/training_runs/{run_id}")
def replace_run(run_id: str, request: Request, body: rs.TrainingRunIn = Body(...), svc: RunService = Depends(runs),
                p: Principal = Depends(writer)) -> Any:
    return _reply(request, svc.update_run(run_id, body, client_id=p.client_id, merge=False, actor=p))


@router.api_route("/training_runs/{run_id}", methods=["MERGE"])
def merge_run(run_id: str, request: Request, body: rs.TrainingRunIn = Body(...), svc: RunService = Depends(runs),
              p: Principal = Depends(writer)) -> Any:
    return _reply(request, svc.update_run(run_id, body, client_id=p.client_id, merge=True, actor=p))


@router.delete("/training_runs/{run_id}", status_code=204)
def archive_run(run_id: str, svc: RunService = Depends(runs), p: Principal = Depends(writer)) -> Response:
    svc.delete_run(run_id, client_id=p.client_id, actor=p)
    return Response(status_code=204)


# -- checkpoints -------------------------------------------------------------------------------
@router.post("/training_runs/{run_id}/checkpoints")
def create_checkpoint(run_id: str, request: Request, body: rs.CheckpointCreate, svc: RunService = Depends(runs),
                      p: Principal = Depends(writer)) -> Any:
    return _reply(request, svc.create_checkpoint(run_id, body, client_id=p.client_id))


@router.get("/training_runs/{run_id}/checkpoints")
def list_checkpoints(run_id: str, limit: int | None = None, before: str | None = None, after: str | None = None,
                     svc: RunService = Depends(runs), p: Principal = Depends(reader)) -> dict[str, Any]:
    return svc.list_checkpoints(run_id, client_id=p.client_id, limit=limit, before=before, after=after).to_json()


@router.get("/training_runs/{run_id}/checkpoints/{checkpoint_id}")
def get_checkpoint(run_id: str, checkpoint_id: str, svc: RunService = Depends(runs),
                   p: Principal = Depends(reader)) -> dict[str, Any]:
    return svc.get_checkpoint(run_id, checkpoint_id, client_id=p.client_id).to_json()
