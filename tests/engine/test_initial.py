"""Initial design and random sampling honour priors, conditionals, grids and linear constraints."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assay import schemas
from assay.domain import Observation
from assay.engine.constraints import hit_and_run, model_inequalities, polytope
from assay.engine.grid import grid_points
from assay.engine.initial import infeasibility, initial_points, random_candidates
from assay.engine.problem import Problem
from assay.engine.strategy import suggest
from assay.errors import Conflict
from assay.service import space_of
from assay.validation import build_experiment


def experiment(**body):  # type: ignore[no-untyped-def]
    body.setdefault("name", "t")
    body.setdefault("metrics", [{"name": "y"}])
    return build_experiment(schemas.ExperimentCreate.model_validate(body))


def problem(exp, **kw) -> Problem:  # type: ignore[no-untyped-def]
    return Problem(space=space_of(exp), metrics=exp.metrics, experiment_type=exp.type, seed=kw.pop("seed", 3), **kw)


def check(exp, assignments: dict) -> None:  # type: ignore[no-untyped-def]
    """Fails unless ``assignments`` is a valid, complete suggestion for ``exp``."""
    space = space_of(exp)
    assert space.validate_assignments(assignments) == assignments
    for p in space.active(assignments):
        if p.grid:
            assert assignments[p.name] in p.grid
    inactive = set(space.names) - {p.name for p in space.active(assignments)}
    assert not inactive & set(assignments)


# -- hypothesis: random definitions, every point valid ------------------------------------------
@st.composite
def definitions(draw: st.DrawFn) -> dict:
    n_double = draw(st.integers(1, 4))
    params: list[dict[str, Any]] = []
    for i in range(n_double):
        lo = draw(st.floats(-100, 100, allow_nan=False))
        span = draw(st.floats(0.01, 100))
        p = {"name": f"d{i}", "type": "double", "bounds": {"min": lo, "max": lo + span}}
        prior = draw(st.sampled_from([None, "normal", "beta"]))
        if prior == "normal":
            p["prior"] = {"name": "normal", "mean": lo + span * draw(st.floats(0, 1)), "scale": span * 0.1}
        elif prior == "beta":
            p["prior"] = {"name": "beta", "shape_a": draw(st.floats(0.5, 5)), "shape_b": draw(st.floats(0.5, 5))}
        params.append(p)
    n_int = draw(st.integers(0, 3))
    for i in range(n_int):
        lo = draw(st.integers(-5, 5))
        params.append({"name": f"i{i}", "type": "int", "bounds": {"min": lo, "max": lo + draw(st.integers(1, 20))}})
    if draw(st.booleans()):
        params.append({"name": "g", "type": "double", "grid": sorted(draw(
            st.sets(st.floats(-3, 3, allow_nan=False), min_size=2, max_size=5)))})
    if draw(st.booleans()):
        params.append({"name": "c", "type": "categorical", "categorical_values": ["a", "b", "c"]})
    conditionals = []
    if draw(st.booleans()) and "g" not in {p["name"] for p in params}:
        conditionals = [{"name": "mode", "values": ["on", "off", "half"]}]
        for p in params:
            if draw(st.booleans()):
                p["conditions"] = {"mode": draw(st.sampled_from([["on"], ["on", "half"], ["off"]]))}
    constraints = []
    doubles = [p for p in params if p["type"] == "double" and "grid" not in p]
    for _ in range(draw(st.integers(0, 2))):
        terms = draw(st.lists(st.sampled_from(doubles), min_size=1, max_size=len(doubles),
                              unique_by=lambda p: p["name"]))
        weights = [draw(st.sampled_from([-2.0, -1.0, 0.5, 1.0, 3.0])) for _ in terms]
        # a threshold that the centre of the box satisfies, so the region is never empty
        centre = sum(w * (p["bounds"]["min"] + p["bounds"]["max"]) / 2 for w, p in zip(weights, terms, strict=True))
        spread = sum(abs(w) * (p["bounds"]["max"] - p["bounds"]["min"]) for w, p in zip(weights, terms, strict=True))
        kind = draw(st.sampled_from(["less_than", "greater_than"]))
        shift = draw(st.floats(0.05, 0.45)) * spread
        constraints.append({"type": kind, "threshold": centre + shift if kind == "less_than" else centre - shift,
                            "terms": [{"name": p["name"], "weight": w} for p, w in zip(terms, weights, strict=True)]})
    return {"parameters": params, "conditionals": conditionals, "linear_constraints": constraints}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(definitions(), st.integers(0, 50), st.integers(1, 6))
def test_every_point_respects_the_definition(body: dict, start: int, n: int) -> None:
    exp = experiment(**body)
    prob = problem(exp, n_suggested=start)
    for make in (initial_points, random_candidates, suggest):
        cands = make(prob, n)
        assert len(cands) == n
        for c in cands:
            check(exp, c.assignments)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from([[0.0, 1.0], [1, 2, 3], [0.5, 1.5, 2.5, 3.5]]), min_size=1, max_size=3),
       st.booleans(), st.integers(0, 2**31 - 1))
def test_grid_enumerates_every_point_once(grids: list, with_cat: bool, seed: int) -> None:
    params = [{"name": f"p{i}", "type": "int" if isinstance(g[1], int) else "double", "grid": g}
              for i, g in enumerate(grids)]
    if with_cat:
        params.append({"name": "c", "type": "categorical", "categorical_values": ["x", "y"]})
    exp = experiment(type="grid", parameters=params)
    size = exp.observation_budget
    assert size == int(np.prod([len(g) for g in grids])) * (2 if with_cat else 1)
    seen: list[dict] = []
    space = space_of(exp)
    while len(seen) < size:
        k = min(3, size - len(seen))
        cands = grid_points(problem(exp, seed=seed, pending=list(seen)), k)
        assert len(cands) == k
        seen.extend(c.assignments for c in cands)
    assert len({space.key(a) for a in seen}) == size
    for a in seen:
        check(exp, a)
    with pytest.raises(Conflict, match="exhausted"):
        grid_points(problem(exp, seed=seed, pending=seen), 1)


def test_grid_hands_a_deleted_point_out_again_and_skips_observed() -> None:
    exp = experiment(type="grid", parameters=[{"name": "a", "type": "int", "grid": [1, 2, 3]}])
    first = [c.assignments for c in grid_points(problem(exp), 3)]
    assert sorted(a["a"] for a in first) == [1, 2, 3]
    # the first point was observed, the second is pending, the third suggestion was deleted
    obs = [Observation(1, 1, first[0])]
    again = grid_points(problem(exp, observations=obs, pending=[first[1]]), 1)
    assert again[0].assignments == first[2]


def test_normal_prior_shapes_the_initial_design() -> None:
    exp = experiment(parameters=[
        {"name": "x", "type": "double", "bounds": {"min": 0, "max": 10}, "prior": {"name": "normal", "mean": 2,
                                                                                 "scale": 0.5}},
        {"name": "z", "type": "double", "bounds": {"min": 0, "max": 10}}])
    xs = np.array([c.assignments["x"] for c in initial_points(problem(exp), 256)])
    zs = np.array([c.assignments["z"] for c in initial_points(problem(exp), 256)])
    assert abs(xs.mean() - 2) < 0.1 and abs(xs.std() - 0.5) < 0.1
    assert abs(zs.mean() - 5) < 0.3  # no prior: uniform


def test_beta_prior_shapes_random_points() -> None:
    exp = experiment(parameters=[
        {"name": "x", "type": "double", "bounds": {"min": -1, "max": 1}, "prior": {"name": "beta", "shape_a": 8,
                                                                                  "shape_b": 2}}],
                     type="random")
    xs = np.array([c.assignments["x"] for c in random_candidates(problem(exp), 400)])
    # beta(8, 2) has mean 0.8 on [0, 1], so 0.6 on [-1, 1]
    assert abs(xs.mean() - 0.6) < 0.05


def test_prior_inside_a_tight_constraint_is_still_followed() -> None:
    exp = experiment(parameters=[
        {"name": "x", "type": "double", "bounds": {"min": 0, "max": 1}, "prior": {"name": "normal", "mean": 0.1,
                                                                                "scale": 0.05}},
        {"name": "y", "type": "double", "bounds": {"min": 0, "max": 1}}],
        linear_constraints=[{"type": "less_than", "threshold": 0.3, "terms": [{"name": "x", "weight": 1},
                                                                              {"name": "y", "weight": 1}]}])
    pts = [c.assignments for c in initial_points(problem(exp), 200)]
    xs = np.array([a["x"] for a in pts])
    assert all(a["x"] + a["y"] <= 0.3 + 1e-9 for a in pts)
    assert abs(np.median(xs) - 0.1) < 0.05


def test_hit_and_run_is_uniform_on_a_triangle() -> None:
    exp = experiment(parameters=[{"name": "x", "type": "double", "bounds": {"min": 0, "max": 1}},
                                 {"name": "y", "type": "double", "bounds": {"min": 0, "max": 1}}],
                     linear_constraints=[{"type": "less_than", "threshold": 1, "terms": [
                         {"name": "x", "weight": 1}, {"name": "y", "weight": 1}]}])
    pts = hit_and_run(polytope(space_of(exp)), 4000, np.random.default_rng(0))
    assert np.all(pts.sum(axis=1) <= 1 + 1e-9)
    # uniform on the triangle: E[x] = 1/3, P(x < 0.5) = 3/4
    assert abs(pts[:, 0].mean() - 1 / 3) < 0.02
    assert abs((pts[:, 0] < 0.5).mean() - 0.75) < 0.03


def test_integer_constraints_with_a_single_feasible_corner() -> None:
    exp = experiment(parameters=[{"name": "a", "type": "int", "bounds": {"min": 0, "max": 10}},
                                 {"name": "b", "type": "int", "bounds": {"min": 0, "max": 10}}],
                     linear_constraints=[{"type": "greater_than", "threshold": 19, "terms": [
                         {"name": "a", "weight": 1}, {"name": "b", "weight": 1}]}])
    pts = [c.assignments for c in initial_points(problem(exp), 6)]
    assert all(a["a"] + a["b"] >= 19 for a in pts)
    assert {(a["a"], a["b"]) for a in pts} <= {(9, 10), (10, 9), (10, 10)}


def test_infeasible_constraints_are_reported() -> None:
    body: dict[str, Any] = dict(parameters=[{"name": "x", "type": "double", "bounds": {"min": 0, "max": 1}},
                            {"name": "y", "type": "double", "bounds": {"min": 0, "max": 1}}],
                linear_constraints=[{"type": "greater_than", "threshold": 2.5, "terms": [
                    {"name": "x", "weight": 1}, {"name": "y", "weight": 1}]}])
    from assay.errors import InvalidRequest

    with pytest.raises(InvalidRequest) as err:
        experiment(**body)
    assert err.value.field == "linear_constraints"
    body["linear_constraints"][0]["threshold"] = 1.5
    assert infeasibility(space_of(experiment(**body))) is None


def test_conditionals_with_constraints_on_conditioned_parameters() -> None:
    """Beyond SigOpt: a constraint on conditioned parameters binds when they are active."""
    exp = experiment(
        parameters=[{"name": "w1", "type": "double", "bounds": {"min": 0, "max": 1}},
                    {"name": "w2", "type": "double", "bounds": {"min": 0, "max": 1},
                     "conditions": {"layers": ["2"]}}],
        conditionals=[{"name": "layers", "values": ["1", "2"]}],
        linear_constraints=[{"type": "less_than", "threshold": 0.8, "terms": [
            {"name": "w1", "weight": 1}, {"name": "w2", "weight": 1}]}])
    pts = [c.assignments for c in initial_points(problem(exp), 64)]
    one = [a for a in pts if a["layers"] == "1"]
    two = [a for a in pts if a["layers"] == "2"]
    assert one and two
    assert all("w2" not in a for a in one)
    assert any(a["w1"] > 0.8 for a in one)  # the constraint does not bind without w2
    assert all(a["w1"] + a["w2"] <= 0.8 + 1e-9 for a in two)


def test_model_inequalities_match_botorch_convention() -> None:
    exp = experiment(parameters=[{"name": "c", "type": "categorical", "categorical_values": ["a", "b"]},
                                 {"name": "x", "type": "double", "bounds": {"min": 0, "max": 10}},
                                 {"name": "y", "type": "double", "bounds": {"min": -5, "max": 5}}],
                     linear_constraints=[{"type": "less_than", "threshold": 6, "terms": [
                         {"name": "x", "weight": 1}, {"name": "y", "weight": 2}]}])
    space = space_of(exp)
    [(idx, coef, rhs)] = model_inequalities(space)
    assert idx == [2, 3]  # after the two one-hot columns of c
    cases: list[dict[str, Any]] = [{"c": "a", "x": 1.0, "y": 2.0}, {"c": "b", "x": 9.0, "y": 1.0}]
    for a in cases:
        z = space.encode(a)
        ok = sum(c * z[i] for i, c in zip(idx, coef, strict=True)) >= rhs - 1e-9
        assert ok == (a["x"] + 2 * a["y"] <= 6)


def test_discrete_spaces_do_not_repeat_points_until_exhausted() -> None:
    exp = experiment(parameters=[{"name": "a", "type": "int", "bounds": {"min": 1, "max": 3}},
                                 {"name": "c", "type": "categorical", "categorical_values": ["x", "y"]}])
    seen: list[dict] = []
    for i in range(6):
        seen.append(initial_points(problem(exp, pending=list(seen), n_suggested=i), 1)[0].assignments)
    assert len({(a["a"], a["c"]) for a in seen}) == 6
    assert initial_points(problem(exp, pending=seen, n_suggested=6), 1)[0].assignments in seen
