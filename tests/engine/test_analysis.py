"""Pareto frontier, stopping criteria and parameter importance (pure engine functions)."""

from __future__ import annotations

import numpy as np

from assay.domain import Bounds, Conditional, Metric, MetricValue, Observation, ObservationColumns, Parameter, Task
from assay.engine.analysis import best_observations, best_rows, pareto_mask
from assay.engine.importance import metric_importances, min_observations
from assay.engine.stopping import stopping_criteria
from assay.space import Space

F1, F2 = Metric("f1", "minimize"), Metric("f2", "minimize")


def obs(i: int, assignments: dict, /, **values: float) -> Observation:
    return Observation(i, 1, assignments, tuple(MetricValue(k, v) for k, v in values.items()))


def zdt1(x: np.ndarray) -> tuple[float, float]:
    g = 1 + 9 * x[1:].sum() / (len(x) - 1)
    f1 = x[0]
    return f1, g * (1 - np.sqrt(f1 / g))


def test_pareto_front_of_zdt1_is_exactly_the_g_equals_1_points() -> None:
    rng = np.random.default_rng(0)
    # 40 points on the true front (x[1:] = 0) and 200 random points, all dominated by the front
    front = [np.r_[t, np.zeros(4)] for t in np.linspace(0.0, 1.0, 40)]
    others = [np.r_[rng.random(), 0.05 + rng.random(4)] for _ in range(200)]
    points = front + others
    observations = [obs(i, {"x": float(p[0])}, **dict(zip(("f1", "f2"), zdt1(p), strict=True)))
                    for i, p in enumerate(points)]
    best = best_observations(observations, (F1, F2))
    assert sorted(o.id for o in best) == list(range(40))
    # and the front of the random points alone: no returned point is dominated by any point
    best_others = best_observations(observations[40:], (F1, F2))
    y = np.array([[o.value_of("f1"), o.value_of("f2")] for o in observations[40:]])
    for o in best_others:
        f = np.array([o.value_of("f1"), o.value_of("f2")])
        assert not np.any(np.all(y <= f, axis=1) & np.any(y < f, axis=1))
    n_front = int(pareto_mask(-y).sum())
    assert len(best_others) == n_front


def test_pareto_front_respects_constraints_thresholds_and_failures() -> None:
    c = Metric("lat", "minimize", "constraint", 10.0)
    t1, t2 = Metric("a", "maximize", threshold=0.5), Metric("b", "maximize")
    o = [
        obs(1, {}, a=1.0, b=0.0, lat=5),
        obs(2, {}, a=0.0, b=1.0, lat=5),  # below a's threshold
        obs(3, {}, a=0.9, b=0.9, lat=50),  # infeasible
        obs(4, {}, a=0.6, b=0.6, lat=1),
        Observation(5, 1, {}, failed=True),
    ]
    assert {x.id for x in best_observations(o, (t1, t2, c))} == {1, 4}
    assert {x.id for x in best_observations(o, (Metric("a"), t2, c))} == {1, 2, 4}


def test_search_experiments_return_every_feasible_point() -> None:
    c1 = Metric("lat", "minimize", "constraint", 10.0)
    c2 = Metric("acc", "maximize", "constraint", 0.5)
    o = [obs(1, {}, lat=5, acc=0.9), obs(2, {}, lat=20, acc=0.9), obs(3, {}, lat=1, acc=0.6),
         obs(4, {}, lat=1, acc=0.1), Observation(5, 1, {}, failed=True)]
    assert [x.id for x in best_observations(o, (c1, c2))] == [1, 3]


def test_budget_reached() -> None:
    m = (Metric("y"),)
    o = [obs(i, {}, y=float(i)) for i in range(5)]
    assert stopping_criteria(o, m, 2, 6).reasons == []
    assert stopping_criteria(o, m, 2, 5).to_json() == {"object": "stopping_criteria", "should_stop": True,
                                                       "reasons": ["observation_budget_reached"]}
    tasks = (Task("cheap", 0.1), Task("full", 1.0))
    cheap = [Observation(i, 1, {}, (MetricValue("y", 1.0),), task=tasks[0]) for i in range(5)]
    assert not stopping_criteria(cheap, m, 2, 1, tasks).should_stop  # 0.5 of 1 consumed


def test_stagnation_single_metric() -> None:
    m = (Metric("y", "minimize"),)
    dim = 2  # lookback 10
    improving = [obs(i, {}, y=100.0 - i) for i in range(20)]
    assert not stopping_criteria(improving, m, dim, None).should_stop
    # best five early, nothing better in the last 10
    flat = [obs(i, {}, y=float(i)) for i in range(20)]
    assert stopping_criteria(flat, m, dim, None).reasons == ["possible_stagnation"]
    # too few observations to judge (needs more than 5*dim + 4)
    assert not stopping_criteria(flat[:14], m, dim, None).should_stop
    # a new best among the last 10 clears it
    assert not stopping_criteria(flat + [obs(99, {}, y=-1.0)], m, dim, None).should_stop
    # failures never count as improvement
    failed = flat + [Observation(100 + i, 1, {}, failed=True) for i in range(10)]
    assert stopping_criteria(failed, m, dim, None).should_stop


