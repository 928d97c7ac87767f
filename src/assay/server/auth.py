"""Who is calling: the :class:`Principal` every route depends on.

SigOpt clients send the API token as the HTTP Basic username; ``Authorization: Bearer``
works too. Without an auth backend configured (embedded use, loopback server) every
caller acts as the admin of client 1.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from fastapi import Request

__all__ = ["Principal", "principal", "token_from_request"]


@dataclass(frozen=True)
class Principal:
    client_id: int = 1
    role: str = "admin"  # "admin" | "write" | "read"
    development: bool = False
    token_id: int | None = None


def token_from_request(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    if scheme.lower() == "basic" and value:
        try:
            user = base64.b64decode(value.strip()).decode("utf-8", "replace").split(":", 1)[0]
        except (ValueError, UnicodeError):
            return None
        return user or None
    return None


def principal(request: Request) -> Principal:
    """FastAPI dependency: the caller, as the app's authenticator sees it."""
    auth = getattr(request.app.state, "authenticate", None)
    if auth is None:
        return Principal()
    return auth(request, token_from_request(request))
