"""Who is calling: the :class:`Principal` every route depends on.

SigOpt clients send the API token as the HTTP Basic username; ``Authorization: Bearer``
works too. Without an auth backend configured (embedded use, a server started with
``--no-auth``) every caller acts as the admin of client 1. With one, ``app.state.authenticate``
turns the token into a Principal (or raises 401), confines share tokens to their object
and applies the per-token rate limit.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from assay.access import LOCAL, Access, Principal
from assay.errors import NotFound, RateLimited, Unauthorized

__all__ = ["Principal", "principal", "token_from_request", "make_authenticator", "RateLimiter", "share_allows"]


def token_from_request(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    if scheme.lower() == "basic" and value:
        try:
            user = base64.b64decode(value.strip(), validate=True).decode("utf-8").split(":", 1)[0]
        except (ValueError, UnicodeError):
            return None
        return user or None
    return None


async def principal(request: Request) -> Principal:
    """FastAPI dependency: the caller, as the app's authenticator sees it. Runs on the event loop
    when the token's lookup is cached (no thread hop), in a worker thread when it needs the database."""
    auth = getattr(request.app.state, "authenticate", None)
    if auth is None:
        return LOCAL
    token = token_from_request(request)
    access = getattr(auth, "access", None)
    if access is not None and access.cached(token):
        return auth(request, token)
    return await run_in_threadpool(auth, request, token)


class RateLimiter:
    """Token buckets keyed by API token: ``rate`` requests a second, bursts up to ``burst``."""

    def __init__(self, rate: float, burst: int, what: str = "this token") -> None:
        self.rate = rate
        self.burst = max(1.0, float(burst))
        self.what = what
        self._buckets: dict[int | str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def check(self, key: int | str) -> None:
        if self.rate <= 0:
            return
        now = time.monotonic()
        with self._lock:
            level, last = self._buckets.get(key, (self.burst, now))
            level = min(self.burst, level + (now - last) * self.rate)
            if level < 1.0:
                self._buckets[key] = (level, now)
                wait = (1.0 - level) / self.rate
                if len(self._buckets) > 100_000:  # forget idle keys (addresses come and go)
                    self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 60}
                raise RateLimited(f"rate limit of {self.rate:g} requests/second for {self.what} exceeded; "
                                  f"retry after {wait:.2f}s", retry_after=max(1.0, wait))
            self._buckets[key] = (level - 1.0, now)


def share_allows(p: Principal, method: str, path: str) -> bool:
    """A share token reads its one experiment (or training run) and nothing else."""
    parts = [x for x in path.split("/") if x]
    if any(x in (".", "..") for x in parts):
        return False
    if method not in ("GET", "HEAD"):
        return False
    if parts[:3] == ["v1", "tokens", "self"] and len(parts) == 3:
        return True
    targets = []
    if p.experiment_id is not None:
        targets.append(("experiments", str(p.experiment_id)))
    if p.training_run_id is not None:
        targets.append(("training_runs", str(p.training_run_id)))
    for i in range(len(parts) - 1):
        if (parts[i], parts[i + 1]) in targets:
            # the object must be the first resource named in the path (not /experiments/7/../runs/8)
            return all(x not in ("experiments", "training_runs", "runs", "projects", "clients", "files")
                       for x in parts[:i])
    return False


def make_authenticator(access: Access, limiter: RateLimiter, failures: RateLimiter | None = None
                       ) -> Callable[[Request, str | None], Principal]:
    """``failures``: a budget of rejected tokens per client address (guessing and floods get 429)."""

    def authenticate(request: Request, token: str | None) -> Principal:
        try:
            p = access.authenticate(token)
        except Unauthorized:
            if failures is not None:
                failures.check(request.client.host if request.client else "?")
            raise
        if p.token_id is not None:
            limiter.check(p.token_id)
        if p.kind == "share" and not share_allows(p, request.method, request.url.path):
            raise NotFound("not found: this share token only reads its own experiment or training run")
        return p

    authenticate.access = access  # type: ignore[attr-defined]
    return authenticate
