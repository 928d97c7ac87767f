"""Multisolution (``num_solutions > 1``): diverse good picks and the optimizer's search turns."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from assay.domain import Metric
from assay.engine import Problem
from assay.engine.analysis import DIVERSITY_RADII, best_observations, diverse_top
from assay.engine.strategy import suggest

from .helpers import BRANIN, branin, observe

F = (Metric("f", "minimize"),)
#: Branin's three global minima (value 0.397887)
MINIMA = [(-math.pi, 12.275), (math.pi, 2.275), (9.42478, 2.475)]


def _unit(a: dict) -> np.ndarray:
    return np.array([(a["x1"] + 5) / 15, a["x2"] / 15])


def test_diverse_top_takes_one_point_per_good_region_best_first() -> None:
    rng = np.random.default_rng(0)
    unit = np.vstack([[0.10, 0.10], [0.11, 0.10], [0.10, 0.12],  # region A: the best values
                      [0.90, 0.90], [0.91, 0.88],  # region B
                      [0.10, 0.90],  # region C
                      rng.uniform(0.3, 0.7, (20, 2))])  # poor points in the middle
    y = np.r_[10.0, 9.9, 9.8, 8.0, 7.9, 7.0, rng.uniform(0, 1, 20)]
    picked, r = diverse_top(unit, y, 3)
    assert picked == [0, 3, 5] and r == DIVERSITY_RADII[0]
    assert diverse_top(unit, y, 1) == ([0], 0.0)
    assert diverse_top(unit[:0], y[:0], 3) == ([], 0.0)


def test_diverse_top_shrinks_the_radius_then_fills_in_by_value() -> None:
    unit = np.array([[0.5, 0.5], [0.52, 0.5], [0.5, 0.53], [0.0, 0.0]])
    y = np.array([3.0, 2.9, 2.8, -5.0])
    picked, r = diverse_top(unit, y, 3)  # the good points are all close: a smaller radius
    assert picked[0] == 0 and len(picked) == 3 and len(set(picked)) == 3 and r < DIVERSITY_RADII[0]
    # more solutions asked than distinct points: every distinct point, best first
    picked, _ = diverse_top(np.vstack([unit, unit[:1]]), np.r_[y, 3.0], 10)
    assert sorted(picked)[:4] == [0, 1, 2, 3] and len(picked) == 4


def test_best_observations_finds_the_three_minima_of_branin() -> None:
    grid = [{"x1": float(a), "x2": float(b)} for a in np.linspace(-5, 10, 31) for b in np.linspace(0, 15, 31)]
    obs = [observe(a, i, {"f": branin(a)}) for i, a in enumerate(grid)]
    one = best_observations(obs, F)
    assert len(one) == 1
    best = best_observations(obs, F, num_solutions=3, space=BRANIN)
    assert len(best) == 3 and best[0].id == one[0].id
    vals = [v for o in best if (v := o.value_of("f")) is not None]
    assert len(vals) == 3 and vals == sorted(vals) and max(vals) < 2.0
    # each pick is near a different global minimum
    near = [int(np.argmin([np.linalg.norm(_unit(o.assignments) - _unit({"x1": m[0], "x2": m[1]}))
                           for m in MINIMA])) for o in best]
    assert sorted(near) == [0, 1, 2]
    # duplicates of one assignment count once
    dup = best_observations(obs + [observe(one[0].assignments, 5000, {"f": 0.0})], F, num_solutions=3, space=BRANIN)
    assert dup[0].id == 5001 and len({BRANIN.key(o.assignments) for o in dup}) == 3


def _two_basin_obs(n: int) -> list:
    rng = np.random.default_rng(1)
    out = []
    for i in range(n):
        a = {"x1": float(rng.uniform(-5, 10)), "x2": float(rng.uniform(0, 15))}
        out.append(observe(a, i, {"f": branin(a)}))
    return out


def test_search_turns_alternate_and_move_away_from_the_good_points() -> None:
    obs = _two_basin_obs(12)
    base: dict[str, Any] = dict(observations=obs, seed=5, num_solutions=3, observation_budget=40)
    (plain,) = suggest(Problem(BRANIN, F, n_suggested=12, **base))
    (search,) = suggest(Problem(BRANIN, F, n_suggested=13, **base))
    assert plain.source == "gp:logei" and search.source == "gp:multisolution-search"
    BRANIN.validate_assignments(search.assignments)
    y = np.array([o.value_of("f") for o in obs])
    good = [o for o in obs if o.value_of("f") <= np.quantile(y, 0.2)]
    d = min(np.linalg.norm(_unit(search.assignments) - _unit(o.assignments)) for o in good)
    assert d > 0.05
    # a batch alternates too, and a single-solution experiment never searches
    batch = suggest(Problem(BRANIN, F, n_suggested=12, **base), 2)
    assert [c.source for c in batch] == ["gp:logei", "gp:multisolution-search"]
    (c,) = suggest(Problem(BRANIN, F, observations=obs, seed=5, n_suggested=13))
    assert c.source == "gp:logei"
