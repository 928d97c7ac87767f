"""assay: self-hosted Bayesian optimization with a SigOpt-compatible API, run tracking and a dashboard.

Start with :class:`Connection` (embedded when given no URL, remote otherwise).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "Connection",
    "AssayError",
    "InvalidRequest",
    "NotFound",
    "Conflict",
    "Forbidden",
    "Unauthorized",
    "Unprocessable",
]

from assay.errors import (
    AssayError,
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    Unauthorized,
    Unprocessable,
)

if TYPE_CHECKING:
    from assay.client import Connection


def __getattr__(name: str) -> Any:
    # The client pulls in the server stack (embedded mode); load it on first use so `import assay` stays fast.
    if name == "Connection":
        from assay.client import Connection

        return Connection
    raise AttributeError(f"module 'assay' has no attribute {name!r}")
