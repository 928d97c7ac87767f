"""XGBoost callback: each boosting round's evaluation results become run checkpoints (needs ``xgboost``)."""

from __future__ import annotations

from typing import Any

__all__ = ["checkpoint_callback"]


def _last(evals_log: dict) -> dict[str, float]:
    """``{"<data>-<metric>": value of the last round}`` (with ``cv`` a ``(mean, std)`` pair: the mean)."""
    return {f"{data}-{metric}": float(hist[-1][0] if isinstance(hist[-1], tuple) else hist[-1])
            for data, metrics in evals_log.items() for metric, hist in metrics.items() if hist}


def checkpoint_callback(run: Any = None, period: int = 1, log_metrics: bool = True) -> Any:
    """An ``xgboost.callback.TrainingCallback`` for ``xgb.train(..., callbacks=[...])``.

    Every ``period`` rounds it logs the round's evaluation results as a checkpoint of ``run`` (default:
    the current run), named ``"<data>-<metric>"`` like ``train-logloss``, with ``{"iteration": n}`` as
    metadata; a run keeps at most 200 checkpoints, later rounds are skipped. When training ends (early
    stopping included) the last round's results are also logged as the run's metrics (``log_metrics``).
    """
    import xgboost

    from assay import tracking
    from assay.service_runs import MAX_CHECKPOINTS

    if period < 1:
        raise ValueError(f"period must be at least 1, got {period}")

    class _AssayCheckpoints(xgboost.callback.TrainingCallback):
        def __init__(self) -> None:
            super().__init__()
            self.logged = 0
            self.last: dict[str, float] = {}

        def after_iteration(self, model: Any, epoch: int, evals_log: dict) -> bool:
            target = run or tracking.current_run()
            self.last = _last(evals_log)
            if target is None or epoch % period or self.logged >= MAX_CHECKPOINTS or not self.last:
                return False
            target.log_checkpoint(self.last, metadata={"iteration": epoch})
            self.logged += 1
            return False

        def after_training(self, model: Any) -> Any:
            target = run or tracking.current_run()
            if log_metrics and target is not None and self.last:
                target.log_metrics(self.last)
            return model

    return _AssayCheckpoints()
