"""``create_app(settings)``: the FastAPI application, with no module-level state."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from assay import __version__
from assay.config import Settings
from assay.errors import AssayError
from assay.schemas import _loc
from assay.service import Service
from assay.store import Store

__all__ = ["create_app"]

log = logging.getLogger("assay.server")


def _validation_message(exc: RequestValidationError) -> tuple[str | None, str]:
    errors = exc.errors()
    if not errors:
        return None, "Invalid request"
    first = errors[0]
    loc = tuple(first.get("loc", ()))
    if loc and loc[0] in ("body", "query", "path"):
        loc = loc[1:]
    loc = tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or "function-" in p)))
    field = _loc(loc) or None
    kind = first.get("type", "")
    if kind == "json_invalid":
        return None, "The request body is not valid JSON"
    if kind == "missing" and not loc:
        return None, "A JSON request body is required"
    msg = first.get("msg", "invalid")
    if kind == "extra_forbidden":
        msg = "unknown field"
    elif kind == "finite_number":
        msg = "must be a finite number"
    return field, f"Invalid {field or 'body'}: {msg}"


def create_app(settings: Settings | None = None, *, service: Service | None = None) -> FastAPI:
    """Build the app. Pass ``service`` to share one with an embedded caller."""
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = app.state.service is None
        if own:
            store = Store(settings.resolved_database_url)
            store.ensure_schema()
            app.state.service = Service(store, seed=settings.seed)
        for hook in app.state.startup:
            hook(app)
        try:
            yield
        finally:
            for hook in app.state.shutdown:
                hook(app)
            if own:
                app.state.service.store.dispose()

    app = FastAPI(title="assay", version=__version__, lifespan=lifespan,
                  description="Bayesian optimization service with a SigOpt-compatible API v1.")
    app.state.settings = settings
    app.state.service = service
    app.state.startup = []
    app.state.shutdown = []

    @app.exception_handler(AssayError)
    async def _assay_error(_: Request, exc: AssayError) -> JSONResponse:
        headers = {"Retry-After": str(int(getattr(exc, "retry_after", 1)))} if exc.status == 429 else None
        return JSONResponse(exc.to_json(), status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        field, msg = _validation_message(exc)
        body: dict[str, Any] = {"object": "error", "status": 422, "message": msg}
        if field:
            body["field"] = field
        return JSONResponse(body, status_code=422)

    @app.exception_handler(ValidationError)
    async def _pydantic_error(_: Request, exc: ValidationError) -> JSONResponse:
        return JSONResponse({"object": "error", "status": 422, "message": str(exc.errors()[0]["msg"])},
                            status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return JSONResponse({"object": "error", "status": 500, "message": "Internal server error"},
                            status_code=500)

    @app.get("/health", tags=["meta"])
    def health() -> dict[str, Any]:
        return {"object": "health", "status": "ok", "version": __version__}

    from assay.server.routes import experiments, observations, suggestions

    for mod in (experiments, suggestions, observations):
        app.include_router(mod.router)
    return app
