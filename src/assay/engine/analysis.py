"""Results from observations: best assignments, Pareto front, diverse solutions, feasibility."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from assay.domain import Metric, Observation, ObservationColumns, Task
from assay.space import Space

__all__ = ["feasible", "best_observations", "pareto_mask", "signed_values", "metric_column", "feasible_mask",
           "best_rows", "diverse_top", "GOOD_QUANTILE", "DIVERSITY_RADII"]

#: multisolution: a "good" point is at least this quantile of the feasible values (SigOpt's 80th percentile)
GOOD_QUANTILE = 0.8
#: multisolution: minimum distances between solutions, as a fraction of the unit cube's diagonal; the
#: first is the rule, the smaller ones apply only when the good points cannot give enough solutions
DIVERSITY_RADII = (0.2, 0.14, 0.1, 0.07, 0.05, 0.02, 0.0)


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
    """Rows of ``y`` (maximize every column) that no other row dominates.

    Each surviving row removes the rows it dominates, so the work is about n x (front size), not n x n.
    """
    y = np.asarray(y, dtype=float)
    alive = np.arange(len(y))
    i = 0
    while i < len(alive):
        p = y[alive[i]]
        rest = y[alive]
        dominated = np.all(p >= rest, axis=1) & np.any(p > rest, axis=1)
        kept = alive[~dominated]
        i = int(np.searchsorted(kept, alive[i])) + 1
        alive = kept
    mask = np.zeros(len(y), dtype=bool)
    mask[alive] = True
    return mask


def diverse_top(unit: np.ndarray, y: np.ndarray, k: int) -> tuple[list[int], float]:
    """Indices of up to ``k`` good and mutually distant rows of ``unit`` (``n x d`` in [0, 1]), best ``y`` first.

    The good rows are those at or above the :data:`GOOD_QUANTILE` of ``y`` (bigger is better; at least the
    ``k`` best). Taking them best first, a row is kept when it lies at least ``r`` (a fraction of the
    cube's diagonal) from every row kept so far; ``r`` is the first of :data:`DIVERSITY_RADII` that
    yields ``k`` rows. When the good rows cannot give ``k`` distinct solutions, the rest fill in by
    value. Returns the indices and the radius used.
    """
    n = len(y)
    if n == 0 or k <= 0:
        return [], 0.0
    order = [int(i) for i in np.argsort(-y, kind="stable")]
    if k == 1:
        return order[:1], 0.0
    cut = float(np.quantile(y, GOOD_QUANTILE))
    good = [i for i in order if y[i] >= cut]
    if len(good) < k:
        good = order[:k]
    diag = math.sqrt(max(unit.shape[1], 1))

    def pick(pool: list[int], r: float, chosen: list[int]) -> list[int]:
        out = list(chosen)
        for i in pool:
            if len(out) == k:
                break
            if i in out:
                continue
            if all(np.linalg.norm(unit[i] - unit[j]) >= r * diag and np.any(unit[i] != unit[j]) for j in out):
                out.append(i)
        return out

    for r in DIVERSITY_RADII:
        chosen = pick(good, r, [])
        if len(chosen) == k:
            return chosen, r
    r = DIVERSITY_RADII[-1]
    chosen = pick(order, r, pick(good, r, []))
    return sorted(chosen, key=lambda i: -y[i]), r


def best_observations(observations: Sequence[Observation], metrics: Sequence[Metric],
                      tasks: Sequence[Task] = (), *, num_solutions: int = 1,
                      space: Space | None = None) -> list[Observation]:
    """Best feasible full-cost observation (one metric), or the Pareto frontier (two metrics), or
    with ``num_solutions > 1`` (one metric, ``space`` given) up to that many good and diverse
    observations, best first (:func:`diverse_top` on the unit encoding)."""
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
        if num_solutions > 1 and space is not None:
            # identical assignments observed twice count once: keep the better observation
            uniq: dict[tuple, int] = {}
            for i, o in enumerate(cands):
                key = space.key(o.assignments)
                if key not in uniq or y[i, 0] > y[uniq[key], 0]:
                    uniq[key] = i
            idx = sorted(uniq.values())
            unit = np.array([space.to_unit(cands[i].assignments) for i in idx]).reshape(len(idx), -1)
            chosen, _ = diverse_top(unit, y[idx, 0], num_solutions)
            return [cands[idx[i]] for i in chosen]
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


def metric_column(cols: ObservationColumns, name: str) -> np.ndarray:
    """One metric's values as floats, NaN where missing (failed rows included)."""
    return np.array([v.get(name, np.nan) for v in cols.values], dtype=float)


def feasible_mask(cols: ObservationColumns, metrics: Sequence[Metric]) -> np.ndarray:
    """:func:`feasible` for every row of ``cols`` at once."""
    ok = ~np.array(cols.failed, dtype=bool)
    for m in metrics:
        if m.strategy != "constraint" or m.threshold is None:
            continue
        v = metric_column(cols, m.name)
        with np.errstate(invalid="ignore"):
            ok &= ~np.isnan(v) & (v >= m.threshold if m.objective == "maximize" else v <= m.threshold)
    return ok


def best_rows(cols: ObservationColumns, metrics: Sequence[Metric], tasks: Sequence[Task] = ()) -> np.ndarray:
    """:func:`best_observations` over columns: the row positions of the best observation or the Pareto front."""
    ok = feasible_mask(cols, metrics)
    if tasks:
        ok &= np.array([t is not None and c >= 1.0 for t, c in zip(cols.task, cols.cost, strict=True)], dtype=bool)
    rows = np.flatnonzero(ok)
    opt = [m for m in metrics if m.strategy == "optimize"]
    if not opt:
        return rows
    y = np.column_stack([metric_column(cols, m.name)[rows] * (1.0 if m.objective == "maximize" else -1.0)
                         for m in opt]) if len(rows) else np.empty((0, len(opt)))
    keep = ~np.isnan(y).any(axis=1)
    rows, y = rows[keep], y[keep]
    if not len(rows):
        return rows
    if len(opt) == 1:
        return rows[[int(np.argmax(y[:, 0]))]]
    lims = np.array([(m.threshold if m.objective == "maximize" else -m.threshold)
                     if m.threshold is not None else -np.inf for m in opt])
    inside = np.all(y >= lims, axis=1)
    if inside.any():
        rows, y = rows[inside], y[inside]
    return rows[pareto_mask(y)]
