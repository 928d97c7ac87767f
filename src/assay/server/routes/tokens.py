"""/v1/tokens, /v1/clients/{id}, users and the audit log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Response

from assay.access import Access, TokenCreate, TokenUpdate, UserCreate
from assay.server.deps import Principal, access, admin, reader, writer

router = APIRouter(prefix="/v1", tags=["tokens"])


def _page(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"object": "pagination", "count": len(items), "data": items, "paging": {"before": None, "after": None}}


@router.get("/tokens")
def list_tokens(include_revoked: bool = False, acc: Access = Depends(access),
                p: Principal = Depends(admin)) -> dict[str, Any]:
    return _page(acc.list_tokens(p, include_revoked=include_revoked))


@router.post("/tokens")
def create_token(body: TokenCreate, acc: Access = Depends(access), p: Principal = Depends(writer)) -> dict[str, Any]:
    """A team token (admin), or a read-only share token for one experiment/training run (write)."""
    return acc.create_token(body, p)


@router.get("/tokens/{token_id}")
def get_token(token_id: str, acc: Access = Depends(access), p: Principal = Depends(reader)) -> dict[str, Any]:
    """``self`` is the calling token (the sigopt client reads its team from it)."""
    return acc.get_token(token_id, p)


@router.put("/tokens/{token_id}")
def update_token(token_id: str, body: TokenUpdate = Body(...), acc: Access = Depends(access),
                 p: Principal = Depends(reader)) -> dict[str, Any]:
    return acc.update_token(token_id, body, p)


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(token_id: str, acc: Access = Depends(access), p: Principal = Depends(reader)) -> Response:
    acc.revoke_token(token_id, p)
    return Response(status_code=204)


@router.post("/experiments/{experiment_id}/tokens")
def create_experiment_token(experiment_id: str, acc: Access = Depends(access),
                            p: Principal = Depends(writer)) -> dict[str, Any]:
    """A read-only share token for this experiment (SigOpt's experiment tokens)."""
    return acc.create_token({"experiment": experiment_id}, p)


@router.get("/clients/{client_id}")
def get_client(client_id: str, acc: Access = Depends(access), p: Principal = Depends(reader)) -> dict[str, Any]:
    return acc.get_client(client_id, p)


@router.get("/clients/{client_id}/users")
def list_users(client_id: str, acc: Access = Depends(access), p: Principal = Depends(reader)) -> dict[str, Any]:
    acc.get_client(client_id, p)
    return _page(acc.list_users(p))


@router.post("/clients/{client_id}/users")
def create_user(client_id: str, body: UserCreate, acc: Access = Depends(access),
                p: Principal = Depends(admin)) -> dict[str, Any]:
    acc.get_client(client_id, p)
    return acc.create_user(body, p)


@router.get("/audit")
def audit_log(limit: int | None = None, before: str | None = None, acc: Access = Depends(access),
              p: Principal = Depends(admin)) -> dict[str, Any]:
    """Who changed what in this team, newest first (admin tokens only)."""
    return acc.audit_log(p, limit=limit, before=before)


