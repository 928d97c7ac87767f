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
    # run tracking (assay.tracking, loaded on first use)
    "params",
    "log_metric",
    "log_metrics",
    "log_checkpoint",
    "log_metadata",
    "log_dataset",
    "log_model",
    "log_image",
    "log_file",
    "log_failure",
    "create_run",
    "create_project",
    "create_experiment",
    "get_experiment",
    "get_run",
    "list_runs",
    "archive_run",
    "unarchive_run",
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

_TRACKING = frozenset(__all__[__all__.index("params"):])

if TYPE_CHECKING:
    from assay.client import Connection


def __getattr__(name: str) -> Any:
    # The client pulls in the server stack (embedded mode); load it on first use so `import assay` stays fast.
    if name == "Connection":
        from assay.client import Connection

        return Connection
    if name in _TRACKING:
        from assay import tracking

        return getattr(tracking, name)
    raise AttributeError(f"module 'assay' has no attribute {name!r}")
