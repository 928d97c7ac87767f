"""/v1/experiments/{id}/suggestions and queued_suggestions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Header, Response

from assay import schemas
from assay.server.deps import Principal, json_response, reader, service, writer
from assay.service import Service

router = APIRouter(prefix="/v1/experiments/{experiment_id}", tags=["suggestions"])


@router.post("/suggestions")
def create_suggestion(experiment_id: str, body: schemas.SuggestionCreate | None = Body(None),
                      idempotency_key: str | None = Header(None, alias="Idempotency-Key"),
                      svc: Service = Depends(service), p: Principal = Depends(writer)) -> Response:
    return json_response(svc.create_suggestion(experiment_id, body, client_id=p.client_id,
                                               random_only=p.development,
                                               idempotency_key=idempotency_key).to_json())


@router.get("/suggestions")
def list_suggestions(experiment_id: str, state: str | None = None, limit: int | None = None,
                     before: str | None = None, after: str | None = None, svc: Service = Depends(service),
                     p: Principal = Depends(reader)) -> dict[str, Any]:
    return svc.list_suggestions(experiment_id, state=state, limit=limit, before=before, after=after,
                                client_id=p.client_id).to_json()


@router.delete("/suggestions", status_code=204)
def delete_suggestions(experiment_id: str, state: str | None = None, svc: Service = Depends(service),
                       p: Principal = Depends(writer)) -> Response:
    svc.delete_suggestions(experiment_id, state=state, client_id=p.client_id, actor=p)
    return Response(status_code=204)


@router.get("/suggestions/{suggestion_id}")
def get_suggestion(experiment_id: str, suggestion_id: str, svc: Service = Depends(service),
                   p: Principal = Depends(reader)) -> Response:
    return json_response(svc.get_suggestion(experiment_id, suggestion_id, client_id=p.client_id).to_json())


@router.put("/suggestions/{suggestion_id}")
def update_suggestion(experiment_id: str, suggestion_id: str, body: schemas.SuggestionUpdate = Body(...),
                      svc: Service = Depends(service), p: Principal = Depends(writer)) -> dict[str, Any]:
    return svc.update_suggestion(experiment_id, suggestion_id, body, client_id=p.client_id).to_json()


@router.delete("/suggestions/{suggestion_id}", status_code=204)
def delete_suggestion(experiment_id: str, suggestion_id: str, svc: Service = Depends(service),
                      p: Principal = Depends(writer)) -> Response:
    svc.delete_suggestions(experiment_id, suggestion_id, client_id=p.client_id, actor=p)
    return Response(status_code=204)


@router.post("/queued_suggestions")
def create_queued(experiment_id: str, body: schemas.QueuedSuggestionCreate, svc: Service = Depends(service),
                  p: Principal = Depends(writer)) -> dict[str, Any]:
    return svc.create_queued(experiment_id, body, client_id=p.client_id).to_json()


@router.get("/queued_suggestions")
def list_queued(experiment_id: str, svc: Service = Depends(service),
                p: Principal = Depends(reader)) -> dict[str, Any]:
    return svc.list_queued(experiment_id, client_id=p.client_id).to_json()


@router.get("/queued_suggestions/{queued_id}")
def get_queued(experiment_id: str, queued_id: str, svc: Service = Depends(service),
               p: Principal = Depends(reader)) -> dict[str, Any]:
    return svc.get_queued(experiment_id, queued_id, client_id=p.client_id).to_json()


@router.delete("/queued_suggestions/{queued_id}", status_code=204)
def delete_queued(experiment_id: str, queued_id: str, svc: Service = Depends(service),
                  p: Principal = Depends(writer)) -> Response:
    svc.delete_queued(experiment_id, queued_id, client_id=p.client_id, actor=p)
    return Response(status_code=204)
