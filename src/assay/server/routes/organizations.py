"""/v1/organizations/{id} (above teams) and /v1/users/{id}."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from assay.access import Access, NameUpdate, UserUpdate
from assay.server.deps import Principal, access, reader

router = APIRouter(prefix="/v1", tags=["organizations"])


def _page(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"object": "pagination", "count": len(items), "data": items, "paging": {"before": None, "after": None}}


@router.get("/organizations/{organization_id}")
def get_organization(organization_id: str, acc: Access = Depends(access),
                     p: Principal = Depends(reader)) -> dict[str, Any]:
    """The organization of the token's team."""
    return acc.get_organization(organization_id, p)


@router.put("/organizations/{organization_id}")
def update_organization(organization_id: str, body: NameUpdate, acc: Access = Depends(access),
                        p: Principal = Depends(reader)) -> dict[str, Any]:
    """Rename the organization (owners)."""
    return acc.update_organization(organization_id, body, p)


@router.get("/organizations/{organization_id}/clients")
def organization_clients(organization_id: str, acc: Access = Depends(access),
                         p: Principal = Depends(reader)) -> dict[str, Any]:
    """The organization's teams (owners see all; others their own)."""
    return _page(acc.organization_clients(organization_id, p))


@router.post("/organizations/{organization_id}/clients")
def create_organization_client(organization_id: str, body: NameUpdate, acc: Access = Depends(access),
                               p: Principal = Depends(reader)) -> dict[str, Any]:
    """A new team in the organization (owners)."""
    return acc.create_organization_client(organization_id, body, p)


@router.get("/organizations/{organization_id}/memberships")
def organization_memberships(organization_id: str, acc: Access = Depends(access),
                             p: Principal = Depends(reader)) -> dict[str, Any]:
    """The organization's users: owners and members (owners only)."""
    return _page(acc.organization_memberships(organization_id, p))


@router.get("/users/{user_id}")
def get_user(user_id: str, acc: Access = Depends(access), p: Principal = Depends(reader)) -> dict[str, Any]:
    return acc.get_user(user_id, p)


@router.put("/users/{user_id}")
def update_user(user_id: str, body: UserUpdate, acc: Access = Depends(access),
                p: Principal = Depends(reader)) -> dict[str, Any]:
    return acc.update_user(user_id, body, p)


@router.get("/users/{user_id}/permissions")
def user_permissions(user_id: str, acc: Access = Depends(access), p: Principal = Depends(reader)) -> dict[str, Any]:
    """The user's teams and its role in each (those the token may see)."""
    return _page(acc.user_permissions(user_id, p))


@router.get("/users/{user_id}/memberships")
def user_memberships(user_id: str, acc: Access = Depends(access), p: Principal = Depends(reader)) -> dict[str, Any]:
    """The user's organizations (owner or member)."""
    return _page(acc.user_memberships(user_id, p))
