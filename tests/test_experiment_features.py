"""Experiment definitions end to end through the public ``sigopt`` client against a served assay:
priors, conditionals, linear constraints, grids, queued and user suggestions, update rules,
stopping criteria, metric importances and the Pareto frontier."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sigopt import Connection as SigOptConnection
from sigopt.exception import ApiException

from tests.conftest import ServerProcess


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("features")).start()
    yield proc
    proc.stop()


@pytest.fixture
def sig(served: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> SigOptConnection:
    monkeypatch.setenv("SIGOPT_API_URL", served.url)
    return SigOptConnection(client_token="any-token")


def refused(call, status: int = 400, field_word: str | None = None) -> ApiException:  # type: ignore[no-untyped-def]
    with pytest.raises(ApiException) as err:
        call()
    assert err.value.status_code == status, err.value
    if field_word:
        assert field_word in str(err.value), str(err.value)
    return err.value


def test_conditionals_constraints_and_priors_in_every_suggestion(sig: SigOptConnection) -> None:
    exp = sig.experiments().create(
        name="everything",
        parameters=[
            dict(name="lr", type="double", bounds=dict(min=0, max=1), prior=dict(name="normal", mean=0.3, scale=0.1)),
            dict(name="w1", type="double", bounds=dict(min=0, max=1)),
            dict(name="w2", type="double", bounds=dict(min=0, max=1), conditions=dict(layers=["2"])),
            dict(name="units", type="int", bounds=dict(min=1, max=64), conditions=dict(layers=["2"])),
            dict(name="act", type="categorical", categorical_values=["relu", "tanh"]),
        ],
        conditionals=[dict(name="layers", values=["1", "2"])],
        linear_constraints=[
            dict(type="less_than", threshold=1.2, terms=[dict(name="lr", weight=1), dict(name="w1", weight=1)]),
            dict(type="less_than", threshold=1.0, terms=[dict(name="w1", weight=1), dict(name="w2", weight=1)]),
        ],
        metrics=[dict(name="acc")],
        observation_budget=20,
    )
    assert exp.conditionals[0].values == ["1", "2"]
    assert exp.parameters[0].prior.mean == 0.3 and exp.parameters[0].prior.name == "normal"
    assert exp.parameters[1].grid == []
    assert exp.parameters[2].conditions.to_json() == {"layers": ["2"]}
    assert exp.linear_constraints[1].terms[1].name == "w2"
    layers = set()
    for _ in range(10):
        a = sig.experiments(exp.id).suggestions().create().assignments
        layers.add(a["layers"])
        assert a["lr"] + a["w1"] <= 1.2 + 1e-9
        if a["layers"] == "2":
            assert a["w1"] + a["w2"] <= 1.0 + 1e-9 and 1 <= a["units"] <= 64
        else:
            assert "w2" not in a and "units" not in a
    assert layers == {"1", "2"}


def test_queued_suggestions_are_served_first(sig: SigOptConnection) -> None:
    exp = sig.experiments().create(name="q", parameters=[dict(name="x", type="double", bounds=dict(min=0, max=1)),
                                                         dict(name="n", type="int", bounds=dict(min=1, max=5))],
                                   metrics=[dict(name="y")])
    q1 = sig.experiments(exp.id).queued_suggestions().create(assignments=dict(x=0.25, n=2))
    q2 = sig.experiments(exp.id).queued_suggestions().create(assignments=dict(x=0.75, n=4))
    assert q1.assignments["x"] == 0.25 and q1.experiment == exp.id
    listed = sig.experiments(exp.id).queued_suggestions().fetch()
    assert [q.id for q in listed.data] == [q1.id, q2.id]
    assert sig.experiments(exp.id).queued_suggestions(q2.id).fetch().assignments["n"] == 4
    refused(lambda: sig.experiments(exp.id).queued_suggestions().create(assignments=dict(x=2.0, n=2)), 400, "x")
    refused(lambda: sig.experiments(exp.id).queued_suggestions().create(assignments=dict(x=0.5)), 400, "n")
    s1 = sig.experiments(exp.id).suggestions().create()
    s2 = sig.experiments(exp.id).suggestions().create()
    assert dict(s1.assignments) == {"x": 0.25, "n": 2} and dict(s2.assignments) == {"x": 0.75, "n": 4}
    assert sig.experiments(exp.id).queued_suggestions().fetch().data == []
    s3 = sig.experiments(exp.id).suggestions().create()
    assert dict(s3.assignments) not in ({"x": 0.25, "n": 2}, {"x": 0.75, "n": 4})
    # delete one queued suggestion: it is never served
    q3 = sig.experiments(exp.id).queued_suggestions().create(assignments=dict(x=0.5, n=1))
    sig.experiments(exp.id).queued_suggestions(q3.id).delete()
    refused(lambda: sig.experiments(exp.id).queued_suggestions(q3.id).fetch(), 404)
    assert dict(sig.experiments(exp.id).suggestions().create().assignments) != {"x": 0.5, "n": 1}


def test_user_created_suggestions(sig: SigOptConnection) -> None:
    exp = sig.experiments().create(name="u", parameters=[dict(name="c", type="categorical",
                                                              categorical_values=["a", "b"]),
                                                         dict(name="g", type="double", grid=[0.0, 0.1, 0.5])],
                                   metrics=[dict(name="y")])
    assert exp.parameters[1].grid == [0.0, 0.1, 0.5]
    for _ in range(4):
        assert sig.experiments(exp.id).suggestions().create().assignments["g"] in (0.0, 0.1, 0.5)
    s = sig.experiments(exp.id).suggestions().create(assignments=dict(c="b", g=0.1), metadata=dict(who="me"))
    assert s.assignments["c"] == "b" and s.state == "open" and s.metadata["who"] == "me"
    refused(lambda: sig.experiments(exp.id).suggestions().create(assignments=dict(c="z", g=0.1)), 400, "c")
    sig.experiments(exp.id).observations().create(suggestion=s.id, values=[dict(name="y", value=1.0)])
    assert sig.experiments(exp.id).suggestions(s.id).fetch().state == "closed"


def test_grid_experiment_enumerates_then_refuses(sig: SigOptConnection) -> None:
    exp = sig.experiments().create(type="grid", name="g", parameters=[
        dict(name="a", type="int", grid=[1, 2, 4]), dict(name="b", type="double", grid=[0.5, 1.5]),
        dict(name="c", type="categorical", categorical_values=["x", "y"])], metrics=[dict(name="y")])
    assert exp.type == "grid" and exp.observation_budget == 12
    assert exp.parameters[0].grid == [1, 2, 4] and exp.parameters[0].bounds.min == 1
    seen = set()
    for _ in range(12):
        s = sig.experiments(exp.id).suggestions().create()
        seen.add((s.assignments["a"], s.assignments["b"], s.assignments["c"]))
        sig.experiments(exp.id).observations().create(suggestion=s.id, values=[dict(name="y", value=1.0)])
    assert len(seen) == 12
    err = refused(lambda: sig.experiments(exp.id).suggestions().create(), 409)
    assert "exhausted" in str(err)
    refused(lambda: sig.experiments(exp.id).update(observation_budget=20), 400, "grid")
    # a grid change recomputes the budget and the new points are handed out
    up = sig.experiments(exp.id).update(parameters=[
        dict(name="a", type="int", grid=[1, 2, 4, 8]), dict(name="b", type="double", grid=[0.5, 1.5]),
        dict(name="c", type="categorical", categorical_values=["x", "y"])])
    assert up.observation_budget == 16
    assert sig.experiments(exp.id).suggestions().create().assignments["a"] == 8
    assert sig.experiments(exp.id).stopping_criteria().fetch().should_stop is False


def _fetch_state(sig: SigOptConnection, eid: str) -> tuple:
    e = sig.experiments(eid).fetch().to_json()
    e.pop("progress", None)
    obs = [o.to_json() for o in sig.experiments(eid).observations().fetch().data]
    return e, obs


def test_update_rules(sig: SigOptConnection) -> None:
    params = [dict(name="x", type="double", bounds=dict(min=0, max=1)),
              dict(name="c", type="categorical", categorical_values=["a", "b", "c"]),
              dict(name="n", type="int", bounds=dict(min=1, max=10))]
    exp = sig.experiments().create(
        name="upd", parameters=params, metrics=[dict(name="f1"), dict(name="f2", objective="minimize")],
        linear_constraints=[dict(type="less_than", threshold=8, terms=[dict(name="n", weight=1)])],
        observation_budget=10)
    for _ in range(3):
        s = sig.experiments(exp.id).suggestions().create()
        sig.experiments(exp.id).observations().create(suggestion=s.id, values=[dict(name="f1", value=1.0),
                                                                                dict(name="f2", value=2.0)])
    before = _fetch_state(sig, exp.id)
    bad_updates = [
        (dict(type="random"), "type"),
        (dict(parameters=[dict(name="x", type="int", bounds=dict(min=0, max=1)), params[1], params[2]]), "type"),
        (dict(parameters=[dict(name="x", type="double", bounds=dict(min=0.1, max=1), transformation="log"),
                          params[1], params[2]]), "transformation"),
        (dict(parameters=[params[0], dict(name="c", type="categorical", categorical_values=["a", "b", "z"]),
                          params[2]]), "categorical"),
        (dict(parameters=[*params, dict(name="new", type="double", bounds=dict(min=0, max=1))]), "default_value"),
        (dict(parameters=params[:2]), "linear constraint"),
        (dict(parameters=[params[0], params[1], dict(name="n", type="int", bounds=dict(min=9, max=10))]),
         "linear_constraints"),
        (dict(linear_constraints=[dict(type="less_than", threshold=9, terms=[dict(name="n", weight=1)])]),
         "linear_constraints"),
        (dict(conditionals=[dict(name="k", values=["1", "2"])]), "conditionals"),
        (dict(tasks=[dict(name="t", cost=1.0)]), "tasks"),
        (dict(num_solutions=3), "num_solutions"),
        (dict(metrics=[dict(name="f1", objective="minimize"), dict(name="f2", objective="minimize")]), "objective"),
        (dict(metrics=[dict(name="f1", strategy="store"), dict(name="f2", objective="minimize")]), "strategy"),
        (dict(metrics=[dict(name="renamed"), dict(name="f2", objective="minimize")]), "metrics"),
        (dict(metrics=[dict(name="f1", threshold=1.0)]), "metrics"),
    ]
    for body, word in bad_updates:
        refused(lambda body=body: sig.experiments(exp.id).update(**body), 400, word)
        assert _fetch_state(sig, exp.id) == before, body
    # sending unchanged fixed fields is fine
    same = sig.experiments(exp.id).update(type="offline", linear_constraints=[
        dict(type="less_than", threshold=8, terms=[dict(name="n", weight=1)])], name="renamed")
    assert same.name == "renamed"
    # allowed: budget, bandwidth, thresholds, bounds, removal, categorical-value removal, prior, new parameter
    up = sig.experiments(exp.id).update(
        observation_budget=25, parallel_bandwidth=3,
        metrics=[dict(name="f1", threshold=0.5), dict(name="f2", objective="minimize", threshold=3.0)],
        parameters=[dict(name="x", type="double", bounds=dict(min=0, max=2), prior=dict(name="beta", shape_a=2,
                                                                                       shape_b=2)),
                    dict(name="c", type="categorical", categorical_values=["a", "b"]),
                    dict(name="n", type="int", bounds=dict(min=1, max=10)),
                    dict(name="extra", type="int", bounds=dict(min=0, max=5), default_value=3)])
    assert up.observation_budget == 25 and up.parallel_bandwidth == 3
    assert [m.threshold for m in up.metrics] == [0.5, 3.0]
    assert up.parameters[0].bounds.max == 2 and up.parameters[0].prior.shape_a == 2
    assert [v.name for v in up.parameters[1].categorical_values] == ["a", "b"]
    assert up.parameters[3].default_value == 3
    for _ in range(4):
        a = sig.experiments(exp.id).suggestions().create().assignments
        assert 0 <= a["x"] <= 2 and a["c"] in ("a", "b") and 0 <= a["extra"] <= 5 and a["n"] <= 8
    # removing a parameter
    up = sig.experiments(exp.id).update(parameters=[dict(name="x", type="double", bounds=dict(min=0, max=2)),
                                                    dict(name="c", type="categorical", categorical_values=["a", "b"]),
                                                    dict(name="n", type="int", bounds=dict(min=1, max=10))])
    assert [p.name for p in up.parameters] == ["x", "c", "n"]
    assert "extra" not in sig.experiments(exp.id).suggestions().create().assignments
    # archive and unarchive
    assert sig.experiments(exp.id).update(state="deleted").state == "deleted"
    refused(lambda: sig.experiments(exp.id).suggestions().create(), 409)
    assert sig.experiments(exp.id).update(state="active").state == "active"
    assert sig.experiments(exp.id).fetch().progress.observation_count == 3


def test_stopping_criteria(sig: SigOptConnection) -> None:
    exp = sig.experiments().create(name="stop", parameters=[dict(name="x", type="double", bounds=dict(min=0, max=1))],
                                   metrics=[dict(name="y")], observation_budget=12)
    crit = sig.experiments(exp.id).stopping_criteria().fetch()
    assert crit.should_stop is False and crit.reasons == []
    # the best five values come first; the last 5 x 1 observations do not beat them
    for i in range(11):
        sig.experiments(exp.id).observations().create(assignments=dict(x=i / 20), values=[dict(name="y",
                                                                                             value=100 - i)])
    crit = sig.experiments(exp.id).stopping_criteria().fetch()
    assert crit.should_stop is True and crit.reasons == ["possible_stagnation"]
    sig.experiments(exp.id).observations().create(assignments=dict(x=0.9), values=[dict(name="y", value=1000)])
    crit = sig.experiments(exp.id).stopping_criteria().fetch()
    assert crit.reasons == ["observation_budget_reached"]


def test_metric_importances(sig: SigOptConnection) -> None:
    exp = sig.experiments().create(name="imp", parameters=[
        dict(name="big", type="double", bounds=dict(min=0, max=1)),
        dict(name="small", type="double", bounds=dict(min=0, max=1)),
        dict(name="kind", type="categorical", categorical_values=["a", "b"])],
        metrics=[dict(name="score"), dict(name="time", strategy="store")], observation_budget=40)
    refused(lambda: sig.experiments(exp.id).metric_importances().fetch(), 422, "Not enough observations")
    for _ in range(15):
        a = sig.experiments(exp.id).suggestions().create().assignments
        sig.experiments(exp.id).observations().create(
            assignments=dict(a), values=[dict(name="score", value=5 * a["big"] + 0.1 * a["small"]),
                                         dict(name="time", value=1.0 if a["kind"] == "a" else 2.0)])
    page = sig.experiments(exp.id).metric_importances().fetch()
    by_metric = {d.metric: d.importances for d in page.data}
    assert list(by_metric) == ["score", "time"]
    score, time = by_metric["score"], by_metric["time"]
    assert set(score) == {"big", "small", "kind"}
    assert max(score, key=score.get) == "big"
    assert max(time, key=time.get) == "kind"
    legacy = sig.experiments(exp.id).importances().fetch()
    assert legacy.importances["big"] == score["big"]


def test_best_assignments_pareto_and_search(sig: SigOptConnection) -> None:
    exp = sig.experiments().create(name="mo", parameters=[dict(name="x", type="double", bounds=dict(min=0, max=1))],
                                   metrics=[dict(name="f1", objective="minimize"),
                                            dict(name="f2", objective="minimize")], observation_budget=30)
    # Schaffer N.1: f1 = x^2, f2 = (x - 2)^2; on [0, 1] every x is Pareto optimal, so add dominated points by hand
    xs = [0.0, 0.25, 0.5, 0.75, 1.0]
    for x in xs:
        sig.experiments(exp.id).observations().create(assignments=dict(x=x), values=[
            dict(name="f1", value=x**2), dict(name="f2", value=(x - 2) ** 2)])
    for x in (0.3, 0.6):  # dominated: worse in both than x itself
        sig.experiments(exp.id).observations().create(assignments=dict(x=x), values=[
            dict(name="f1", value=x**2 + 1), dict(name="f2", value=(x - 2) ** 2 + 1)])
    best = sig.experiments(exp.id).best_assignments().fetch()
    assert sorted(b.assignments["x"] for b in best.data) == xs
    assert all(len(b.values) == 2 for b in best.data)

    search = sig.experiments().create(name="search", parameters=[dict(name="x", type="double",
                                                                      bounds=dict(min=0, max=1))],
                                      metrics=[dict(name="lat", strategy="constraint", objective="minimize",
                                                    threshold=5.0)], observation_budget=10)
    for x, lat in ((0.1, 1.0), (0.2, 9.0), (0.3, 4.0)):
        sig.experiments(search.id).observations().create(assignments=dict(x=x), values=[dict(name="lat", value=lat)])
    best = sig.experiments(search.id).best_assignments().fetch()
    assert sorted(b.assignments["x"] for b in best.data) == [0.1, 0.3]


def _branin(x1: float, x2: float) -> float:
    import math

    return ((x2 - 5.1 / (4 * math.pi**2) * x1**2 + 5 / math.pi * x1 - 6) ** 2
            + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10)


def test_multisolution_returns_diverse_solutions(sig: SigOptConnection) -> None:
    params = [dict(name="x1", type="double", bounds=dict(min=-5, max=10)),
              dict(name="x2", type="double", bounds=dict(min=0, max=15))]
    refused(lambda: sig.experiments().create(name="ms", parameters=params, metrics=[dict(name="f")],
                                             num_solutions=3), 400, "num_solutions")
    refused(lambda: sig.experiments().create(name="ms", parameters=params, metrics=[dict(name="f")],
                                             num_solutions=31, observation_budget=30), 400, "num_solutions")
    exp = sig.experiments().create(name="ms", parameters=params, num_solutions=3, observation_budget=300,
                                   metrics=[dict(name="f", objective="minimize")])
    assert exp.num_solutions == 3
    refused(lambda: sig.experiments(exp.id).update(num_solutions=2), 400, "num_solutions")
    # 30 random points, and a small cluster at each of Branin's three global minima (value 0.397887)
    import random

    rnd = random.Random(4)
    minima = [(-3.14159, 12.275), (3.14159, 2.275), (9.42478, 2.475)]
    points = [(rnd.uniform(-5, 10), rnd.uniform(0, 15)) for _ in range(30)]
    points += [(a + da, b + db) for a, b in minima for da, db in ((0, 0), (0.3, 0.2), (-0.4, 0.3))]
    sig.experiments(exp.id).observations().create_batch(observations=[
        dict(assignments=dict(x1=a, x2=b), values=[dict(name="f", value=_branin(a, b))]) for a, b in points])
    best = sig.experiments(exp.id).best_assignments().fetch().data
    assert len(best) == 3
    values = [b.value for b in best]
    assert values == sorted(values) and values[0] == min(_branin(a, b) for a, b in points) and values[2] < 0.398
    # one solution at each minimum, not three from the best cluster
    assert sorted(round(b.assignments["x1"] / 3.14) for b in best) == [-1, 1, 3]
    # suggestions keep coming from the model: improvement or multisolution search turns (precomputed
    # candidates may be served out of turn order, and a heavily loaded machine may serve a random
    # fallback; tests/engine/test_multisolution.py pins the turns down exactly)
    allowed = ("gp:logei", "gp:lognei", "gp:multisolution-search", "fallback-random: no model suggestion within 20s")
    for _ in range(2):
        s = sig.experiments(exp.id).suggestions().create()
        assert s.to_json()["source"].split(";")[0] in allowed
        assert -5 <= s.assignments["x1"] <= 10 and 0 <= s.assignments["x2"] <= 15
        sig.experiments(exp.id).observations().create(suggestion=s.id, values=[
            dict(name="f", value=_branin(s.assignments["x1"], s.assignments["x2"]))])
    assert len(sig.experiments(exp.id).best_assignments().fetch().data) == 3


def test_stored_metrics_are_recorded_only(sig: SigOptConnection) -> None:
    exp = sig.experiments().create(name="stored", parameters=[dict(name="x", type="double",
                                                                   bounds=dict(min=0, max=1))],
                                   metrics=[dict(name="acc"), dict(name="seconds", strategy="store")])
    assert [m.strategy for m in exp.metrics] == ["optimize", "store"]
    # a stored metric may be left out; the optimized one may not
    sig.experiments(exp.id).observations().create(assignments=dict(x=0.1), values=[dict(name="acc", value=0.5)])
    refused(lambda: sig.experiments(exp.id).observations().create(
        assignments=dict(x=0.2), values=[dict(name="seconds", value=1.0)]), 400, "acc")
    sig.experiments(exp.id).observations().create(assignments=dict(x=0.3), values=[
        dict(name="acc", value=0.9), dict(name="seconds", value=1e6)])
    sig.experiments(exp.id).observations().create(assignments=dict(x=0.4), values=[
        dict(name="acc", value=0.7), dict(name="seconds", value=-1e6)])
    # recorded as given, and never part of "best": the best accuracy wins whatever it cost
    best = sig.experiments(exp.id).best_assignments().fetch().data
    assert [b.assignments["x"] for b in best] == [0.3]
    assert {v.name: v.value for v in best[0].values} == {"acc": 0.9, "seconds": 1e6}
    stored = [[v.name for v in o.values] for o in sig.experiments(exp.id).observations().fetch().data]
    assert sorted(map(sorted, stored)) == [["acc"], ["acc", "seconds"], ["acc", "seconds"]]
