"""Trust-region Bayesian optimization for large problems (TuRBO-style).

A global GP gets slow (cubic in the observations) and, in many dimensions, over-explores.
From :data:`MIN_OBSERVATIONS` successful observations, or :data:`MIN_DIM` model dimensions,
with one optimized metric, the strategy searches a *trust region* instead (Eriksson et al.,
"Scalable Global Optimization via Local Bayesian Optimization", NeurIPS 2019):

* the region is a box around the incumbent (the best feasible observation), its side
  ``length`` in the unit cube stretched per dimension by the GP's lengthscales (long
  lengthscale → wider side), with the product of the sides kept at ``length ** d``;
* a *local* GP is fitted on at most :data:`LOCAL_CAP` observations nearest the incumbent
  (in lengthscale-scaled distance), warm-started from the global anchor fit, so a suggestion
  costs the same at 1,000 or 100,000 observations;
* the acquisition (qLogNEI with pending points) is maximized inside the box only;
* the length adapts: after :data:`SUCCESS_TOL` improvements in a row it doubles (up to
  :data:`MAX_LENGTH`), after ``max(4, d)`` non-improvements in a row it halves; when it falls
  below :data:`MIN_LENGTH` it restarts at :data:`INIT_LENGTH` around the incumbent (unlike
  TuRBO, which also discards the data: here every observation keeps informing the model).

The region's state is not stored: :func:`replay` recomputes it from the experiment's
observation history (in order), which makes it deterministic, crash-proof and identical
across server processes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["TrustRegion", "replay", "box", "local_rows", "use_trust_region"]

MIN_OBSERVATIONS = 200
MIN_DIM = 20
LOCAL_CAP = 150
INIT_LENGTH = 0.8
MIN_LENGTH = 0.5**7
MAX_LENGTH = 1.6
SUCCESS_TOL = 3


def use_trust_region(n_ok: int, dim: int, n_objectives: int) -> bool:
    """Whether a problem of this size searches a trust region (single objective only)."""
    return n_objectives == 1 and (n_ok >= MIN_OBSERVATIONS or dim >= MIN_DIM)


@dataclass(frozen=True)
class TrustRegion:
    """State of the region after an observation history."""

    length: float = INIT_LENGTH
    successes: int = 0  # consecutive improvements
    failures: int = 0  # consecutive non-improvements
    restarts: int = 0


def replay(y: np.ndarray, start: int, dim: int) -> TrustRegion:
    """The region after observing ``y`` (bigger is better, in order); adaptation begins at ``start``.

    An observation is a success when it beats the best before it by ``1e-3 * |best|``.
    """
    y = np.asarray(y, dtype=float)
    fail_tol = max(4, dim)
    start = max(1, min(start, len(y)))
    best = float(np.max(y[:start])) if len(y) else -math.inf
    length, succ, fail, restarts = INIT_LENGTH, 0, 0, 0
    for v in y[start:]:
        if v > best + 1e-3 * abs(best):
            succ, fail = succ + 1, 0
        else:
            succ, fail = 0, fail + 1
        best = max(best, float(v))
        if succ >= SUCCESS_TOL:
            length, succ = min(2.0 * length, MAX_LENGTH), 0
        elif fail >= fail_tol:
            length, fail = length / 2.0, 0
        if length < MIN_LENGTH:
            length, succ, fail, restarts = INIT_LENGTH, 0, 0, restarts + 1
    return TrustRegion(length, succ, fail, restarts)


def box(center: np.ndarray, length: float, lengthscales: np.ndarray, cols: tuple[int, ...] | list[int]
        ) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds (model encoding) of the region: ``cols`` (the numeric columns) are
    boxed around ``center``; every other column keeps ``[0, 1]``."""
    lb, ub = np.zeros_like(center), np.ones_like(center)
    cols = list(cols)
    if not cols:
        return lb, ub
    ls = np.asarray(lengthscales, dtype=float)[cols]
    w = ls / np.exp(np.mean(np.log(ls)))
    w = np.clip(w, 0.1, 10.0)
    half = 0.5 * length * w
    lb[cols] = np.clip(center[cols] - half, 0.0, 1.0)
    ub[cols] = np.clip(center[cols] + half, 0.0, 1.0)
    return lb, ub


def local_rows(X: np.ndarray, center: np.ndarray, lengthscales: np.ndarray, lb: np.ndarray, ub: np.ndarray, *,
               cap: int = LOCAL_CAP, minimum: int = 0) -> np.ndarray:
    """Rows of ``X`` for the local model: those inside the box, nearest the centre first (in
    lengthscale-scaled distance), at most ``cap``, topped up with the nearest outside to ``minimum``."""
    X = np.asarray(X, dtype=float)
    if len(X) == 0:
        return np.zeros(0, dtype=int)
    d = np.linalg.norm((X - center) / np.asarray(lengthscales, dtype=float), axis=1)
    inside = np.all((X >= lb - 1e-12) & (X <= ub + 1e-12), axis=1)
    order = np.lexsort((d, ~inside))  # inside first, each group by distance
    k = int(min(cap, max(inside.sum(), minimum), len(X)))
    return np.sort(order[:k])
