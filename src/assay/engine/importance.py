"""Parameter importance per metric (pure): impurity importance of an extremely randomized forest.

Features are the parameters in the unit encoding (log parameters in log scale,
categoricals by index); a parameter switched off by the conditionals gets ``-1``, and
conditionals are features too, so importance also works with conditionals (SigOpt
refused those). Importances of one metric sum to 1 (all 0 when the metric is constant).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from assay.domain import Metric, Observation
from assay.space import Space

__all__ = ["min_observations", "features", "metric_importances"]

MAX_ROWS = 10_000


def min_observations(space: Space) -> int:
    """Successful observations needed: 5 per parameter (SigOpt's rule), at least 5."""
    return max(5, 5 * (len(space.parameters) + len(space.conditionals)))


def features(space: Space, observations: Sequence[Observation]) -> tuple[np.ndarray, list[str]]:
    """``n x (parameters + conditionals)`` feature matrix and column names."""
    names = list(space.names) + [c.name for c in space.conditionals]
    x = np.full((len(observations), len(names)), -1.0)
    for r, o in enumerate(observations):
        a = o.assignments
        for j, p in enumerate(space.parameters):
            v = a.get(p.name)
            if v is None:
                continue
            if p.type == "categorical":
                if v in p.categorical_values:
                    x[r, j] = p.categorical_values.index(v)
            else:
                x[r, j] = space._to_unit(p, v)
        for k, c in enumerate(space.conditionals):
            v = a.get(c.name)
            if v in c.values:
                x[r, len(space.parameters) + k] = c.values.index(v)
    return x, names


def metric_importances(space: Space, observations: Sequence[Observation], metrics: Sequence[Metric],
                       seed: int = 0) -> dict[str, dict[str, float]] | None:
    """``{metric: {parameter: importance}}`` for every metric (sorted by name), or ``None`` with too few data."""
    names = list(space.names) + [c.name for c in space.conditionals]
    ok = [o for o in observations if not o.failed][-MAX_ROWS:]
    out: dict[str, dict[str, float]] = {}
    for m in sorted(metrics, key=lambda m: m.name):
        if len(names) == 1:
            out[m.name] = {names[0]: 1.0}
            continue
        rows = [o for o in ok if o.value_of(m.name) is not None]
        if len(rows) < min_observations(space):
            return None
        x, _ = features(space, rows)
        y = np.array([o.value_of(m.name) for o in rows], dtype=float)
        if np.ptp(y) == 0.0:
            out[m.name] = dict.fromkeys(names, 0.0)
            continue
        from sklearn.ensemble import ExtraTreesRegressor

        n_estimators = 100 if len(names) <= 50 and len(rows) <= 10_000 else 50
        forest = ExtraTreesRegressor(n_estimators=n_estimators, random_state=seed, n_jobs=1)
        forest.fit(x, (y - y.mean()) / y.std())
        imp = np.nan_to_num(forest.feature_importances_, nan=0.0)
        out[m.name] = {n: float(v) for n, v in zip(names, imp, strict=True)}
    return out
