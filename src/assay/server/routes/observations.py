"""/v1/experiments/{id}/observations."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Header, Response

from assay import schemas
from assay.server.deps import Principal, json_response, reader, service, writer
from assay.service import Service

router = APIRouter(prefix="/v1/experiments/{experiment_id}", tags=["observations"])


@router.post("/observations")
def create_observation(experiment_id: str, body: schemas.ObservationCreate,
                       idempotency_key: str | None = Header(None, alias="Idempotency-Key"),
                       svc: Service = Depends(service), p: Principal = Depends(writer)) -> Response:
    return json_response(svc.create_observation(experiment_id, body, client_id=p.client_id,
                                                idempotency_key=idempotency_key).to_json())


@router.post("/observations/batch")
def create_batch(experiment_id: str, body: schemas.ObservationBatch, svc: Service = Depends(service),
                 p: Principal = Depends(writer)) -> dict[str, Any]:
    return svc.create_observations_batch(experiment_id, body, client_id=p.client_id).to_json()


@router.get("/observations")
def list_observations(experiment_id: str, limit: int | None = None, before: str | None = None,
                      after: str | None = None, svc: Service = Depends(service),
                      p: Principal = Depends(reader)) -> dict[str, Any]:
    return svc.list_observations(experiment_id, limit=limit, before=before, after=after,
                                 client_id=p.client_id).to_json()


@router.delete("/observations", status_code=204)
def delete_observations(experiment_id: str, svc: Service = Depends(service),
                        p: Principal = Depends(writer)) -> Response:
    svc.delete_observations(experiment_id, client_id=p.client_id, actor=p)
    return Response(status_code=204)


@router.get("/observations/{observation_id}")
def get_observation(experiment_id: str, observation_id: str, svc: Service = Depends(service),
                    p: Principal = Depends(reader)) -> Response:
    return json_response(svc.get_observation(experiment_id, observation_id, client_id=p.client_id).to_json())


@router.put("/observations/{observation_id}")
def update_observation(experiment_id: str, observation_id: str, body: schemas.ObservationUpdate = Body(...),
                       svc: Service = Depends(service), p: Principal = Depends(writer)) -> dict[str, Any]:
    return svc.update_observation(experiment_id, observation_id, body, client_id=p.client_id, actor=p).to_json()


@router.delete("/observations/{observation_id}", status_code=204)
def delete_observation(experiment_id: str, observation_id: str, svc: Service = Depends(service),
                       p: Principal = Depends(writer)) -> Response:
    svc.delete_observations(experiment_id, observation_id, client_id=p.client_id, actor=p)
    return Response(status_code=204)
