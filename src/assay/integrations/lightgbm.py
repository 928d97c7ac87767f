"""LightGBM callback: each round's evaluation results become run checkpoints (needs ``lightgbm``)."""

from __future__ import annotations

from typing import Any

__all__ = ["checkpoint_callback"]


class _AssayCheckpoints:
    """Called by LightGBM after every round (``order`` 20: before ``early_stopping``, which raises)."""

    order = 20

    def __init__(self, run: Any, period: int, log_metrics: bool) -> None:
        if period < 1:
            raise ValueError(f"period must be at least 1, got {period}")
        self.run, self.period, self.log_metrics = run, period, log_metrics
        self.logged = 0

    def __call__(self, env: Any) -> None:
        from assay import tracking
        from assay.service_runs import MAX_CHECKPOINTS

        target = self.run or tracking.current_run()
        values = {f"{item[0]}-{item[1]}": float(item[2]) for item in env.evaluation_result_list or []}
        if target is None or not values:
            return
        if env.iteration % self.period == 0 and self.logged < MAX_CHECKPOINTS:
            target.log_checkpoint(values, metadata={"iteration": env.iteration})
            self.logged += 1
        if self.log_metrics:
            # LightGBM has no end-of-training hook and early stopping ends by raising, so the run's metrics
            # follow every round: they end as the last round's.
            target.log_metrics(values)


def checkpoint_callback(run: Any = None, period: int = 1, log_metrics: bool = True) -> Any:
    """A callback for ``lgb.train(..., callbacks=[...])``.

    Every ``period`` rounds it logs ``{"<data>-<metric>": value}`` (like ``valid-binary_logloss``) as a
    checkpoint of ``run`` (default: the current run) with ``{"iteration": n}`` as metadata, at most 200.
    With ``log_metrics`` the run's metrics hold the last round's results when training ends.
    """
    return _AssayCheckpoints(run, period, log_metrics)
