"""The public ``sigopt`` client, unchanged, against a real assay server."""

from __future__ import annotations

import math

import pytest
from sigopt import Connection as SigOptConnection
from sigopt.exception import ApiException

from tests.conftest import ServerProcess


@pytest.fixture
def sig(server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> SigOptConnection:
    monkeypatch.setenv("SIGOPT_API_URL", server.url)
    return SigOptConnection(client_token="any-token")


def objective(a: dict) -> float:
    return -((a["x"] - 0.3) ** 2) - (a["n"] - 3) ** 2 / 10 + (0.1 if a["c"] == "b" else 0.0)


def test_full_loop(sig: SigOptConnection) -> None:
    exp = sig.experiments().create(
        name="sigopt loop",
        parameters=[
            dict(name="x", type="double", bounds=dict(min=0.0, max=1.0)),
            dict(name="n", type="int", bounds=dict(min=1, max=6)),
            dict(name="c", type="categorical", categorical_values=["a", "b"]),
            dict(name="lr", type="double", bounds=dict(min=1e-4, max=1.0), transformation="log"),
        ],
        metrics=[dict(name="score", objective="maximize")],
        observation_budget=20,
        parallel_bandwidth=2,
        metadata={"team": "vision"},
    )
    assert exp.id and exp.name == "sigopt loop"
    assert exp.parameters[3].transformation == "log"
    assert exp.metadata["team"] == "vision"
    assert exp.parallel_bandwidth == 2

    seen = set()
    for _ in range(12):
        s = sig.experiments(exp.id).suggestions().create()
        a = s.assignments
        assert 0 <= a["x"] <= 1 and a["n"] in range(1, 7) and a["c"] in ("a", "b") and 1e-4 <= a["lr"] <= 1
        assert isinstance(a["n"], int)
        seen.add(tuple(sorted(a.items())))
        sig.experiments(exp.id).observations().create(suggestion=s.id, values=[dict(name="score", value=objective(a))])
    assert len(seen) == 12  # the design never repeats a point

    # a failed observation
    s = sig.experiments(exp.id).suggestions().create()
    obs = sig.experiments(exp.id).observations().create(suggestion=s.id, failed=True)
    assert obs.failed is True and obs.value is None

    # a batch by assignments
    batch = sig.experiments(exp.id).observations().create_batch(observations=[
        dict(assignments=dict(x=0.3, n=3, c="b", lr=0.01), values=[dict(name="score", value=0.1, value_stddev=0.01)]),
        dict(assignments=dict(x=0.9, n=1, c="a", lr=0.5), values=[dict(name="score", value=-0.9)]),
    ])
    assert len(batch.data) == 2 and batch.data[0].values[0].value_stddev == 0.01

    fetched = sig.experiments(exp.id).fetch()
    assert fetched.progress.observation_count == 15
    assert fetched.progress.best_observation.value == pytest.approx(0.1)

    best = sig.experiments(exp.id).best_assignments().fetch()
    assert len(best.data) == 1
    assert best.data[0].assignments["x"] == 0.3 and best.data[0].value == pytest.approx(0.1)

    # list pages walk all observations
    obs_list = list(sig.experiments(exp.id).observations().fetch(limit=4).iterate_pages())
    assert len(obs_list) == 15 and len({o.id for o in obs_list}) == 15

    # open suggestions, delete them
    sig.experiments(exp.id).suggestions().create()
    sig.experiments(exp.id).suggestions().create()
    open_ = sig.experiments(exp.id).suggestions().fetch(state="open")
    assert len(open_.data) == 2
    sig.experiments(exp.id).suggestions().delete(state="open")
    assert sig.experiments(exp.id).suggestions().fetch(state="open").data == []

    # update and delete
    up = sig.experiments(exp.id).update(name="renamed", observation_budget=30)
    assert up.name == "renamed" and up.observation_budget == 30
    sig.experiments(exp.id).delete()
    assert sig.experiments(exp.id).fetch().state == "deleted"


def test_errors_are_api_exceptions(sig: SigOptConnection) -> None:
    with pytest.raises(ApiException) as err:
        sig.experiments().create(name="bad", parameters=[dict(name="x", type="double", bounds=dict(min=1, max=0))],
                                 metrics=[dict(name="y")])
    assert err.value.status_code == 400 and "bounds" in str(err.value)
    with pytest.raises(ApiException) as err:
        sig.experiments("999999").fetch()
    assert err.value.status_code == 404


def test_observation_update_and_fetch(sig: SigOptConnection) -> None:
    exp = sig.experiments().create(name="u", parameters=[dict(name="x", type="double", bounds=dict(min=0, max=1))],
                                   metrics=[dict(name="y", objective="minimize")])
    s = sig.experiments(exp.id).suggestions().create()
    o = sig.experiments(exp.id).observations().create(suggestion=s.id, value=3.0)
    assert sig.experiments(exp.id).suggestions(s.id).fetch().state == "closed"
    o2 = sig.experiments(exp.id).observations(o.id).update(values=[dict(name="y", value=2.0)])
    assert o2.value == 2.0 and math.isclose(sig.experiments(exp.id).observations(o.id).fetch().value, 2.0)
    sig.experiments(exp.id).observations(o.id).delete()
    assert sig.experiments(exp.id).fetch().progress.observation_count == 0
