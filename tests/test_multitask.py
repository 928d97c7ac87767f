"""Multitask (multi-fidelity) experiments through the public ``sigopt`` client and assay's own client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sigopt import Connection as SigOptConnection
from sigopt.exception import ApiException

import assay
from tests.conftest import ServerProcess

PARAMS = [dict(name="x", type="double", bounds=dict(min=0.0, max=1.0)),
          dict(name="k", type="int", bounds=dict(min=1, max=4))]
TASKS = [dict(name="cheap", cost=0.1), dict(name="mid", cost=0.25), dict(name="full", cost=1.0)]


def body(**over):  # type: ignore[no-untyped-def]
    b = dict(name="mt", parameters=PARAMS, metrics=[dict(name="acc", objective="maximize")], tasks=TASKS,
             observation_budget=5)
    b.update(over)
    return b


@pytest.fixture
def sig(server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> SigOptConnection:
    monkeypatch.setenv("SIGOPT_API_URL", server.url)
    return SigOptConnection(client_token="any-token")


BAD: list[tuple[dict[str, Any], str, str]] = [
    (dict(tasks=[dict(name="full", cost=1.0)]), "tasks", "at least 2"),
    (dict(tasks=[dict(name="a", cost=0.5), dict(name="b", cost=0.5), dict(name="c", cost=1.0)]), "tasks",
     "distinct"),
    (dict(tasks=[dict(name="a", cost=0.5), dict(name="b", cost=0.7)]), "tasks", "exactly one"),
    (dict(tasks=[dict(name="a", cost=0.0), dict(name="b", cost=1.0)]), "tasks[0].cost", "(0, 1]"),
    (dict(tasks=[dict(name="a", cost=1.5), dict(name="b", cost=1.0)]), "tasks[0].cost", "(0, 1]"),
    (dict(observation_budget=None), "observation_budget", "required"),
    (dict(metrics=[dict(name="a"), dict(name="b")]), "tasks", "multiple metrics"),
    (dict(metrics=[dict(name="a"), dict(name="c", strategy="constraint", threshold=1.0)]), "tasks", "constraint"),
    (dict(num_solutions=2), "tasks", "num_solutions"),
    (dict(tasks=[dict(name="a", cost=0.1), dict(name="a", cost=1.0)]), "tasks[1].name", "Duplicate"),
]


def test_task_validation_errors(sig: SigOptConnection) -> None:
    for over, field, words in BAD:
        with pytest.raises(ApiException) as err:
            sig.experiments().create(**body(**over))
        assert err.value.status_code == 400, over
        assert err.value.to_json()["field"] == field, (over, err.value.to_json())
        assert words in err.value.message, (over, err.value.message)
    assert sig.experiments().fetch().data == []  # nothing was stored
    exp = sig.experiments().create(**body())
    with pytest.raises(ApiException) as err:
        sig.experiments(exp.id).update(tasks=TASKS[:2])
    assert err.value.status_code == 400 and err.value.to_json()["field"] == "tasks"


def test_tasks_flow_through_the_sigopt_client(sig: SigOptConnection) -> None:
    exp = sig.experiments().create(**body())
    assert [(t.name, t.cost) for t in exp.tasks] == [("cheap", 0.1), ("mid", 0.25), ("full", 1.0)]
    eid = exp.id
    costs = []
    for i in range(6):  # the space-filling start (2 dims: 6 points), all on the cheapest task
        s = sig.experiments(eid).suggestions().create()
        assert s.task is not None and s.task.name in {"cheap", "mid", "full"}
        assert s.task.cost == {"cheap": 0.1, "mid": 0.25, "full": 1.0}[s.task.name]
        assert s.to_json()["task"] == {"object": "task", "name": s.task.name, "cost": s.task.cost}
        value = 0.9 if s.task.name == "cheap" else 0.5 + i / 100
        o = sig.experiments(eid).observations().create(suggestion=s.id, values=[dict(name="acc", value=value)])
        assert o.task.name == s.task.name and o.task.cost == s.task.cost  # recorded from the suggestion
        costs.append(s.task.cost)
    assert costs == [0.1] * 6

    # an observation by assignments names its task; a wrong or missing task is a 400 naming the field
    o = sig.experiments(eid).observations().create(assignments=dict(x=0.5, k=2), task=dict(name="mid"),
                                                   values=[dict(name="acc", value=0.99)])
    assert o.task.name == "mid" and o.task.cost == 0.25
    o = sig.experiments(eid).observations().create(assignments=dict(x=0.25, k=3), task="full",
                                                   values=[dict(name="acc", value=0.7)])
    assert o.task.name == "full"
    for bad, field in ((dict(task="huge"), "observation.task"), ({}, "observation.task")):
        with pytest.raises(ApiException) as err:
            sig.experiments(eid).observations().create(assignments=dict(x=0.1, k=1),
                                                       values=[dict(name="acc", value=1.0)], **bad)
        assert err.value.status_code == 400 and err.value.to_json()["field"] == field
    s = sig.experiments(eid).suggestions().create()
    other = next(t["name"] for t in TASKS if t["name"] != s.task.name)
    with pytest.raises(ApiException) as err:
        sig.experiments(eid).observations().create(suggestion=s.id, task=other, values=[dict(name="acc", value=1)])
    assert err.value.status_code == 400 and err.value.to_json()["field"] == "observation.task"
    sig.experiments(eid).suggestions(s.id).delete()

    # budget: the sum of task costs of the observations
    fetched = sig.experiments(eid).fetch()
    assert fetched.progress.observation_count == 8
    assert fetched.progress.observation_budget_consumed == pytest.approx(6 * 0.1 + 0.25 + 1.0)

    # best: full-cost observations only (the cheap 0.9 and the mid 0.99 do not count)
    best = sig.experiments(eid).best_assignments().fetch().data
    assert len(best) == 1 and best[0].value == pytest.approx(0.7)
    assert best[0].assignments["x"] == 0.25 and best[0].to_json()["task"]["name"] == "full"
    assert fetched.progress.best_observation.value == pytest.approx(0.7)

    # a queued suggestion keeps its task
    q = sig.experiments(eid).queued_suggestions().create(assignments=dict(x=0.2, k=1), task=dict(name="mid"))
    assert q.task.name == "mid"
    s = sig.experiments(eid).suggestions().create()
    assert s.assignments["x"] == 0.2 and s.task.name == "mid" and s.task.cost == 0.25


def test_ten_runs_of_cost_one_tenth_spend_a_budget_of_one(sig: SigOptConnection, tmp_path: Path) -> None:
    """Costs are summed exactly: a float sum of ten 0.1s is 0.9999999999999999, which would leave the budget open
    for an eleventh run (SigOpt's loop runs while consumed < budget)."""
    exp = sig.experiments().create(**body(observation_budget=1))
    for i in range(10):
        sig.experiments(exp.id).observations().create(assignments=dict(x=i / 10, k=1), task="cheap",
                                                      values=[dict(name="acc", value=i / 10)])
    assert sig.experiments(exp.id).fetch().progress.observation_budget_consumed == 1.0
    stop = sig.experiments(exp.id).stopping_criteria().fetch()
    assert stop.should_stop and "observation_budget_reached" in stop.reasons
    with assay.Connection(home=tmp_path) as conn:
        mine = conn.create_experiment(**body(observation_budget=1, tasks=TASKS[::2]))
        for i in range(10):
            mine.observe(assignments=dict(x=i / 10, k=1), task="cheap", value=i / 10)
        mine.fetch()
        assert mine.data.progress.observation_budget_consumed == 1.0 and mine.remaining() == 0
        assert list(mine.loop()) == []  # nothing left to suggest


def test_loop_spends_the_budget_in_task_costs(tmp_path: Path) -> None:
    with assay.Connection(home=tmp_path) as conn:
        exp = conn.create_experiment(**body(observation_budget=2))
        seen = []
        for trial in exp.loop():
            assert trial.task.cost in (0.1, 0.25, 1.0)
            seen.append(trial.task.cost)
            trial.report(trial.assignments["x"] * trial.task.cost)
        exp.fetch()
        consumed = exp.data.progress.observation_budget_consumed
        assert consumed == pytest.approx(sum(seen))
        assert consumed >= 2 and consumed - seen[-1] < 2  # stopped as soon as the budget was spent
        assert len(seen) > 2  # cheap tasks bought more than two evaluations
        assert exp.remaining() <= 0
