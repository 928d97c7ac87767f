"""A direct path for the three requests every worker loop makes (the load's hot path).

``POST /v1/experiments/{id}/suggestions``, ``POST /v1/experiments/{id}/observations`` and
``GET /v1/experiments/{id}`` are answered here, in front of FastAPI's router: no route matching over
every router, no dependency solving, no parameter models. Half the server's CPU per request was
that machinery; what remains is the same auth, the same service call (in the same thread pool) and
the same response body.

Behaviour is the FastAPI route's: this path only serves a request whose body is a JSON object that
validates against the route's schema (or, for a suggestion, an empty body). Anything else — no or
another content type, invalid JSON, a body the schema refuses, HEAD, a ``root_path`` — is handed
to FastAPI unchanged (the body already read is replayed), so every error it reports comes from the
same code as before. Errors raised by auth or the service map to the same responses as the app's
exception handlers (:func:`assay.server.app.error_response`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assay import schemas
from assay.access import Principal
from assay.errors import AssayError, Forbidden
from assay.server.auth import principal

__all__ = ["HotRoutes"]

_EXPERIMENT = re.compile(r"/v1/experiments/([^/]+)")
_CHILD = re.compile(r"/v1/experiments/([^/]+)/(suggestions|observations)")


def _suggest(svc: Any, p: Principal, eid: str, body: Any, key: str | None) -> dict[str, Any]:
    return svc.create_suggestion(eid, body, client_id=p.client_id, random_only=p.development,
                                 idempotency_key=key).to_json()


def _observe(svc: Any, p: Principal, eid: str, body: Any, key: str | None) -> dict[str, Any]:
    return svc.create_observation(eid, body, client_id=p.client_id, idempotency_key=key).to_json()


def _experiment(svc: Any, p: Principal, eid: str, body: Any, key: str | None) -> dict[str, Any]:
    return svc.get_experiment(eid, client_id=p.client_id).to_json()


#: (handler, body schema or None for no body, body optional, needs a writer)
_Route = tuple[Callable[..., dict[str, Any]], type[BaseModel] | None, bool, bool]
_ROUTES: dict[tuple[str, str], _Route] = {
    ("POST", "suggestions"): (_suggest, schemas.SuggestionCreate, True, True),
    ("POST", "observations"): (_observe, schemas.ObservationCreate, False, True),
    ("GET", ""): (_experiment, None, True, False),
}


def _json_type(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return value.split(b";", 1)[0].strip().lower() == b"application/json"
    return False


class HotRoutes:
    """Serve the hot requests directly; pass everything else (and every doubt) to ``app``."""

    def __init__(self, app: ASGIApp, error_response: Callable[[Request, Exception], Response]) -> None:
        self.app = app
        self.error_response = error_response

    def _route(self, scope: Scope) -> tuple[_Route, str] | None:
        if scope["type"] != "http" or scope.get("root_path"):
            return None
        path, method = scope["path"], scope["method"]
        if method == "GET":
            m = _EXPERIMENT.fullmatch(path)
            return (_ROUTES[("GET", "")], m.group(1)) if m else None
        if method == "POST":
            m = _CHILD.fullmatch(path)
            return (_ROUTES[("POST", m.group(2))], m.group(1)) if m else None
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = self._route(scope)
        if found is None:
            await self.app(scope, receive, send)
            return
        (handler, model, optional, write), eid = found
        request = Request(scope, receive)
        try:
            raw = b""
            if model is not None:
                raw = await request.body()
                body: Any = None
                if raw:
                    if not _json_type(scope):
                        return await self._fallback(scope, receive, send, raw)
                    try:
                        body = json.loads(raw)
                        if not isinstance(body, dict):
                            return await self._fallback(scope, receive, send, raw)
                        body = model.model_validate(body)
                    except (ValueError, RecursionError, ValidationError):  # (JSONDecodeError is a ValueError)
                        return await self._fallback(scope, receive, send, raw)
                elif not optional:
                    return await self._fallback(scope, receive, send, raw)
            p = await principal(request)
            if write and p.role == "read":
                raise Forbidden("this token is read-only")
            key = request.headers.get("idempotency-key")
            svc = request.app.state.service
            out = await run_in_threadpool(handler, svc, p, eid, body if model is not None else None, key)
            response: Response = JSONResponse(out)
        except (AssayError, StarletteHTTPException, ValidationError) as exc:
            response = self.error_response(request, exc)
        await response(scope, receive, send)

    async def _fallback(self, scope: Scope, receive: Receive, send: Send, raw: bytes) -> None:
        """Hand the request to FastAPI, replaying the body this path already read."""
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
