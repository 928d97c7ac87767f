"""Shared FastAPI dependencies."""

from __future__ import annotations

from fastapi import Depends, Request

from assay.errors import Forbidden
from assay.server.auth import Principal, principal
from assay.service import Service

__all__ = ["service", "reader", "writer", "Principal"]


def service(request: Request) -> Service:
    return request.app.state.service


def reader(p: Principal = Depends(principal)) -> Principal:
    return p


def writer(p: Principal = Depends(principal)) -> Principal:
    if p.role == "read":
        raise Forbidden("this token is read-only")
    return p
