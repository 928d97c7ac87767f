"""XGBoost callback logging each boosting round's evaluation metrics as run checkpoints (needs ``xgboost``)."""

from __future__ import annotations

from typing import Any

__all__ = ["checkpoint_callback"]


def checkpoint_callback(run: Any = None, period: int = 1) -> Any:
    """An ``xgboost.callback.TrainingCallback`` for ``xgb.train(..., callbacks=[...])``.

    Every ``period`` rounds it logs ``{"<data>-<metric>": value}`` for the last round as a checkpoint of
    ``run`` (default: the current run); a run keeps at most 200 checkpoints, later rounds are skipped.
    """
    import xgboost

    from assay import tracking
    from assay.service_runs import MAX_CHECKPOINTS

    class _AssayCheckpoints(xgboost.callback.TrainingCallback):
        def __init__(self) -> None:
            super().__init__()
            self.logged = 0

        def after_iteration(self, model: Any, epoch: int, evals_log: dict) -> bool:
            target = run or tracking.current_run()
            if target is None or epoch % period or self.logged >= MAX_CHECKPOINTS:
                return False
            values = {f"{data}-{metric}": float(hist[-1][0] if isinstance(hist[-1], tuple) else hist[-1])
                      for data, metrics in evals_log.items() for metric, hist in metrics.items() if hist}
            if values:
                target.log_checkpoint(values, metadata={"iteration": epoch})
                self.logged += 1
            return False

    return _AssayCheckpoints()
