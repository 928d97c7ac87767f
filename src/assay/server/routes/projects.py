"""/v1/clients/{id}/projects and the experiments inside a project."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends

from assay import run_schemas as rs
from assay import schemas
from assay.server.deps import Principal, reader, writer
from assay.server.deps import service as core_service
from assay.server.runs_deps import check_client, runs
from assay.service import Service
from assay.service_runs import RunService

router = APIRouter(prefix="/v1/clients/{client_id}", tags=["projects"])


@router.post("/projects")
def create_project(client_id: str, body: rs.ProjectCreate, svc: RunService = Depends(runs),
                   p: Principal = Depends(writer)) -> dict[str, Any]:
    return svc.create_project(body, client_id=check_client(client_id, p), actor=p).to_json()


@router.get("/projects")
def list_projects(client_id: str, limit: int | None = None, before: str | None = None, after: str | None = None,
                  svc: RunService = Depends(runs), p: Principal = Depends(reader)) -> dict[str, Any]:
    return svc.list_projects(client_id=check_client(client_id, p), limit=limit, before=before,
                             after=after).to_json()


@router.get("/projects/{project}")
def get_project(client_id: str, project: str, svc: RunService = Depends(runs),
                p: Principal = Depends(reader)) -> dict[str, Any]:
    return svc.get_project(project, client_id=check_client(client_id, p)).to_json()


@router.put("/projects/{project}")
def update_project(client_id: str, project: str, body: rs.ProjectUpdate = Body(...),
                   svc: RunService = Depends(runs), p: Principal = Depends(writer)) -> dict[str, Any]:
    return svc.update_project(project, body, client_id=check_client(client_id, p), actor=p).to_json()


@router.get("/projects/{project}/experiments")
def project_experiments(client_id: str, project: str, state: str | None = None, limit: int | None = None,
                        before: str | None = None, after: str | None = None, svc: RunService = Depends(runs),
                        core: Service = Depends(core_service), p: Principal = Depends(reader)) -> dict[str, Any]:
    cid = check_client(client_id, p)
    svc.get_project(project, client_id=cid)
    return core.list_experiments(client_id=cid, state=state, project=project, limit=limit, before=before,
                                 after=after).to_json()


@router.post("/projects/{project}/aiexperiments")
def create_aiexperiment(client_id: str, project: str, body: schemas.ExperimentCreate,
                        svc: RunService = Depends(runs), p: Principal = Depends(writer)) -> dict[str, Any]:
    return svc.create_aiexperiment(project, body.model_dump(exclude_unset=True), client_id=check_client(client_id, p),
                                   development=p.development, actor=p)


@router.get("/projects/{project}/aiexperiments")
def project_aiexperiments(client_id: str, project: str, state: str | None = None, limit: int | None = None,
                          before: str | None = None, after: str | None = None, svc: RunService = Depends(runs),
                          p: Principal = Depends(reader)) -> dict[str, Any]:
    return svc.list_aiexperiments(client_id=check_client(client_id, p), project=project, state=state, limit=limit,
                                  before=before, after=after).to_json()


@router.get("/aiexperiments")
def client_aiexperiments(client_id: str, state: str | None = None, limit: int | None = None,
                         before: str | None = None, after: str | None = None, svc: RunService = Depends(runs),
                         p: Principal = Depends(reader)) -> dict[str, Any]:
    return svc.list_aiexperiments(client_id=check_client(client_id, p), state=state, limit=limit, before=before,
                                  after=after).to_json()
