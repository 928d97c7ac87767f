"""Experiment create rules (SigOpt's): every bad definition is a 400 naming the field, and nothing is stored."""

from __future__ import annotations

import copy

import pytest

import assay
from assay.errors import InvalidRequest, Unprocessable

X = {"name": "x", "type": "double", "bounds": {"min": 0, "max": 1}}
Y = {"name": "y", "type": "double", "bounds": {"min": 0, "max": 1}}
N = {"name": "n", "type": "int", "bounds": {"min": 1, "max": 10}}
C = {"name": "c", "type": "categorical", "categorical_values": ["a", "b"]}


def body(**kw):  # type: ignore[no-untyped-def]
    out = {"name": "v", "parameters": [copy.deepcopy(X)], "metrics": [{"name": "m"}]}
    out.update(kw)
    return out


def param(base: dict, **kw) -> dict:  # type: ignore[type-arg]
    return {**copy.deepcopy(base), **kw}


def lc(kind: str, threshold: float, *terms: tuple[str, float]) -> dict:  # type: ignore[type-arg]
    return {"type": kind, "threshold": threshold, "terms": [{"name": n, "weight": w} for n, w in terms]}


BAD = [
    # parameters
    (body(parameters=[]), "parameters"),
    (body(parameters=[X, X]), "parameters[1].name"),
    (body(parameters=[param(X, bounds={"min": 1, "max": 1})]), "parameters[0].bounds"),
    (body(parameters=[param(X, bounds=None)]), "parameters[0].bounds"),
    (body(parameters=[param(N, bounds={"min": 0.5, "max": 3})]), "parameters[0].bounds"),
    (body(parameters=[param(X, transformation="log")]), "parameters[0].bounds.min"),
    (body(parameters=[param(C, categorical_values=["a"])]), "parameters[0].categorical_values"),
    (body(parameters=[param(C, categorical_values=["a", "a"])]), "parameters[0].categorical_values"),
    (body(parameters=[param(C, bounds={"min": 0, "max": 1})]), "parameters[0].bounds"),
    (body(parameters=[param(C, grid=[1, 2])]), "parameters[0].grid"),
    (body(parameters=[param(X, grid=[0.5])]), "parameters[0].grid"),
    (body(parameters=[param(X, grid=[0.5, 2.0])]), "parameters[0].grid"),
    (body(parameters=[param(N, bounds=None, grid=[1, 2.5])]), "parameters[0].grid"),
    # priors
    (body(parameters=[param(N, prior={"name": "normal", "mean": 2, "scale": 1})]), "parameters[0].prior"),
    (body(parameters=[param(X, bounds={"min": 0.1, "max": 1}, transformation="log",
                            prior={"name": "normal", "mean": 0.5, "scale": 1})]), "parameters[0].prior"),
    (body(parameters=[param(X, prior={"name": "normal", "mean": 0.5})]), "parameters[0].prior"),
    (body(parameters=[param(X, prior={"name": "normal", "mean": 0.5, "scale": 0})]), "parameters[0].prior"),
    (body(parameters=[param(X, prior={"name": "normal", "mean": 5, "scale": 1})]), "parameters[0].prior.mean"),
    (body(parameters=[param(X, prior={"name": "beta", "shape_a": 1})]), "parameters[0].prior"),
    (body(parameters=[param(X, prior={"name": "beta", "shape_a": 1, "shape_b": 2, "mean": 1})]),
     "parameters[0].prior.mean"),
    # default values
    (body(parameters=[param(X, default_value=3)]), "parameters[0].default_value"),
    (body(parameters=[param(N, default_value=2.5)]), "parameters[0].default_value"),
    (body(parameters=[param(C, default_value="z")]), "parameters[0].default_value"),
    (body(parameters=[param(X, bounds=None, grid=[0.1, 0.2], default_value=0.15)]), "parameters[0].default_value"),
    # conditionals
    (body(parameters=[param(X, conditions={"k": ["1"]})]), "parameters[0].conditions.k"),
    (body(parameters=[param(X, conditions={"k": ["3"]})], conditionals=[{"name": "k", "values": ["1", "2"]}]),
     "parameters[0].conditions.k"),
    (body(parameters=[param(X, conditions={"k": []})], conditionals=[{"name": "k", "values": ["1", "2"]}]),
     "parameters[0].conditions.k"),
    (body(conditionals=[{"name": "k", "values": ["1"]}]), "conditionals[0].values"),
    (body(conditionals=[{"name": "x", "values": ["1", "2"]}]), "conditionals[0].name"),
    (body(parameters=[X, param(Y, grid=[0.1, 0.2], bounds=None)], conditionals=[{"name": "k", "values": ["1", "2"]}]),
     "conditionals"),
    # linear constraints
    (body(linear_constraints=[lc("less_than", 1, ("nope", 1))]), "linear_constraints[0].terms[0].name"),
    (body(parameters=[X, C], linear_constraints=[lc("less_than", 1, ("c", 1))]), "linear_constraints[0].terms[0].name"),
    (body(parameters=[X, N], linear_constraints=[lc("less_than", 1, ("x", 1), ("n", 1))]),
     "linear_constraints[0].terms"),
    (body(parameters=[param(X, bounds={"min": 0.1, "max": 1}, transformation="log")],
          linear_constraints=[lc("less_than", 1, ("x", 1))]), "linear_constraints[0].terms[0].name"),
    (body(parameters=[X, Y], linear_constraints=[lc("less_than", 1, ("x", 1), ("x", 2))]),
     "linear_constraints[0].terms[1].name"),
    (body(parameters=[X, Y], linear_constraints=[lc("less_than", 1, ("x", 0), ("y", 0))]),
     "linear_constraints[0].terms"),
    (body(parameters=[X, Y], linear_constraints=[lc("greater_than", 2.5, ("x", 1), ("y", 1))]), "linear_constraints"),
    (body(parameters=[X, Y], linear_constraints=[lc("greater_than", 1, ("x", 1), ("y", 1)),
                                                  lc("less_than", 1, ("x", 1), ("y", 1))]), "linear_constraints"),
    (body(parameters=[{"name": f"i{k}", "type": "int", "bounds": {"min": 0, "max": 5}} for k in range(11)],
          linear_constraints=[lc("less_than", 30, *[(f"i{k}", 1.0) for k in range(11)])]), "linear_constraints"),
    # metrics
    (body(metrics=[{"name": "a"}, {"name": "b"}, {"name": "c"}], observation_budget=10), "metrics"),
    (body(metrics=[{"name": f"c{k}", "strategy": "constraint", "threshold": 1} for k in range(5)],
          observation_budget=10), "metrics"),
    (body(metrics=[{"name": "a"}] + [{"name": f"s{k}", "strategy": "store"} for k in range(50)]), "metrics"),
    (body(metrics=[{"name": "a"}, {"name": "a"}], observation_budget=10), "metrics[1].name"),
    (body(metrics=[{"name": "a", "threshold": 1.0}]), "metrics[0].threshold"),
    (body(metrics=[{"name": "a"}, {"name": "b", "strategy": "constraint"}], observation_budget=5),
     "metrics[1].threshold"),
    (body(metrics=[{"name": "a"}, {"name": "b", "strategy": "store", "threshold": 1}]), "metrics[1].threshold"),
    (body(metrics=[{"name": "a", "strategy": "store"}]), "metrics"),
    (body(metric={"name": "a"}), "metric"),
    # budget and shape
    (body(metrics=[{"name": "a"}, {"name": "b"}]), "observation_budget"),
    (body(metrics=[{"name": "a"}, {"name": "b", "strategy": "constraint", "threshold": 1}]), "observation_budget"),
    (body(observation_budget=10, budget=11), "budget"),
    (body(num_solutions=2), "num_solutions"),
    (body(num_solutions=5, observation_budget=3), "num_solutions"),
    (body(parameters=[X, C], num_solutions=2, observation_budget=10), "num_solutions"),
    (body(metrics=[{"name": "a"}, {"name": "b"}], num_solutions=2, observation_budget=10), "num_solutions"),
    (body(type="grid"), "parameters[0].grid"),
    (body(type="grid", parameters=[param(X, grid=[0.1, 0.2], bounds=None)], conditionals=[
        {"name": "k", "values": ["1", "2"]}]), "conditionals"),
    (body(type="grid", parameters=[{"name": f"p{k}", "type": "double", "grid": list(range(10))} for k in range(7)]),
     "parameters"),
    # tasks
    (body(tasks=[{"name": "a", "cost": 1.0}], observation_budget=5), "tasks"),
    (body(tasks=[{"name": "a", "cost": 1.0}, {"name": "b", "cost": 1.5}], observation_budget=5), "tasks[1].cost"),
    (body(tasks=[{"name": "a", "cost": 0.5}, {"name": "b", "cost": 0.2}], observation_budget=5), "tasks"),
    (body(tasks=[{"name": "a", "cost": 1.0}, {"name": "b", "cost": 0.2}]), "observation_budget"),
]


