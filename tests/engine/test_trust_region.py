"""The trust region for large problems: its replayed state, its box, its local data, and the strategy using it."""

from __future__ import annotations

import numpy as np

from assay.domain import Bounds, Metric, Parameter
from assay.engine import Problem
from assay.engine import trust_region as tr
from assay.engine.strategy import suggest
from assay.space import Space

from .helpers import observe


def test_replay_grows_on_successes_shrinks_on_failures_and_restarts() -> None:
    better = np.arange(10.0)  # every observation improves
    assert tr.replay(better, 1, 6).length == tr.MAX_LENGTH  # 0.8 -> 1.6 after 3 successes, capped
    flat = np.r_[1.0, np.zeros(6)]  # six failures in a row with fail_tol = max(4, d) = 6
    assert tr.replay(flat, 1, 6).length == tr.INIT_LENGTH / 2
    assert tr.replay(flat[:-1], 1, 6).length == tr.INIT_LENGTH  # five are not enough
    many = np.r_[1.0, np.zeros(4 * 7)]  # 7 halvings with fail_tol 4: 0.8/128 < 0.5**7, one restart
    state = tr.replay(many, 1, 2)
    assert state.restarts == 1 and state.length == tr.INIT_LENGTH
    # tiny improvements do not count as successes
    assert tr.replay(np.r_[1.0, 1.0 + 1e-6 * np.arange(1, 5)], 1, 2).length == tr.INIT_LENGTH / 2


def test_box_contains_the_centre_and_follows_the_lengthscales() -> None:
    center = np.array([0.5, 0.95, 0.2, 1.0])
    ls = np.array([0.1, 0.4, 0.2, 1.0])
    lb, ub = tr.box(center, 0.4, ls, [0, 1, 2])
    assert np.all(lb <= center) and np.all(center <= ub)
    assert np.all((lb >= 0) & (ub <= 1))
    assert (lb[3], ub[3]) == (0.0, 1.0)  # not a numeric column (e.g. one-hot): unconstrained
    width = ub - lb
    assert width[0] < width[2]  # shorter lengthscale, narrower side
    assert ub[1] == 1.0 and lb[1] < 0.95  # clipped at the boundary
    # side lengths before clipping multiply to length ** d
    lb2, ub2 = tr.box(np.full(3, 0.5), 0.4, np.array([0.1, 0.2, 0.4]), [0, 1, 2])
    assert np.isclose(np.prod(ub2 - lb2), 0.4**3)


def test_local_rows_prefer_points_inside_the_box_nearest_first() -> None:
    rng = np.random.default_rng(0)
    X = rng.random((500, 3))
    center = np.full(3, 0.5)
    lb, ub = np.full(3, 0.3), np.full(3, 0.7)
    inside = np.all((X >= lb) & (X <= ub), axis=1)
    rows = tr.local_rows(X, center, np.ones(3), lb, ub, cap=1000)
    assert set(rows) == set(np.flatnonzero(inside))
    few = tr.local_rows(X, center, np.ones(3), lb, ub, cap=3)
    assert len(few) == 3 and inside[few].all()
    d = np.linalg.norm(X - center, axis=1)
    idx = np.flatnonzero(inside)
    assert set(few) == set(idx[np.argsort(d[idx])[:3]])
    topped = tr.local_rows(X, center, np.ones(3), lb, ub, minimum=inside.sum() + 20)
    assert len(topped) == inside.sum() + 20 and inside[topped].sum() == inside.sum()


SPACE8 = Space([Parameter(f"x{i}", "double", Bounds(0, 1)) for i in range(4)]
               + [Parameter("k", "int", Bounds(0, 20)), Parameter("c", "categorical", categorical_values=("a", "b"))])
F = (Metric("f", "minimize"),)


def _f(a: dict) -> float:
    x = np.array([a[f"x{i}"] for i in range(4)])
    return float(np.sum((x - 0.3) ** 2) + 0.01 * abs(a["k"] - 5) + (0.2 if a["c"] == "b" else 0.0))


def _random_obs(n: int, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        a = {**{f"x{j}": float(rng.random()) for j in range(4)}, "k": int(rng.integers(0, 21)),
             "c": str(rng.choice(["a", "b"]))}
        out.append(observe(a, i, {"f": _f(a)}))
    return out


def test_many_observations_use_the_trust_region_inside_its_box() -> None:
    obs = _random_obs(tr.MIN_OBSERVATIONS + 10)
    problem = Problem(SPACE8, F, observations=obs, seed=2, n_suggested=len(obs), parallel_bandwidth=2,
                      pending=[obs[0].assignments])
    (c,) = suggest(problem)
    assert c.source == "gp-tr:lognei"
    SPACE8.validate_assignments(c.assignments)
    region = c.info["trust_region"]
    assert 0 < region["length"] <= tr.MAX_LENGTH and region["local_points"] <= tr.LOCAL_CAP
    best = min(obs, key=lambda o: o.value_of("f")).assignments
    # inside the box: every numeric coordinate within the longest possible half-side of the incumbent
    half = 0.5 * region["length"] * 10.0
    assert all(abs(c.assignments[f"x{i}"] - best[f"x{i}"]) <= half + 1e-9 for i in range(4))
    assert suggest(problem)[0].assignments == c.assignments  # deterministic
    # the local model improves on the random data it was given
    assert _f(c.assignments) < np.quantile([o.value_of("f") for o in obs], 0.1)


def test_high_dimension_uses_the_trust_region_from_few_observations() -> None:
    d = tr.MIN_DIM
    space = Space([Parameter(f"x{i}", "double", Bounds(-1, 1)) for i in range(d)])
    rng = np.random.default_rng(1)
    obs = []
    for i in range(30):
        a = {f"x{j}": float(rng.uniform(-1, 1)) for j in range(d)}
        obs.append(observe(a, i, {"f": sum(v * v for v in a.values())}))
    (c,) = suggest(Problem(space, F, observations=obs, seed=0, n_suggested=30, observation_budget=60))
    assert c.source == "gp-tr:logei"
    space.validate_assignments(c.assignments)
