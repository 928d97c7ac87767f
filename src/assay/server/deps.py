"""Shared FastAPI dependencies."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse

from assay.access import Access
from assay.errors import Forbidden
from assay.server.auth import Principal, principal
from assay.service import Service

__all__ = ["service", "access", "reader", "writer", "admin", "Principal", "json_response"]


# (async: these run on the event loop instead of a worker thread each; none of them blocks)
async def service(request: Request) -> Service:
    return request.app.state.service


async def access(request: Request) -> Access:
    """Token/team use cases (available with and without auth)."""
    acc = getattr(request.app.state, "access", None)
    if acc is None:
        acc = request.app.state.access = Access(request.app.state.service.store)
    return acc


async def reader(p: Principal = Depends(principal)) -> Principal:
    return p


async def writer(p: Principal = Depends(principal)) -> Principal:
    if p.role == "read":
        raise Forbidden("this token is read-only")
    return p


async def admin(p: Principal = Depends(principal)) -> Principal:
    if p.role != "admin":
        raise Forbidden("this needs an admin token")
    return p


def json_response(body: dict[str, Any]) -> JSONResponse:
    """The body serialized once with the standard library, bypassing FastAPI's validation of the
    returned dict against the route's annotation (hot routes: their bodies are built by ``to_json``)."""
    return JSONResponse(body)