def test_stagnation_two_metrics_uses_the_pareto_front() -> None:
    ms = (Metric("a"), Metric("b"))
    base = [obs(i, {}, a=float(i), b=float(10 - i)) for i in range(10)]  # all on one front
    dominated = [obs(10 + i, {}, a=0.0, b=0.0) for i in range(10)]
    assert stopping_criteria(base + dominated, ms, 2, None).reasons == ["possible_stagnation"]
    better = dominated[:-1] + [obs(30, {}, a=20.0, b=20.0)]
    assert not stopping_criteria(base + better, ms, 2, None).should_stop


def test_search_experiments_never_stagnate() -> None:
    ms = (Metric("lat", "minimize", "constraint", 1.0),)
    assert not stopping_criteria([obs(i, {}, lat=5.0) for i in range(40)], ms, 1, None).should_stop


def _space() -> Space:
    return Space([Parameter("x", "double", Bounds(0, 1)), Parameter("n", "double", Bounds(0, 1)),
                  Parameter("c", "categorical", categorical_values=("a", "b")),
                  Parameter("z", "double", Bounds(0, 1), conditions={"mode": ("on",)})],
                 [Conditional("mode", ("on", "off"))])


def test_importance_finds_the_parameter_that_matters() -> None:
    space = _space()
    rng = np.random.default_rng(1)
    o = []
    for i in range(60):
        a = space.from_unit(rng.random(space.dim))[0]
        y = 10 * a["x"] ** 2 + 0.01 * a["n"] + (0.5 if a["c"] == "a" else 0.0)
        o.append(obs(i, a, y=y, noise=float(rng.random())))
    imp = metric_importances(space, o, (Metric("y"), Metric("noise", strategy="store")))
    assert imp is not None and list(imp) == ["noise", "y"]
    y = imp["y"]
    assert set(y) == {"x", "n", "c", "z", "mode"}
    assert abs(sum(y.values()) - 1) < 1e-9
    assert max(y, key=lambda k: y[k]) == "x" and y["x"] > 0.5 and y["c"] > y["n"]


def test_importance_needs_enough_observations() -> None:
    space = _space()
    assert min_observations(space) == 25
    a = {"x": 0.1, "n": 0.2, "c": "a", "mode": "off"}
    assert metric_importances(space, [obs(i, a, y=float(i)) for i in range(24)], (Metric("y"),)) is None
    one = Space([Parameter("x", "double", Bounds(0, 1))])
    assert metric_importances(one, [], (Metric("y"),)) == {"y": {"x": 1.0}}
    flat = metric_importances(space, [obs(i, {**a, "x": i / 30}, y=1.0) for i in range(30)], (Metric("y"),))
    assert flat == {"y": dict.fromkeys(["x", "n", "c", "z", "mode"], 0.0)}


# -- the columnar versions the dashboard uses agree with the per-observation ones --------------------------
def _brute_pareto(y: np.ndarray) -> np.ndarray:
    return np.array([not (np.all(y >= r, axis=1) & np.any(y > r, axis=1)).any() for r in y], dtype=bool)


def test_pareto_mask_matches_brute_force_with_ties() -> None:
    rng = np.random.default_rng(5)
    for _ in range(200):
        y = rng.integers(0, 4, size=(int(rng.integers(0, 25)), int(rng.integers(1, 4)))).astype(float)
        assert (pareto_mask(y) == _brute_pareto(y)).all(), y


def _columns(observations: list[Observation]) -> ObservationColumns:
    return ObservationColumns(
        id=[o.id for o in observations], created=[o.created for o in observations],
        failed=[o.failed for o in observations], suggestion_id=[None] * len(observations),
        task=[o.task.name if o.task else None for o in observations],
        cost=[o.task.cost if o.task else 1.0 for o in observations],
        assignments=[dict(o.assignments) for o in observations],
        values=[{v.name: v.value for v in o.values} for o in observations])


def test_best_rows_equals_best_observations() -> None:
    rng = np.random.default_rng(6)
    tasks = (Task("cheap", 0.1), Task("full", 1.0))
    shapes = [
        ((Metric("a", "maximize"),), ()),
        ((Metric("a", "minimize"), Metric("c", "maximize", strategy="constraint", threshold=0.5)), ()),
        ((Metric("a", "maximize", threshold=0.3), Metric("b", "minimize", threshold=0.6)), ()),
        ((Metric("a", "maximize"), Metric("b", "maximize")), tasks),
        ((Metric("c", "maximize", strategy="constraint", threshold=0.2),), ()),
    ]
    for metrics, ts in shapes:
        for _ in range(30):
            observations = []
            for i in range(int(rng.integers(0, 40))):
                failed = rng.random() < 0.15
                values = () if failed else tuple(MetricValue(k, float(rng.integers(0, 5)) / 4) for k in "abc"
                                                 if rng.random() < 0.9)
                task = tasks[int(rng.integers(0, 2))] if ts else None
                observations.append(Observation(i + 1, 1, {"x": 0.5}, values, failed=failed, task=task))
            expected = [o.id for o in best_observations(observations, metrics, ts)]
            got = [observations[i].id for i in best_rows(_columns(observations), metrics, ts)]
            assert got == expected
