"""Dependencies of the run-tracking routes."""

from __future__ import annotations

from fastapi import Request

from assay.errors import NotFound
from assay.server.auth import Principal
from assay.service_runs import RunService

__all__ = ["runs", "check_client"]


async def runs(request: Request) -> RunService:
    """The app's :class:`RunService` (built on first use over the app's core service)."""
    state = request.app.state
    current = getattr(state, "runs", None)
    if current is None or current.svc is not state.service:
        settings = state.settings
        current = RunService(state.service, settings.artifact_dir,
                             max_file_bytes=getattr(settings, "max_file_bytes", 256 * 1024 * 1024))
        state.runs = current
    return current


def check_client(client_id: str, p: Principal) -> int:
    """The caller's client id; any other client in a URL answers 404."""
    if client_id != str(p.client_id):
        raise NotFound(f"client {client_id} does not exist", field="client")
    return p.client_id
