"""Stopping criteria of an experiment, SigOpt's rules (pure).

* ``observation_budget_reached``: the budget consumed (observation count, or the sum of
  task costs for multitask experiments) is at least ``observation_budget``.
* ``possible_stagnation``: with ``L = 5 x dimension`` and more than ``L + 4``
  observations, the last ``L`` observations did not beat the 5th best value before them
  (one optimized metric), or did not change the Pareto front (two optimized metrics).
  Failed or infeasible observations count as the worst possible value. Constraint-only
  ("search") experiments never report stagnation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from assay.domain import Metric, Observation, Task, total_cost
from assay.engine.analysis import feasible, pareto_mask, signed_values

__all__ = ["StoppingCriteria", "stopping_criteria", "LOOKBACK_FACTOR", "TOP_K"]

LOOKBACK_FACTOR = 5
TOP_K = 5


@dataclass(frozen=True)
class StoppingCriteria:
    should_stop: bool
    reasons: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"object": "stopping_criteria", "should_stop": self.should_stop, "reasons": list(self.reasons)}


def _values(observations: Sequence[Observation], metrics: Sequence[Metric]) -> np.ndarray:
    y = signed_values(observations, metrics)
    bad = np.array([not feasible(o, metrics) for o in observations], dtype=bool)
    if len(y):
        y[bad] = -np.inf
        y[np.isnan(y)] = -np.inf
    return y


def _front(y: np.ndarray) -> set[tuple[float, ...]]:
    finite = y[np.all(np.isfinite(y), axis=1)]
    if not len(finite):
        return set()
    return {tuple(row) for row in finite[pareto_mask(finite)]}


def stagnating(observations: Sequence[Observation], metrics: Sequence[Metric], dimension: int) -> bool:
    """SigOpt's ``possible_stagnation`` (observations in the order they were reported)."""
    n_opt = sum(m.strategy == "optimize" for m in metrics)
    lookback = LOOKBACK_FACTOR * max(dimension, 1)
    if n_opt == 0 or len(observations) <= lookback + TOP_K - 1:
        return False
    y = _values(observations, metrics)
    old, recent = y[:-lookback], y[-lookback:]
    if n_opt == 1:
        top = np.sort(old[:, 0])[-TOP_K]
        best_recent = recent[:, 0].max()
        return bool(top >= best_recent)
    return _front(old) == _front(y)


def stopping_criteria(observations: Sequence[Observation], metrics: Sequence[Metric], dimension: int,
                      observation_budget: int | None, tasks: Sequence[Task] = ()) -> StoppingCriteria:
    """Whether to stop, with SigOpt's reason names."""
    reasons: list[str] = []
    if observation_budget is not None:
        consumed = total_cost((o.task.cost if o.task else 1.0) for o in observations) if tasks else len(observations)
        if consumed >= observation_budget:
            reasons.append("observation_budget_reached")
    if stagnating(observations, metrics, dimension):
        reasons.append("possible_stagnation")
    return StoppingCriteria(bool(reasons), reasons)
