"""The Python API: embedded and remote give the same results for the same calls."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import assay
from tests.conftest import ServerProcess, simple_experiment

VOLATILE = {"id", "created", "updated", "experiment", "suggestion"}


def scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


def script(conn: assay.Connection) -> list[Any]:
    """A fixed sequence of calls; returns every answer (and every error) in order."""
    out: list[Any] = []
    exp = conn.experiments().create(**simple_experiment(observation_budget=6))
    out.append(exp)
    for i in range(4):
        s = conn.experiments(exp.id).suggestions().create()
        out.append(s)
        value = s.assignments["layers"] * (2 if s.assignments["opt"] == "adam" else 1)
        out.append(conn.experiments(exp.id).observations().create(suggestion=s.id, values=[{"value": value}],
                                                                  metadata={"i": i}))
    out.append(conn.experiments(exp.id).observations().create(
        assignments={"lr": 0.01, "layers": 8, "opt": "adam"}, values=[{"name": "acc", "value": 99.0}]))
    for bad in ({"assignments": {"lr": 0.01, "layers": 8, "opt": "nope"}, "values": [{"value": 1}]},
                {"suggestion": "424242", "values": [{"value": 1}]},
                {"assignments": {"lr": 0.01, "layers": 8, "opt": "adam"}, "failed": True, "values": [{"value": 1}]}):
        try:
            conn.experiments(exp.id).observations().create(**bad)
        except assay.AssayError as err:
            out.append((type(err).__name__, err.status, err.message, err.field))
    out.append(conn.experiments(exp.id).fetch())
    out.append(conn.experiments(exp.id).best_assignments().fetch())
    out.append(conn.experiments(exp.id).observations().fetch())
    out.append(conn.experiments(exp.id).update(name="renamed", parallel_bandwidth=3))
    return [scrub(o) for o in out]


@pytest.fixture
def fixed_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSAY_SEED", "1234")


def test_embedded_and_remote_agree(tmp_path: Path, fixed_seed: None) -> None:
    with assay.Connection(home=tmp_path / "embedded") as emb:
        assert emb.embedded
        a = script(emb)
    proc = ServerProcess(tmp_path / "remote").start()
    try:
        with assay.Connection(proc.url) as rem:
            assert not rem.embedded
            b = script(rem)
    finally:
        proc.stop()
    assert os.environ["ASSAY_SEED"] == "1234"
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x == y
    errors = [o for o in a if isinstance(o, tuple)]
    assert [e[1] for e in errors] == [400, 404, 400]


def test_loop_reports_and_stops_at_budget(conn: assay.Connection) -> None:
    exp = conn.create_experiment(**simple_experiment(observation_budget=5))
    seen = 0
    for trial in exp.loop():
        seen += 1
        if seen == 2:
            continue  # left unreported: becomes a failed observation
        trial.report({"acc": trial.assignments["layers"] / 8})
    assert seen == 5
    data = exp.fetch()
    assert data.progress.observation_count == 5 and data.progress.failed_observation_count == 1
    best = exp.best_assignments()[0]
    assert best.value == max(o.value for o in exp.observations() if not o.failed)


def test_optimize_records_exceptions_as_failures(conn: assay.Connection) -> None:
    exp = conn.create_experiment(**simple_experiment(observation_budget=4))

    def objective(lr: float, layers: int, opt: str) -> float:
        if layers > 4:
            raise ValueError("diverged")
        return lr

    exp.optimize(objective)
    obs = exp.observations()
    assert len(obs) == 4
    for o in obs:
        assert o.failed == (o.assignments["layers"] > 4)
        if o.failed:
            assert "diverged" in o.metadata["error"]


def test_pagination_iterates_all(conn: assay.Connection) -> None:
    exp = conn.create_experiment(**simple_experiment())
    for i in range(7):
        exp.observe(assignments={"lr": 0.001, "layers": 1 + i % 8, "opt": "sgd"}, value=float(i))
    page = conn.experiments(exp.id).observations().fetch(limit=3)
    assert len(page.data) == 3 and page.count == 7
    values = [o.value for o in page.iterate_pages()]
    assert sorted(values) == [float(i) for i in range(7)] and values[0] == 6.0  # newest first
