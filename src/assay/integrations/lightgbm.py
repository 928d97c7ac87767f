"""LightGBM callback logging each round's evaluation results as run checkpoints (needs ``lightgbm``)."""

from __future__ import annotations

from typing import Any

__all__ = ["checkpoint_callback"]


def checkpoint_callback(run: Any = None, period: int = 1) -> Any:
    """A callback for ``lgb.train(..., callbacks=[...])`` logging ``{"<data>-<metric>": value}`` checkpoints."""
    from assay import tracking
    from assay.service_runs import MAX_CHECKPOINTS

    state = {"logged": 0}

    def _callback(env: Any) -> None:
        target = run or tracking.current_run()
        if target is None or env.iteration % period or state["logged"] >= MAX_CHECKPOINTS:
            return
        values = {f"{item[0]}-{item[1]}": float(item[2]) for item in env.evaluation_result_list or []}
        if values:
            target.log_checkpoint(values, metadata={"iteration": env.iteration})
            state["logged"] += 1

    _callback.order = 30  # type: ignore[attr-defined]
    return _callback
