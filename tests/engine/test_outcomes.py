"""Two objectives, constraint metrics, failures and linear constraints on the model path."""

from __future__ import annotations

import numpy as np

from assay.domain import Bounds, LinearConstraint, Metric, Parameter
from assay.engine import Problem
from assay.engine.analysis import pareto_mask
from assay.engine.strategy import initial_design_size, suggest
from assay.space import Space

from .helpers import observe, run_study

SQUARE = Space([Parameter("x", "double", Bounds(0, 1)), Parameter("y", "double", Bounds(0, 1))])


def _model_steps(space, metrics, f, n_random: int, steps: int, seed: int = 0, **kw) -> tuple[list, list]:
    """``n_random`` random observations, then ``steps`` model suggestions (each observed)."""
    obs = run_study(space, metrics, f, n_random, seed=seed, random_only=True, **kw)
    n0 = max(initial_design_size(Problem(space, tuple(metrics), **kw)), n_random)
    made = []
    for i in range(steps):
        (c,) = suggest(Problem(space, tuple(metrics), observations=list(obs), seed=seed, n_suggested=n0 + i, **kw))
        made.append(c)
        v = f(c.assignments)
        obs.append(observe(c.assignments, len(obs), v, failed=v is None))
    return obs, made


def test_two_objectives_find_pareto_improving_points() -> None:
    metrics = (Metric("f1"), Metric("f2"))

    def f(a):
        return {"f1": -((a["x"] - 0.2) ** 2) - (a["y"] - 0.5) ** 2, "f2": -((a["x"] - 0.8) ** 2) - (a["y"] - 0.5) ** 2}

    obs, made = _model_steps(SQUARE, metrics, f, 10, 4, observation_budget=30)
    assert all(c.source == "gp:lognehvi" for c in made)
    y = np.array([[o.value_of("f1"), o.value_of("f2")] for o in obs])
    new_on_front = pareto_mask(y)[10:]
    assert new_on_front.sum() >= 3  # model points extend the front the random ones made
    assert np.mean([abs(c.assignments["y"] - 0.5) for c in made]) < 0.15


def test_constraint_metric_steers_to_the_feasible_region() -> None:
    metrics = (Metric("f"), Metric("g", "minimize", "constraint", threshold=0.5))

    def f(a):
        return {"f": a["x"] + a["y"], "g": a["x"] ** 2 + a["y"] ** 2}

    obs, made = _model_steps(SQUARE, metrics, f, 10, 5, observation_budget=30)
    vals = [f(c.assignments) for c in made]
    # the unconstrained optimum (1, 1) has g = 2: the model hugs the boundary g = 0.5 instead
    assert all(v["g"] < 0.55 for v in vals)
    assert sum(v["g"] <= 0.5 for v in vals) >= 3
    best = max(v["f"] for v in vals if v["g"] <= 0.5)
    assert best > 0.9  # the optimum on the circle's edge is 1.0


def test_failed_region_is_avoided() -> None:
    metrics = (Metric("f"),)

    def f(a):
        if a["x"] > 0.5:
            return None
        return {"f": -((a["x"] - 0.9) ** 2) - (a["y"] - 0.5) ** 2}

    obs, made = _model_steps(SQUARE, metrics, f, 12, 5, seed=2)
    assert any(o.failed for o in obs[:12])
    ok = [c.assignments["x"] <= 0.5 for c in made]
    assert sum(ok) >= 4
    assert max(o.value_of("f") or -9 for o in obs[12:]) > max(o.value_of("f") or -9 for o in obs[:12])


def test_linear_constraints_hold_for_every_model_suggestion() -> None:
    space = Space(SQUARE.parameters, linear_constraints=[LinearConstraint("less_than", (("x", 1.0), ("y", 1.0)), 1.0),
                                                         LinearConstraint("greater_than", (("y", 1.0),), 0.2)])
    metrics = (Metric("f"),)
    obs, made = _model_steps(space, metrics, lambda a: {"f": a["x"] + 2 * a["y"]}, 8, 4)
    for c in made:
        assert c.source in ("gp:logei", "gp:lognei")
        space.validate_assignments(c.assignments)
    assert max(c.assignments["y"] for c in made) > 0.8


def test_known_noise_is_used() -> None:
    metrics = (Metric("f"),)
    rng = np.random.default_rng(0)
    obs = []
    for i in range(8):
        a = {"x": float(rng.random()), "y": float(rng.random())}
        obs.append(observe(a, i, {"f": a["x"] + rng.normal(0, 0.1)}, stddev=0.1))
    (c,) = suggest(Problem(SQUARE, metrics, observations=obs, seed=0, n_suggested=20))
    assert c.source in ("gp:logei", "gp:lognei")
    assert c.assignments["x"] > 0.5
