"""/v1/experiments and their results."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Response

from assay import schemas
from assay.errors import NotFound
from assay.server.deps import Principal, json_response, reader, service, writer
from assay.service import Service

router = APIRouter(prefix="/v1", tags=["experiments"])


def _own_client(client_id: str, p: Principal) -> None:
    """``/clients/{id}/...`` names the caller's own team, or nothing (404, never someone else's)."""
    if client_id != str(p.client_id) or p.kind == "share":
        raise NotFound(f"client {client_id} does not exist", field="client")


@router.post("/experiments")
def create_experiment(body: schemas.ExperimentCreate, svc: Service = Depends(service),
                      p: Principal = Depends(writer)) -> dict[str, Any]:
    return svc.create_experiment(body, client_id=p.client_id, development=p.development, actor=p).to_json()


@router.post("/clients/{client_id}/experiments")
def create_client_experiment(client_id: str, body: schemas.ExperimentCreate, svc: Service = Depends(service),
                             p: Principal = Depends(writer)) -> dict[str, Any]:
    _own_client(client_id, p)
    return svc.create_experiment(body, client_id=p.client_id, development=p.development, actor=p).to_json()


@router.get("/experiments")
def list_experiments(state: str | None = None, project: str | None = None, limit: int | None = None,
                     before: str | None = None, after: str | None = None, svc: Service = Depends(service),
                     p: Principal = Depends(reader)) -> dict[str, Any]:
    return svc.list_experiments(client_id=p.client_id, state=state, project=project, limit=limit,
                                before=before, after=after).to_json()


@router.get("/clients/{client_id}/experiments")
def list_client_experiments(client_id: str, state: str | None = None, limit: int | None = None,
                            before: str | None = None, after: str | None = None,
                            svc: Service = Depends(service), p: Principal = Depends(reader)) -> dict[str, Any]:
    _own_client(client_id, p)
    return svc.list_experiments(client_id=p.client_id, state=state, limit=limit, before=before,
                                after=after).to_json()


@router.get("/experiments/{experiment_id}")
def get_experiment(experiment_id: str, svc: Service = Depends(service),
                   p: Principal = Depends(reader)) -> Response:
    return json_response(svc.get_experiment(experiment_id, client_id=p.client_id).to_json())


@router.put("/experiments/{experiment_id}")
def update_experiment(experiment_id: str, body: schemas.ExperimentUpdate = Body(...),
                      svc: Service = Depends(service), p: Principal = Depends(writer)) -> dict[str, Any]:
    return svc.update_experiment(experiment_id, body, client_id=p.client_id, actor=p).to_json()


@router.delete("/experiments/{experiment_id}", status_code=204)
def delete_experiment(experiment_id: str, svc: Service = Depends(service),
                      p: Principal = Depends(writer)) -> Response:
    svc.delete_experiment(experiment_id, client_id=p.client_id, actor=p)
    return Response(status_code=204)


@router.get("/experiments/{experiment_id}/best_assignments")
def best_assignments(experiment_id: str, svc: Service = Depends(service),
                     p: Principal = Depends(reader)) -> dict[str, Any]:
    return svc.best_assignments(experiment_id, client_id=p.client_id).to_json()
