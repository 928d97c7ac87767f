"""Early stopping through the public ``sigopt`` client: ``training_monitor`` and ``Checkpoint.should_stop``."""

from __future__ import annotations

import pytest
from sigopt import Connection as SigOptConnection
from sigopt.exception import ApiException

from tests.conftest import ServerProcess

PARAMS = [dict(name="lr", type="double", bounds=dict(min=1e-4, max=1.0), transformation="log")]


@pytest.fixture
def sig(server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> SigOptConnection:
    monkeypatch.setenv("SIGOPT_API_URL", server.url)
    return SigOptConnection(client_token="any-token")


def ai(sig: SigOptConnection, monitor: dict) -> str:  # type: ignore[type-arg]
    sig.clients("1").projects().create(id="es", name="es")
    exp = sig.clients("1").projects("es").aiexperiments().create(
        name="curves", parameters=PARAMS, metrics=[dict(name="loss", objective="minimize")], budget=10,
        training_monitor=monitor)
    return exp.id


def checkpoint(sig: SigOptConnection, run: str, loss: float):  # type: ignore[no-untyped-def]
    return sig.training_runs(run).checkpoints().create(values=[dict(name="loss", value=loss)])


def test_convergence_and_max_checkpoints(sig: SigOptConnection) -> None:
    eid = ai(sig, dict(max_checkpoints=6, early_stopping_criteria=[
        dict(type="convergence", name="plateau", metric="loss", lookback_checkpoints=2, min_checkpoints=3)]))
    tm = sig.experiments(eid).fetch().training_monitor
    assert tm.max_checkpoints == 6 and tm.early_stopping_criteria[0].lookback_checkpoints == 2
    run = sig.aiexperiments(eid).training_runs().create(name="r1").id
    decisions = [checkpoint(sig, run, v) for v in (1.0, 0.8, 0.6, 0.5)]
    assert [c.should_stop for c in decisions] == [False] * 4
    assert decisions[-1].stopping_reasons.to_json() == {"plateau": False, "max_checkpoints": False}
    c = checkpoint(sig, run, 0.55)
    assert c.should_stop is False  # 0.5 is within the last two
    c = checkpoint(sig, run, 0.52)
    assert c.should_stop is True and c.stopping_reasons["plateau"] is True and c.stopping_reasons["max_checkpoints"]
    stored = list(sig.training_runs(run).checkpoints().fetch().iterate_pages())
    assert sorted(x.should_stop for x in stored) == [False] * 5 + [True]  # the decision is kept


def test_asha_stops_the_worse_runs(sig: SigOptConnection) -> None:
    eid = ai(sig, dict(early_stopping_criteria=[dict(type="asha", metric="loss", reduction_factor=2)]))
    runs = [sig.aiexperiments(eid).training_runs().create(name=f"r{i}").id for i in range(3)]
    assert checkpoint(sig, runs[0], 0.4).should_stop is False  # alone at the rung: no judgement
    assert checkpoint(sig, runs[1], 0.3).should_stop is False  # best of two
    c = checkpoint(sig, runs[2], 0.9)
    assert c.should_stop is True and c.stopping_reasons.to_json() == {"asha-loss": True}


def test_training_monitor_errors(sig: SigOptConnection) -> None:
    sig.clients("1").projects().create(id="bad", name="bad")
    for monitor, field in (
        (dict(early_stopping_criteria=[dict(type="convergence", metric="nope")]),
         "training_monitor.early_stopping_criteria[0].metric"),
        (dict(early_stopping_criteria=[dict(type="asha", lookback_checkpoints=2)]),
         "training_monitor.early_stopping_criteria[0]"),
        (dict(early_stopping_criteria=[dict(type="asha", name="a"), dict(type="convergence", name="a")]),
         "training_monitor.early_stopping_criteria[1].name"),
    ):
        with pytest.raises(ApiException) as err:
            sig.clients("1").projects("bad").aiexperiments().create(
                name="x", parameters=PARAMS, metrics=[dict(name="loss")], budget=3, training_monitor=monitor)
        assert err.value.status_code == 400 and err.value.to_json()["field"] == field, err.value.to_json()
    with pytest.raises(ApiException) as err:
        sig.experiments().create(name="x", parameters=PARAMS, metrics=[dict(name="loss")],
                                 training_monitor=dict(early_stopping_criteria=[dict(type="magic")]))
    assert err.value.status_code in (400, 422) and "training_monitor" in str(err.value)
