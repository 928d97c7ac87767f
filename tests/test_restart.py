"""Data survives a SIGKILL of the server; the experiment continues where it left off."""

from __future__ import annotations

from pathlib import Path

import pytest

import assay
from tests.conftest import ServerProcess, simple_experiment


def test_sigkill_restart_and_continue(home: Path) -> None:
    proc = ServerProcess(home).start()
    with assay.Connection(proc.url) as conn:
        exp = conn.experiments().create(**simple_experiment())
        suggestions = [conn.experiments(exp.id).suggestions().create() for _ in range(5)]
        acked = []
        for s in suggestions[:3]:
            acked.append(conn.experiments(exp.id).observations().create(suggestion=s.id, values=[{"value": 0.5}]))
    proc.kill()

    proc2 = ServerProcess(home).start()
    try:
        with assay.Connection(proc2.url) as conn:
            again = conn.experiments(exp.id).fetch()
            assert again.progress.observation_count == 3
            stored = {o.id: o for o in conn.experiments(exp.id).observations().fetch().data}
            for o in acked:
                assert stored[o.id].assignments == o.assignments and stored[o.id].value == 0.5
            open_ = conn.experiments(exp.id).suggestions().fetch(state="open").data
            assert sorted(s.id for s in open_) == sorted(s.id for s in suggestions[3:])

            # the crashed worker's open suggestions are cleared; the design continues without repeats
            conn.experiments(exp.id).suggestions().delete(state="open")
            new = conn.experiments(exp.id).suggestions().create()
            before = [s.assignments for s in suggestions]
            assert new.assignments not in before

            # a stale worker answering its deleted suggestion gets a clear error; nothing is written
            with pytest.raises(assay.Conflict, match="deleted"):
                conn.experiments(exp.id).observations().create(suggestion=suggestions[4].id, values=[{"value": 1}])
            assert conn.experiments(exp.id).fetch().progress.observation_count == 3
    finally:
        proc2.stop()


def test_graceful_stop_keeps_data(home: Path) -> None:
    proc = ServerProcess(home).start()
    with assay.Connection(proc.url) as conn:
        exp = conn.create_experiment(**simple_experiment(observation_budget=4))
        exp.optimize(lambda lr, layers, opt: layers * 0.1)
    proc.stop()
    with assay.Connection(home=home) as conn:  # the embedded API reads the same database
        again = conn.experiment(exp.id)
        assert again.data.progress.observation_count == 4
        assert again.best_assignments()[0].assignments["layers"] == max(
            o.assignments["layers"] for o in again.observations())
