"""Early stopping of training runs from their learning curves (checkpoints). Pure.

An experiment's ``training_monitor.early_stopping_criteria`` lists criteria; a run should
stop when any criterion says so. Each checkpoint answers ``should_stop`` plus
``stopping_reasons`` (``{criterion name: bool}``), as in SigOpt's client.

* ``convergence`` (SigOpt's criterion): after ``min_checkpoints`` checkpoints, stop when the
  best of the last ``lookback_checkpoints`` values does not improve on the best before them
  by more than ``min_improvement`` (relative to the magnitude of that best).
* ``asha`` (assay's extension, asynchronous successive halving, Li et al. 2020): rungs at
  checkpoint counts ``min_checkpoints * reduction_factor**k``; a run reaching a rung
  continues only if its best value so far is in the top ``1/reduction_factor`` of the best
  values every run had at that rung (decided once at least ``reduction_factor`` runs reached it).
* ``max_checkpoints`` of the monitor: the run stops when it has that many checkpoints.

Curves are lists of metric values in checkpoint order (missing values are skipped).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Criterion", "Decision", "decide", "convergence", "asha_rungs", "asha"]


@dataclass(frozen=True)
class Criterion:
    type: str  # "convergence" | "asha"
    name: str
    metric: str
    maximize: bool = True
    lookback_checkpoints: int = 3
    min_checkpoints: int = 1
    min_improvement: float = 0.0
    reduction_factor: int = 3


@dataclass(frozen=True)
class Decision:
    should_stop: bool
    reasons: dict[str, bool]


def _best(xs: Sequence[float], maximize: bool) -> float:
    return max(xs) if maximize else min(xs)


def convergence(curve: Sequence[float], c: Criterion) -> bool:
    """True when the last ``lookback_checkpoints`` values failed to improve on the ones before."""
    if len(curve) < max(c.min_checkpoints, c.lookback_checkpoints + 1):
        return False
    before = _best(curve[: -c.lookback_checkpoints], c.maximize)
    recent = _best(curve[-c.lookback_checkpoints:], c.maximize)
    gain = (recent - before) if c.maximize else (before - recent)
    return gain <= c.min_improvement * max(abs(before), 1e-12)


def asha_rungs(c: Criterion, upto: int) -> list[int]:
    """Checkpoint counts at which runs are compared (``min_checkpoints * eta**k``)."""
    out, r = [], max(1, c.min_checkpoints)
    while r <= upto:
        out.append(r)
        r *= max(2, c.reduction_factor)
    return out


def asha(curve: Sequence[float], others: Sequence[Sequence[float]], c: Criterion) -> bool:
    """True when the run just reached a rung outside the top ``1/eta`` of the runs that reached it."""
    n = len(curve)
    if n not in asha_rungs(c, n):
        return False
    eta = max(2, c.reduction_factor)
    mine = _best(curve[:n], c.maximize)
    peers = [_best(o[:n], c.maximize) for o in others if len(o) >= n]
    values = sorted([mine, *peers], reverse=c.maximize)
    if len(values) < eta:
        return False  # too few runs reached this rung to judge
    keep = max(1, math.floor(len(values) / eta))
    cutoff = values[keep - 1]
    return (mine < cutoff) if c.maximize else (mine > cutoff)


def decide(curve_by_metric: Mapping[str, Sequence[float]], others_by_metric: Mapping[str, Sequence[Sequence[float]]],
           criteria: Sequence[Criterion], checkpoint_count: int, max_checkpoints: int | None = None) -> Decision:
    """The decision for a run's latest checkpoint."""
    reasons: dict[str, bool] = {}
    for c in criteria:
        curve = [v for v in curve_by_metric.get(c.metric, ()) if v is not None and math.isfinite(v)]
        if c.type == "convergence":
            reasons[c.name] = convergence(curve, c)
        elif c.type == "asha":
            reasons[c.name] = asha(curve, others_by_metric.get(c.metric, ()), c)
        else:
            raise ValueError(f"unknown early stopping criterion type {c.type!r}")
    if max_checkpoints is not None:
        reasons["max_checkpoints"] = checkpoint_count >= max_checkpoints
    return Decision(any(reasons.values()), reasons)