@pytest.fixture(scope="module")
def conn(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    with assay.Connection(home=tmp_path_factory.mktemp("validation")) as c:
        yield c


@pytest.mark.parametrize(("bad", "field"), BAD, ids=[f"{i}-{f}" for i, (_, f) in enumerate(BAD)])
def test_bad_definitions_are_400_naming_the_field(conn: assay.Connection, bad: dict, field: str) -> None:
    before = conn.experiments().fetch(state="all").count
    with pytest.raises(InvalidRequest) as err:
        conn.experiments().create(**bad)
    assert err.value.status == 400
    assert err.value.field == field, err.value
    assert conn.experiments().fetch(state="all").count == before


def test_shape_errors_are_422_naming_the_field(conn: assay.Connection) -> None:
    with pytest.raises(Unprocessable) as err:
        conn.experiments().create(**body(parameters=[param(X, type="float")]))
    assert err.value.field == "parameters[0].type"
    with pytest.raises(Unprocessable) as err:
        conn.experiments().create(**body(type="bandit"))
    assert err.value.field == "type"


GOOD = [
    body(parameters=[param(X, prior={"name": "normal", "mean": 0.5, "scale": 0.2}),
                     param(Y, prior={"name": "beta", "shape_a": 2, "shape_b": 5, "object": "beta_prior"})]),
    body(parameters=[param(N, bounds=None, grid=[1, 3, 9], default_value=3)]),
    body(parameters=[param(X, default_value=0.5, conditions={"k": "1"}), C],
         conditionals=[{"name": "k", "values": ["1", "2"]}]),
    body(parameters=[X, Y, N], linear_constraints=[lc("less_than", 1.5, ("x", 1), ("y", 1)),
                                                   lc("greater_than", 4, ("n", 1))]),
    body(parameters=[X, param(Y, conditions={"k": ["2"]})], conditionals=[{"name": "k", "values": ["1", "2"]}],
         linear_constraints=[lc("less_than", 1, ("x", 1), ("y", 1))]),
    body(metrics=[{"name": "a", "threshold": 0.5}, {"name": "b", "objective": "minimize", "threshold": 3}],
         observation_budget=20),
    body(metrics=[{"name": "lat", "strategy": "constraint", "objective": "minimize", "threshold": 2}],
         observation_budget=10),
    body(metrics=[{"name": "a"}] + [{"name": f"c{k}", "strategy": "constraint", "threshold": 0} for k in range(4)]
         + [{"name": f"s{k}", "strategy": "store"} for k in range(45)], observation_budget=10),
    body(type="grid", parameters=[param(X, bounds=None, grid=[0.1, 0.2]), C]),
    body(type="random", parameters=[X, C]),
    body(num_solutions=3, observation_budget=30, parameters=[X, Y]),
    body(runs_only=True),
]


@pytest.mark.parametrize("good", GOOD)
def test_valid_definitions_round_trip(conn: assay.Connection, good: dict) -> None:
    exp = conn.experiments().create(**good)
    again = conn.experiments(exp.id).fetch()
    assert again.parameters == exp.parameters and again.metrics == exp.metrics
    assert [p.name for p in exp.parameters] == [p["name"] for p in good["parameters"]]
    if good.get("type") == "grid":
        assert exp.observation_budget == 4
    assert exp.conditionals == [{"object": "conditional", "name": c["name"], "values": c["values"]}
                                for c in good.get("conditionals", [])]
    if good.get("runs_only"):
        # runs-only (AI) experiments hand out suggestions through runs only, as SigOpt's
        with pytest.raises(assay.errors.Forbidden):
            conn.experiments(exp.id).suggestions().create()
        return
    s = conn.experiments(exp.id).suggestions().create()
    for p in exp.parameters:
        if p.grid and p.name in s.assignments:
            assert s.assignments[p.name] in p.grid
