"""Results from observations: best assignments, Pareto front, feasibility."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from assay.domain import Metric, Observation, Task

__all__ = ["feasible", "best_observations", "pareto_mask", "signed_values"]


def _full_cost(o: Observation, tasks: Sequence[Task]) -> bool:
    return not tasks or (o.task is not None and o.task.cost >= 1.0)


def feasible(o: Observation, metrics: Sequence[Metric]) -> bool:
    """True when ``o`` succeeded and meets every constraint metric's threshold."""
    if o.failed:
        return False
    for m in metrics:
        if m.strategy != "constraint" or m.threshold is None:
            continue
        v = o.value_of(m.name)
        if v is None:
            return False
        if (m.objective == "maximize" and v < m.threshold) or (m.objective == "minimize" and v > m.threshold):
            return False
    return True


def signed_values(observations: Sequence[Observation], metrics: Sequence[Metric]) -> np.ndarray:
    """``n x m`` values of the optimized metrics, negated for minimize so bigger is better; NaN if missing."""
    opt = [m for m in metrics if m.strategy == "optimize"]
    out = np.full((len(observations), len(opt)), np.nan)
    for i, o in enumerate(observations):
        for j, m in enumerate(opt):
            v = o.value_of(m.name)
            if v is not None:
                out[i, j] = v if m.objective == "maximize" else -v
    return out


def pareto_mask(y: np.ndarray) -> np.ndarray:
    """Rows of ``y`` (maximize every column) that no other row dominates."""
    n = len(y)
    mask = np.ones(n, dtype=bool)
    for i in range(n):
        if not mask[i]:
            continue
        dominated = np.all(y >= y[i], axis=1) & np.any(y > y[i], axis=1)
        if dominated.any():
            mask[i] = False
    return mask


def best_observations(observations: Sequence[Observation], metrics: Sequence[Metric],
                      tasks: Sequence[Task] = ()) -> list[Observation]:
    """Best feasible full-cost observation (one metric) or the Pareto frontier (two metrics)."""
    opt = [m for m in metrics if m.strategy == "optimize"]
    cands = [o for o in observations if feasible(o, metrics) and _full_cost(o, tasks)]
    if not opt:  # constraint-only ("search"): every feasible point
        return cands
    y = signed_values(cands, metrics)
    keep = ~np.isnan(y).any(axis=1)
    cands = [o for o, k in zip(cands, keep, strict=True) if k]
    y = y[keep]
    if not cands:
        return []
    if len(opt) == 1:
        return [cands[int(np.argmax(y[:, 0]))]]
    # thresholds on optimized metrics bound the region of interest when any point meets them
    lims = np.array([(m.threshold if m.objective == "maximize" else -m.threshold)
                     if m.threshold is not None else -np.inf for m in opt])
    inside = np.all(y >= lims, axis=1)
    if inside.any():
        cands = [o for o, k in zip(cands, inside, strict=True) if k]
        y = y[inside]
    mask = pareto_mask(y)
    return [o for o, k in zip(cands, mask, strict=True) if k]
