"""The core use cases on every backend (SQLite file and PostgreSQL): the storage suite.

Each test runs twice through the ``database_url`` fixture, like Optuna's storage tests.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from assay.errors import Conflict, InvalidRequest, NotFound
from assay.service import Service
from assay.store import Store
from tests.conftest import simple_experiment


@pytest.fixture
def svc(database_url: str):  # type: ignore[no-untyped-def]
    store = Store(database_url)
    store.ensure_schema()
    yield Service(store)
    store.dispose()


def score(a: dict) -> float:
    return -abs(a["layers"] - 4) + (0.5 if a["opt"] == "adam" else 0.0)


def test_core_loop_counts_and_best(svc: Service) -> None:
    exp = svc.create_experiment(simple_experiment(type="random", parallel_bandwidth=2,
                                                  metadata={"k": "naïve ✓", "n": 2}))
    assert exp.metadata == {"k": "naïve ✓", "n": 2} and exp.progress.observation_count == 0
    seen = set()
    for i in range(8):
        s = svc.create_suggestion(exp.id)
        assert s.state == "open" and s.id not in seen
        seen.add(s.id)
        if i == 3:
            svc.create_observation(exp.id, {"suggestion": s.id, "failed": True})
        else:
            svc.create_observation(exp.id, {"suggestion": s.id, "values": [{"value": score(s.assignments)}]})
        assert svc.get_suggestion(exp.id, s.id).state == "closed"
    got = svc.get_experiment(exp.id)
    p = got.progress
    assert (p.observation_count, p.failed_observation_count, p.open_suggestion_count) == (8, 1, 0)
    assert p.observation_budget_consumed == 8.0
    values = [o.values[0].value for o in svc.list_observations(exp.id, limit=100).data if not o.failed]
    best = svc.best_assignments(exp.id).data
    assert len(best) == 1 and best[0]["value"] == max(values) == p.best_observation.values[0].value


def test_batch_is_all_or_nothing(svc: Service) -> None:
    exp = svc.create_experiment(simple_experiment())
    good = {"assignments": {"lr": 0.01, "layers": 3, "opt": "sgd"}, "values": [{"value": 0.5}]}
    bad = {"assignments": {"lr": 0.01, "layers": 99, "opt": "sgd"}, "values": [{"value": 0.5}]}
    with pytest.raises(InvalidRequest) as err:
        svc.create_observations_batch(exp.id, {"observations": [good, bad]})
    assert "observations[1]" in str(err.value.field)
    assert svc.get_experiment(exp.id).progress.observation_count == 0
    page = svc.create_observations_batch(exp.id, {"observations": [good, good]})
    assert len(page.data) == 2 and svc.get_experiment(exp.id).progress.observation_count == 2


def test_updates_and_deletes(svc: Service) -> None:
    exp = svc.create_experiment(simple_experiment())
    s = svc.create_suggestion(exp.id)
    obs = svc.create_observation(exp.id, {"suggestion": s.id, "value": 1.0})
    with pytest.raises(Conflict):
        svc.create_observation(exp.id, {"suggestion": s.id, "value": 2.0})
    up = svc.update_observation(exp.id, obs.id, {"value": 3.0, "metadata": {"note": "fixed"}})
    assert up.values[0].value == 3.0 and up.metadata == {"note": "fixed"}
    assert svc.best_assignments(exp.id).data[0]["value"] == 3.0
    svc.update_suggestion(exp.id, s.id, {"metadata": {"gpu": 1}})
    assert svc.get_suggestion(exp.id, s.id).metadata == {"gpu": 1}
    renamed = svc.update_experiment(exp.id, {"name": "renamed", "parallel_bandwidth": 4})
    assert renamed.name == "renamed" and renamed.parallel_bandwidth == 4
    opened = [svc.create_suggestion(exp.id) for _ in range(3)]
    assert svc.get_experiment(exp.id).progress.open_suggestion_count == 3
    svc.delete_suggestions(exp.id, opened[0].id)
    with pytest.raises(NotFound):
        svc.get_suggestion(exp.id, opened[0].id)
    assert svc.delete_suggestions(exp.id, state="open") == 2
    assert svc.get_experiment(exp.id).progress.open_suggestion_count == 0
    svc.delete_observations(exp.id, obs.id)
    assert svc.get_experiment(exp.id).progress.observation_count == 0
    assert svc.best_assignments(exp.id).data == []
    svc.delete_experiment(exp.id)
    assert svc.get_experiment(exp.id).state == "deleted"
    with pytest.raises(Conflict):
        svc.create_suggestion(exp.id)


def test_paging_walks_every_item_once(svc: Service) -> None:
    exp = svc.create_experiment(simple_experiment())
    svc.create_observations_batch(exp.id, {"observations": [
        {"assignments": {"lr": 0.001, "layers": 1 + i % 8, "opt": "adam"}, "values": [{"value": float(i)}]}
        for i in range(23)]})
    ids, before = [], None
    while True:
        page = svc.list_observations(exp.id, limit=5, before=before)
        assert page.count == 23
        ids += [o.id for o in page.data]
        if page.before is None:
            break
        before = page.before
    assert len(ids) == 23 == len(set(ids)) and ids == sorted(ids, reverse=True)
    for _ in range(3):
        svc.create_experiment(simple_experiment())
    exps = svc.list_experiments(limit=2)
    assert exps.count == 4 and len(exps.data) == 2 and exps.before is not None
    rest = svc.list_experiments(limit=10, before=exps.before)
    assert {e.id for e in exps.data} | {e.id for e in rest.data} == {e.id for e in svc.list_experiments().data}


def test_idempotent_retries_store_once(svc: Service) -> None:
    exp = svc.create_experiment(simple_experiment())
    s1 = svc.create_suggestion(exp.id, idempotency_key="sug-1")
    assert svc.create_suggestion(exp.id, idempotency_key="sug-1") == s1
    s2 = svc.create_suggestion(exp.id, idempotency_key="sug-2")
    assert s2.id != s1.id
    body = {"suggestion": s1.id, "value": 0.7}
    o1 = svc.create_observation(exp.id, body, idempotency_key="obs-1")
    assert svc.create_observation(exp.id, body, idempotency_key="obs-1") == o1  # not a Conflict: same key
    o2 = svc.create_observation(exp.id, {"suggestion": s2.id, "value": 0.1, "idempotency_key": "obs-2"})
    assert svc.create_observation(exp.id, {"suggestion": s2.id, "value": 0.1, "idempotency_key": "obs-2"}) == o2
    with pytest.raises(InvalidRequest):
        svc.create_observation(exp.id, {"suggestion": s2.id, "value": 0.1, "idempotency_key": "x"},
                               idempotency_key="y")
    p = svc.get_experiment(exp.id).progress
    assert p.observation_count == 2 and p.open_suggestion_count == 0


def test_threads_never_share_a_suggestion(svc: Service) -> None:
    """16 threads suggest and observe on one experiment through the service (one Store, one pool)."""
    # type random: the storage guarantees under test, without the optimizer's cost per suggestion
    exp = svc.create_experiment(simple_experiment(observation_budget=100, type="random"))
    got: list[int] = []
    errors: list[BaseException] = []

    def worker(w: int) -> None:
        try:
            for i in range(4):
                s = svc.create_suggestion(exp.id, idempotency_key=f"s-{w}-{i}")
                got.append(s.id)
                svc.create_observation(exp.id, {"suggestion": s.id, "value": score(s.assignments)},
                                       idempotency_key=f"o-{w}-{i}")
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(got) == 64 == len(set(got))
    p = svc.get_experiment(exp.id).progress
    assert (p.observation_count, p.open_suggestion_count) == (64, 0)
    assert {o.suggestion_id for o in svc.list_observations(exp.id, limit=100).data} == set(got)


def test_a_read_on_an_older_snapshot_keeps_the_newer_summary(svc: Service) -> None:
    """Concurrent reads see snapshots a few commits apart: one that started before the newest
    cached summary extends an older kept one (no reread of every observation) and leaves the newer in place."""
    exp = svc.create_experiment(simple_experiment(metrics=[{"name": "acc", "objective": "maximize"}]))

    def add(v: float) -> None:
        svc.create_observation(exp.id, {"assignments": {"lr": 0.01, "layers": 2, "opt": "adam"}, "value": v})

    for v in (0.1, 0.5, 0.3):
        add(v)
    e = svc.get_experiment(exp.id)
    with svc.store.read() as old:  # a snapshot of three observations
        before = svc._summary(old, e)
        add(0.9)
        add(0.2)
        newer = svc.get_experiment(exp.id).progress  # another request, a later snapshot, finishes first
        assert newer is not None and newer.observation_count == 5 and newer.best_observation.values[0].value == 0.9
        again = svc._summary(old, e)
        assert again is before and (again.count, again.best[0].values[0].value) == (3, 0.5)
    p = svc.get_experiment(exp.id).progress
    assert p is not None and (p.observation_count, p.best_observation.values[0].value) == (5, 0.9)


def test_progress_and_best_follow_every_kind_of_change(svc: Service, database_url: str) -> None:
    """Progress and best assignments come from a cached summary validated by SQL aggregates: they
    must equal a from-scratch computation after inserts, updates, deletes and
    writes by another process (a second Service on the same database)."""
    from assay.engine.analysis import best_observations

    exp = svc.create_experiment(simple_experiment(metrics=[{"name": "acc", "objective": "maximize"}]))
    other = Service(Store(database_url))

    def check() -> None:
        obs = list(reversed(svc.list_observations(exp.id, limit=1000).data))
        e = svc.get_experiment(exp.id)
        p = e.progress
        assert p.observation_count == len(obs) == other.get_experiment(exp.id).progress.observation_count
        assert p.failed_observation_count == sum(o.failed for o in obs)
        assert p.observation_budget_consumed == pytest.approx(len(obs))
        assert (p.first_observation and p.first_observation.id) == (obs[0].id if obs else None)
        assert (p.last_observation and p.last_observation.id) == (obs[-1].id if obs else None)
        best = best_observations(obs, e.metrics)
        assert [int(d["id"]) for d in svc.best_assignments(exp.id).data] == [o.id for o in best]
        assert (p.best_observation and p.best_observation.id) == (best[0].id if len(best) == 1 else None)

    def add(v: float | None, who: Service = svc) -> int:
        body: dict[str, Any] = {"assignments": {"lr": 0.01, "layers": 2, "opt": "adam"}}
        body.update({"failed": True} if v is None else {"value": v})
        return who.create_observation(exp.id, body).id

    check()
    first = add(0.5)
    check()
    add(0.2)
    add(None)
    check()
    add(0.9, who=other)  # another process: this one's cache must notice
    check()
    # A row committed late, below the newest id (its transaction took the id earlier): the id of
    # another experiment's observation is freed and reused, as a concurrent writer's would be.
    from assay.domain import MetricValue
    from assay.store.models import ObservationRow

    b = svc.create_experiment(simple_experiment())
    gap = svc.create_observation(b.id, {"assignments": {"lr": 0.01, "layers": 2, "opt": "adam"}, "value": 0}).id
    add(0.3)
    check()
    svc.delete_observations(b.id, gap)
    with svc.store.write() as s:
        s.add(ObservationRow(id=gap, experiment_id=exp.id, assignments={"lr": 0.01, "layers": 3, "opt": "sgd"},
                             values=[MetricValue("acc", 7.0).to_json()], failed=False, created=1, cost=1.0))
    check()
    assert svc.get_experiment(exp.id).progress.best_observation.id == gap
    svc.update_observation(exp.id, first, {"value": 2.0})  # changes the best without a new row
    check()
    svc.delete_observations(exp.id, first)
    check()
    svc.delete_observations(exp.id)
    check()
    other.store.dispose()
