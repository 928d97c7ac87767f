"""``create_app(settings)``: the FastAPI application, with no module-level state."""

from __future__ import annotations

import contextlib
import gc
import logging
import math
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assay import __version__
from assay.config import Settings
from assay.errors import AssayError
from assay.schemas import _loc, text_error
from assay.service import Service
from assay.store import Store

__all__ = ["create_app", "ERROR_RESPONSES", "error_response"]


class ErrorBody(BaseModel):
    """Every error the API returns (SigOpt's shape)."""

    object: Literal["error"] = "error"
    status: int
    message: str
    field: str | None = None


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in ((400, "Breaks a rule of the API"), (401, "Missing or invalid API token"),
                       (403, "The token's role does not allow this"), (404, "No such object (for this token)"),
                       (409, "Conflicts with stored state"), (413, "Request body too large"),
                       (414, "URL too long"), (431, "Request headers too large"),
                       (422, "Wrong types or shape"), (429, "Rate limit exceeded; see Retry-After"))
}

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
    elif (te := text_error(msg)) is not None:
        sub, msg = te
        field = ".".join(x for x in (field, sub) if x) or None
    return field, f"Invalid {field or 'body'}: {msg}"


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, declared (Content-Length) or streamed."""

    def __init__(self, app: ASGIApp, limit: int, exempt: Callable[[str], bool] | None = None) -> None:
        self.app = app
        self.limit = limit
        self.exempt = exempt  # paths with their own limit (file uploads: Settings.max_file_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.limit <= 0 or (self.exempt and self.exempt(scope.get("path", ""))):
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > self.limit:
                    await self._refuse(send, declared)
                    return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit:
                    raise StarletteHTTPException(413, f"request body larger than {self.limit} bytes")
            return msg

        await self.app(scope, limited, send)

    async def _refuse(self, send: Send, declared: int) -> None:
        msg = (f"request body larger than {self.limit} bytes" if declared >= 0
               else "invalid Content-Length header")
        status = 413 if declared >= 0 else 400
        body = JSONResponse({"object": "error", "status": status, "message": msg}, status_code=status)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"connection", b"close"),
                                (b"content-length", str(len(body.body)).encode())]})
        await send({"type": "http.response.body", "body": body.body})


# Request-line and header limits (a reverse proxy usually has tighter ones; these hold without one).
MAX_URL_BYTES = 8 * 1024
MAX_HEADER_BYTES = 8 * 1024
MAX_HEADERS_BYTES = 64 * 1024
MAX_HEADER_COUNT = 100


class CleanURLs:
    """Refuse malformed request lines and headers before any route runs.

    414 for a path + query string over :data:`MAX_URL_BYTES`; 431 for a header over
    :data:`MAX_HEADER_BYTES`, headers over :data:`MAX_HEADERS_BYTES` in all or more than
    :data:`MAX_HEADER_COUNT` of them; 400 for a path or query string carrying NUL bytes or
    invalid UTF-8 (databases refuse such text).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, message: str) -> None:
        resp = JSONResponse({"object": "error", "status": status, "message": message}, status_code=status)
        await resp(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            from urllib.parse import unquote_to_bytes

            raw = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
            if len(raw) + len(scope.get("query_string", b"")) > MAX_URL_BYTES:
                await self._refuse(scope, receive, send, 414,
                                   f"the URL (path and query string) is longer than {MAX_URL_BYTES} bytes")
                return
            headers = scope.get("headers", ())
            sizes = [len(k) + len(v) for k, v in headers]
            if len(sizes) > MAX_HEADER_COUNT or sum(sizes) > MAX_HEADERS_BYTES or max(sizes, default=0) > \
                    MAX_HEADER_BYTES:
                big = next((k.decode("latin-1") for k, v in headers if len(k) + len(v) > MAX_HEADER_BYTES), None)
                msg = (f"header {big!r} is longer than {MAX_HEADER_BYTES} bytes" if big else
                       f"too many or too large headers (at most {MAX_HEADER_COUNT}, {MAX_HEADERS_BYTES} bytes)")
                await self._refuse(scope, receive, send, 431, msg)
                return
            bad = False
            for part in (raw, scope.get("query_string", b"")):
                data = unquote_to_bytes(part.replace(b"+", b" "))
                try:
                    data.decode("utf-8")
                except UnicodeDecodeError:
                    bad = True
                bad = bad or b"\x00" in data
            if bad:
                await self._refuse(scope, receive, send, 400, "the URL contains NUL bytes or invalid UTF-8")
                return
        await self.app(scope, receive, send)


class SecurityHeaders:
    """Headers every response gets: no MIME sniffing, no framing (clickjacking), no referrer leaving
    the site; API responses (team data, one-time secrets) are never stored by caches."""

    COMMON = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
              (b"referrer-policy", b"same-origin")]

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = scope.get("path", "").startswith("/v1/")

        async def send_with_headers(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                headers = list(msg.get("headers", []))
                names = {k.lower() for k, _ in headers}
                headers += [h for h in self.COMMON if h[0] not in names]
                if api and b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                msg = {**msg, "headers": headers}
            await send(msg)

        await self.app(scope, receive, send_with_headers)


def error_response(request: Request, exc: Exception) -> JSONResponse:
    """The response for an error raised by a route, auth or the service (also used by
    :class:`~assay.server.fast.HotRoutes`, which answers some requests before the router)."""
    if isinstance(exc, AssayError):
        headers = None
        if exc.status == 429:
            headers = {"Retry-After": str(max(1, math.ceil(getattr(exc, "retry_after", 1))))}
        elif exc.status == 401 and "x-requested-with" not in request.headers:
            # (the dashboard's scripts send X-Requested-With: a Basic challenge would pop the browser's own dialog)
            headers = {"WWW-Authenticate": 'Basic realm="assay", charset="UTF-8"'}
        return JSONResponse(exc.to_json(), status_code=exc.status, headers=headers)
    if isinstance(exc, StarletteHTTPException):
        message = exc.detail if isinstance(exc.detail, str) else "HTTP error"
        return JSONResponse({"object": "error", "status": exc.status_code, "message": message},
                            status_code=exc.status_code, headers=getattr(exc, "headers", None))
    if isinstance(exc, ValidationError):
        return JSONResponse({"object": "error", "status": 422, "message": str(exc.errors()[0]["msg"])},
                            status_code=422)
    raise exc


def _is_file_upload(path: str) -> bool:
    return path.startswith("/v1/files/") and path.endswith("/upload")


def _install_auth(app: FastAPI, settings: Settings) -> None:
    from assay.access import Access
    from assay.server.auth import RateLimiter, make_authenticator

    access = Access(app.state.service.store, cache_seconds=settings.auth_cache_seconds)
    app.state.access = access
    # Each of the server's processes allows its share: together they allow the configured limit.
    share = max(1, settings.workers)
    failures = None
    if settings.auth_failure_limit > 0:
        failures = RateLimiter(settings.auth_failure_limit / share,
                               max(1, round(settings.auth_failure_burst / share)), "failed authentications")
    app.state.authenticate = make_authenticator(
        access, RateLimiter(settings.rate_limit / share, max(1, round(settings.rate_burst / share))), failures)


def _freeze_heap() -> None:
    """Exempt what exists now (the app, imported libraries) from garbage collection. A full
    collection walks every tracked object: with torch and BoTorch loaded that is hundreds of
    thousands, 0.1-0.5 s during which no request progresses (seen as p99 spikes)."""
    gc.collect()
    gc.freeze()


def create_app(settings: Settings | None = None, *, service: Service | None = None) -> FastAPI:
    """Build the app. Pass ``service`` to share one with an embedded caller."""
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = app.state.service is None
        if own:
            store = Store(settings.resolved_database_url, pool_size=settings.db_pool_size,
                          max_overflow=settings.db_max_overflow, read_pool_size=settings.db_read_pool_size)
            store.ensure_schema()
            app.state.service = Service(store, seed=settings.seed)
        if settings.auth:
            _install_auth(app, settings)
        for hook in app.state.startup:
            hook(app)
        if settings.freeze_heap:  # a server process of its own (not a test or a notebook embedding the app)
            _freeze_heap()
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
    if settings.precompute:
        from assay.supply import install

        install(app)

    @app.exception_handler(AssayError)
    async def _assay_error(request: Request, exc: AssayError) -> JSONResponse:
        return error_response(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        field, msg = _validation_message(exc)
        body: dict[str, Any] = {"object": "error", "status": 422, "message": msg}
        if field:
            body["field"] = field
        return JSONResponse(body, status_code=422)

    @app.exception_handler(ValidationError)
    async def _pydantic_error(request: Request, exc: ValidationError) -> JSONResponse:
        return error_response(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return JSONResponse({"object": "error", "status": 500, "message": "Internal server error"},
                            status_code=500)

    @app.get("/health", tags=["meta"])
    def health() -> dict[str, Any]:
        return {"object": "health", "status": "ok", "version": __version__}

    from assay.server.routes import analysis, experiments, observations, organizations, suggestions, tokens

    for mod in (experiments, suggestions, observations, tokens, organizations, analysis):
        app.include_router(mod.router, responses=ERROR_RESPONSES)
    from assay.server.fast import HotRoutes

    app.add_middleware(HotRoutes, error_response=error_response)  # innermost: after the checks below
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes, exempt=_is_file_upload)
    app.add_middleware(CleanURLs)
    app.add_middleware(SecurityHeaders)

    from assay.server.routes import aiexperiments, files, projects, tags, training_runs

    for mod in (projects, training_runs, files, aiexperiments, tags):
        app.include_router(mod.router, responses=ERROR_RESPONSES)

    from assay.dashboard.routes import router as dashboard_router

    app.include_router(dashboard_router)
    return app
