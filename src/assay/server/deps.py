"""Shared FastAPI dependencies."""

from __future__ import annotations

from fastapi import Depends, Request

from assay.access import Access
from assay.errors import Forbidden
from assay.server.auth import Principal, principal
from assay.service import Service

__all__ = ["service", "access", "reader", "writer", "admin", "Principal"]


def service(request: Request) -> Service:
    return request.app.state.service


def access(request: Request) -> Access:
    """Token/team use cases (available with and without auth)."""
    acc = getattr(request.app.state, "access", None)
    if acc is None:
        acc = request.app.state.access = Access(request.app.state.service.store)
    return acc


def reader(p: Principal = Depends(principal)) -> Principal:
    return p


def writer(p: Principal = Depends(principal)) -> Principal:
    if p.role == "read":
        raise Forbidden("this token is read-only")
    return p


def admin(p: Principal = Depends(principal)) -> Principal:
    if p.role != "admin":
        raise Forbidden("this needs an admin token")
    return p
