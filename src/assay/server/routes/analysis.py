"""/v1/experiments/{id}/stopping_criteria, metric_importances and importances."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from assay.server.deps import Principal, reader, service, writer
from assay.service import Service

router = APIRouter(prefix="/v1/experiments/{experiment_id}", tags=["analysis"])


@router.get("/stopping_criteria")
def stopping_criteria(experiment_id: str, svc: Service = Depends(service),
                      p: Principal = Depends(reader)) -> dict[str, Any]:
    return svc.stopping_criteria(experiment_id, client_id=p.client_id).to_json()


@router.get("/metric_importances")
def metric_importances(experiment_id: str, svc: Service = Depends(service),
                       p: Principal = Depends(reader)) -> dict[str, Any]:
    return svc.metric_importances(experiment_id, client_id=p.client_id).to_json()


@router.put("/metric_importances")
def recompute_metric_importances(experiment_id: str, svc: Service = Depends(service),
                                 p: Principal = Depends(writer)) -> dict[str, Any]:
    """Recompute now (SigOpt enqueues a recompute; ours is fast enough to answer with the result)."""
    return svc.metric_importances(experiment_id, client_id=p.client_id, recompute=True).to_json()


@router.get("/importances")
def importances(experiment_id: str, svc: Service = Depends(service),
                p: Principal = Depends(reader)) -> dict[str, Any]:
    return svc.importances(experiment_id, client_id=p.client_id)
