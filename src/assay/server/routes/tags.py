"""A team's run tags (/v1/clients/{id}/tags) and the tags of a run (/v1/training_runs/{id}/tags)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from assay import run_schemas as rs
from assay.server.deps import Principal, reader, writer
from assay.server.runs_deps import check_client, runs
from assay.service_runs import RunService

router = APIRouter(prefix="/v1", tags=["tags"])


@router.get("/clients/{client_id}/tags")
def list_tags(client_id: str, limit: int | None = None, before: str | None = None, after: str | None = None,
              svc: RunService = Depends(runs), p: Principal = Depends(reader)) -> dict[str, Any]:
    return svc.list_tags(client_id=check_client(client_id, p), limit=limit, before=before, after=after).to_json()


@router.post("/clients/{client_id}/tags")
def create_tag(client_id: str, body: rs.TagCreate, svc: RunService = Depends(runs),
               p: Principal = Depends(writer)) -> dict[str, Any]:
    return svc.create_tag(body, client_id=check_client(client_id, p), actor=p).to_json()


@router.get("/clients/{client_id}/tags/{tag_id}")
def get_tag(client_id: str, tag_id: str, svc: RunService = Depends(runs),
            p: Principal = Depends(reader)) -> dict[str, Any]:
    return svc.get_tag(tag_id, client_id=check_client(client_id, p)).to_json()


@router.delete("/clients/{client_id}/tags/{tag_id}")
def delete_tag(client_id: str, tag_id: str, svc: RunService = Depends(runs),
               p: Principal = Depends(writer)) -> dict[str, Any]:
    """Delete the tag (it leaves every run); answers with the deleted tag."""
    return svc.delete_tag(tag_id, client_id=check_client(client_id, p), actor=p).to_json()


@router.post("/training_runs/{run_id}/tags")
def add_run_tag(run_id: str, body: rs.RunTagAdd, svc: RunService = Depends(runs),
                p: Principal = Depends(writer)) -> dict[str, Any]:
    return svc.add_run_tag(run_id, body, client_id=p.client_id).to_json()


@router.delete("/training_runs/{run_id}/tags/{tag_id}")
def remove_run_tag(run_id: str, tag_id: str, svc: RunService = Depends(runs),
                   p: Principal = Depends(writer)) -> dict[str, Any]:
    return svc.remove_run_tag(run_id, tag_id, client_id=p.client_id).to_json()
