"""One error tree for the whole package.

Every error carries the HTTP status it maps to; the server turns any
:class:`AssayError` into ``{"object": "error", "status": ..., "message": ...}``
(the shape the ``sigopt`` client reads) and the Python client re-raises the same
class from that JSON, so embedded and remote callers see identical exceptions.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AssayError",
    "InvalidRequest",
    "Unauthorized",
    "Forbidden",
    "NotFound",
    "Conflict",
    "Unprocessable",
    "PayloadTooLarge",
    "RateLimited",
    "ConnectionFailed",
    "error_from_json",
]


class AssayError(Exception):
    """Base of every error assay raises on purpose."""

    status: int = 500

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"object": "error", "status": self.status, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return body

    def __str__(self) -> str:
        return f"{type(self).__name__} ({self.status}): {self.message}"


class InvalidRequest(AssayError):
    """The request is well-formed JSON but breaks a rule (bounds reversed, unknown name ...)."""

    status = 400


class Unauthorized(AssayError):
    status = 401


class Forbidden(AssayError):
    status = 403


class NotFound(AssayError):
    status = 404


class Conflict(AssayError):
    """The request is valid but clashes with stored state (closed suggestion, duplicate ...)."""

    status = 409


class PayloadTooLarge(AssayError):
    status = 413


class Unprocessable(AssayError):
    """The body has the wrong types or shape (what pydantic rejects)."""

    status = 422


class RateLimited(AssayError):
    status = 429

    def __init__(self, message: str, *, retry_after: float = 1.0, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.retry_after = retry_after


class ConnectionFailed(AssayError):
    """The remote server could not be reached (the client's side of a network failure)."""

    status = 503


_BY_STATUS: dict[int, type[AssayError]] = {
    cls.status: cls
    for cls in (InvalidRequest, Unauthorized, Forbidden, NotFound, Conflict, PayloadTooLarge,
                Unprocessable, RateLimited)
}


def error_from_json(status: int, body: Any) -> AssayError:
    """Rebuild the error a server sent (used by the remote client)."""
    message = body.get("message") if isinstance(body, dict) else None
    field = body.get("field") if isinstance(body, dict) else None
    cls = _BY_STATUS.get(status, AssayError)
    err = cls(message or f"HTTP {status}", field=field)
    if cls is AssayError:
        err.status = status
    return err
