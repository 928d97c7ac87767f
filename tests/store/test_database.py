"""The store on every backend (SQLite file and PostgreSQL): schema, types, locks, transactions."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from assay.domain import Experiment, Metric, MetricValue, Parameter
from assay.store import Store
from assay.store import repository as repo
from assay.store.models import ClientRow


@pytest.fixture
def store(database_url: str):  # type: ignore[no-untyped-def]
    s = Store(database_url)
    s.ensure_schema()
    yield s
    s.dispose()


def _experiment(store: Store, **kw) -> Experiment:  # type: ignore[no-untyped-def]
    exp = Experiment(id=0, name=kw.pop("name", "e"), parameters=(Parameter.from_json(
        {"name": "x", "type": "double", "bounds": {"min": 0, "max": 1}}),),
        metrics=(Metric("y"),), metadata=kw.pop("metadata", None), client_id=1)
    with store.write() as s:
        repo.ensure_client(s)
        return repo.insert_experiment(s, exp, seed=7)


def test_schema_is_created_once_by_concurrent_starts(database_url: str) -> None:
    """Several server processes starting on one empty database: one creates the schema, none fails."""
    stores = [Store(database_url) for _ in range(4)]
    errors: list[BaseException] = []

    def start(st: Store) -> None:
        try:
            st.ensure_schema()
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(st,)) for st in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert {st.current_revision() for st in stores} == {stores[0].head_revision()}
    for st in stores:
        st.dispose()


def test_json_and_booleans_round_trip(store: Store) -> None:
    meta = {"team": "vision", "nested": {"ok": True, "n": [1, 2.5, None]}, "unicode": "naïve ✓"}
    exp = _experiment(store, metadata=meta)
    with store.read() as s:
        got, seed, n = repo.get_experiment(s, exp.id)
    assert got.metadata == meta and seed == 7 and n == 0
    assert got.development is False and got.parameters[0].name == "x"
    with store.write() as s:
        sug = repo.insert_suggestion(s, exp.id, {"x": 0.25}, metadata={"k": "v"})
        repo.insert_observation(s, exp.id, assignments={"x": 0.25}, values=[MetricValue("y", 1.5, 0.1)],
                                failed=False, suggestion_id=sug.id, task=None, metadata=None)
        repo.insert_observation(s, exp.id, assignments={"x": 0.5}, values=[], failed=True, suggestion_id=None,
                                task=None, metadata=None)
    with store.read() as s:
        obs = repo.all_observations(s, exp.id)
        assert repo.observation_stats(s, exp.id) == (2, 1, 2.0)
        assert repo.get_suggestion(s, exp.id, sug.id).metadata == {"k": "v"}
    assert obs[0].values[0] == MetricValue("y", 1.5, 0.1) and obs[0].failed is False and obs[1].failed is True


def test_ensure_client_is_idempotent_and_keeps_ids_unique(store: Store) -> None:
    for _ in range(2):
        with store.write() as s:
            assert repo.ensure_client(s) == 1
    with store.write() as s:  # a client created without an explicit id gets a fresh one (sequence moved on)
        row = ClientRow(name="second", created=0)
        s.add(row)
        s.flush()
        assert row.id == 2
    with store.read() as s:
        assert [r.id for r in s.execute(select(ClientRow).order_by(ClientRow.id)).scalars()] == [1, 2]


def test_a_failed_write_rolls_back(store: Store) -> None:
    exp = _experiment(store)
    with pytest.raises(RuntimeError), store.write() as s:
        repo.insert_suggestion(s, exp.id, {"x": 0.1})
        raise RuntimeError("boom")
    with store.read() as s:
        assert repo.list_suggestions(s, exp.id)[1] == 0


def test_idempotency_keys_are_unique_per_experiment(store: Store) -> None:
    a, b = _experiment(store), _experiment(store)
    with store.write() as s:
        first = repo.insert_suggestion(s, a.id, {"x": 0.1}, idempotency_key="k1")
        repo.insert_suggestion(s, b.id, {"x": 0.1}, idempotency_key="k1")  # another experiment: fine
        repo.insert_suggestion(s, a.id, {"x": 0.2})  # no key: never unique-checked
        repo.insert_suggestion(s, a.id, {"x": 0.3})
    with pytest.raises(IntegrityError), store.write() as s:
        repo.insert_suggestion(s, a.id, {"x": 0.4}, idempotency_key="k1")
    with store.read() as s:
        assert repo.find_suggestion_by_key(s, a.id, "k1") == first
        assert repo.find_suggestion_by_key(s, a.id, "nope") is None
        assert repo.list_suggestions(s, a.id)[1] == 3


def test_experiment_lock_serializes_read_modify_write(store: Store) -> None:
    """12 threads each read n_suggested under the experiment lock and write n+1: no update is lost."""
    exp = _experiment(store)

    def bump() -> None:
        for _ in range(5):
            with store.write() as s:
                _, _, n = repo.get_experiment(s, exp.id, lock=True)
                repo.update_experiment(s, exp.id, n_suggested=n + 1)

    threads = [threading.Thread(target=bump) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with store.read() as s:
        assert repo.get_experiment(s, exp.id)[2] == 60


def test_observation_columns_read_back_what_was_stored(store: Store) -> None:
    """The dashboard's bulk read (JSON columns as text, decoded in one pass) on every backend."""
    from assay.domain import Task

    exp = _experiment(store, name="cols")
    with store.write() as s:
        repo.insert_observation(s, exp.id, assignments={"x": 0.25, "c": "a é"}, values=[MetricValue("y", 1.5)],
                                failed=False, suggestion_id=None, task=Task("cheap", 0.1), metadata={"k": 1})
        repo.insert_observation(s, exp.id, assignments={"x": 0.75}, values=[], failed=True, suggestion_id=None,
                                task=None, metadata=None)
    with store.read() as s:
        cols = repo.observation_columns(s, exp.id)
        empty = repo.observation_columns(s, exp.id + 1000)
    assert len(cols) == 2 and len(empty) == 0
    assert cols.assignments == [{"x": 0.25, "c": "a é"}, {"x": 0.75}]
    assert cols.values == [{"y": 1.5}, {}] and cols.failed == [False, True]
    assert cols.task == ["cheap", None] and cols.cost == [0.1, 1.0]
    o = cols.observation(0, exp.id)
    assert o.value_of("y") == 1.5 and o.task == Task("cheap", 0.1) and o.id == cols.id[0]


_TRY_LOCK = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
except BlockingIOError:
    print("held")
else:
    print("free")
"""


def test_sqlite_writers_of_other_processes_queue_on_a_lock_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A SQLite write transaction holds ``<db>-writers.lock``, so a writer in another process waits on
    the kernel (woken at once) rather than in SQLite's sleeping busy handler; it is let go after."""
    import subprocess
    import sys

    db = tmp_path / "a.db"
    st = Store(f"sqlite:///{db}")
    st.ensure_schema()
    lock = f"{db}-writers.lock"

    def probe() -> str:
        return subprocess.run([sys.executable, "-c", _TRY_LOCK, lock], capture_output=True, text=True,
                              check=True).stdout.strip()

    try:
        with st.write() as s:
            repo.ensure_client(s)
            assert probe() == "held"
        assert probe() == "free"
        with st.read():
            assert probe() == "free"  # readers never queue
    finally:
        st.dispose()
