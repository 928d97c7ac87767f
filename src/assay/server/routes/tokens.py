"""/v1/tokens, /v1/clients/{id} (teams), their users and tokens, and the audit log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Response

from assay.access import Access, MemberUpdate, NameUpdate, TokenCreate, TokenUpdate, UserCreate
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


@router.post("/training_runs/{run_id}/tokens")
def create_training_run_token(run_id: str, acc: Access = Depends(access),
                              p: Principal = Depends(writer)) -> dict[str, Any]:
    """A read-only share token for this training run (SigOpt's training run tokens)."""
    return acc.create_token({"training_run": run_id}, p)


@router.get("/clients/{client_id}")
def get_client(client_id: str, acc: Access = Depends(access), p: Principal = Depends(reader)) -> dict[str, Any]:
    return acc.get_client(client_id, p)


@router.put("/clients/{client_id}")
def update_client(client_id: str, body: NameUpdate, acc: Access = Depends(access),
                  p: Principal = Depends(reader)) -> dict[str, Any]:
    """Rename a team (its admins, owners of its organization)."""
    return acc.update_client(client_id, body, p)


@router.get("/clients/{client_id}/users")
def list_users(client_id: str, acc: Access = Depends(access), p: Principal = Depends(reader)) -> dict[str, Any]:
    """The team's users, each with its role in this team."""
    return _page(acc.list_users(client_id, p))


@router.post("/clients/{client_id}/users")
def create_user(client_id: str, body: UserCreate, acc: Access = Depends(access),
                p: Principal = Depends(reader)) -> dict[str, Any]:
    """Add a user to the team: a new user, or one of the organization's users (by email)."""
    return acc.create_user(body, p, client_id)


@router.put("/clients/{client_id}/users/{user_id}")
def update_member(client_id: str, user_id: str, body: MemberUpdate, acc: Access = Depends(access),
                  p: Principal = Depends(reader)) -> dict[str, Any]:
    """Change the user's role in this team."""
    return acc.update_member(client_id, user_id, body, p)


@router.delete("/clients/{client_id}/users/{user_id}", status_code=204)
def remove_member(client_id: str, user_id: str, acc: Access = Depends(access),
                  p: Principal = Depends(reader)) -> Response:
    """Take the user out of the team (its tokens there are revoked)."""
    acc.remove_member(client_id, user_id, p)
    return Response(status_code=204)


@router.get("/clients/{client_id}/tokens")
def list_client_tokens(client_id: str, include_revoked: bool = False, acc: Access = Depends(access),
                       p: Principal = Depends(reader)) -> dict[str, Any]:
    return _page(acc.list_tokens(p, include_revoked=include_revoked, client_id=client_id))


@router.post("/clients/{client_id}/tokens")
def create_client_token(client_id: str, body: TokenCreate, acc: Access = Depends(access),
                        p: Principal = Depends(reader)) -> dict[str, Any]:
    """A token of this team (its admins, owners of its organization)."""
    return acc.create_token(body, p, client_id=client_id)


@router.get("/audit")
def audit_log(limit: int | None = None, before: str | None = None, client: str | None = None,
              action: str | None = None, object_type: str | None = None, object_id: str | None = None,
              acc: Access = Depends(access), p: Principal = Depends(reader)) -> dict[str, Any]:
    """Who changed what in the team (or ``client``: a team of an organization the token owns), newest first.
    Filters: ``action`` (``experiment.delete``, or a prefix like ``token.``), ``object_type``, ``object_id``.
    Admin tokens only."""
    return acc.audit_log(p, limit=limit, before=before, client_id=client, action=action, object_type=object_type,
                         object_id=object_id)
