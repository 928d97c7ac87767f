"""The background supplier: precomputed suggestions, time-outs, and the served wiring."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from assay.engine.problem import Candidate, Problem
from assay.engine.strategy import suggest
from assay.service import Service, space_of
from assay.store import Store
from assay.supply import Supplier

from .conftest import BRANIN_PARAMS, ServerProcess


def _branin(a: dict) -> float:
    x1, x2 = a["x1"], a["x2"]
    return (x2 - 5.1 / (4 * math.pi**2) * x1**2 + 5 / math.pi * x1 - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(
        x1) + 10


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    store = Store(f"sqlite:///{tmp_path / 'assay.db'}")
    store.ensure_schema()
    yield Service(store, seed=5)
    store.dispose()


def _attach(svc: Service, timeout: float, start: bool = True) -> Supplier:
    sup = Supplier(svc, suggest=suggest, timeout=timeout)
    svc.supplier = sup
    svc.on_change.append(sup.notify)
    return sup.start() if start else sup


def _experiment(svc: Service, n_obs: int) -> str:
    exp = svc.create_experiment({"name": "b", "parameters": BRANIN_PARAMS,
                                 "metrics": [{"name": "f", "objective": "minimize"}]})
    for i in range(n_obs):
        a = {"x1": -5 + 15 * ((i * 0.37) % 1), "x2": 15 * ((i * 0.61 + 0.2) % 1)}
        svc.create_observation(exp.id, {"assignments": a, "value": _branin(a)})
    return str(exp.id)


def test_requests_get_model_suggestions_from_the_supplier(service: Service) -> None:
    sup = _attach(service, timeout=60)
    try:
        eid = _experiment(service, 8)
        service.update_experiment(eid, {"parallel_bandwidth": 2})
        with service.store.write() as s:  # past the initial design
            from assay.store import repository as repo

            for _ in range(10):
                repo.bump_suggested(s, int(eid))
        a = service.create_suggestion(eid)
        b = service.create_suggestion(eid)
        assert {a.source, b.source} <= {"gp:logei", "gp:lognei"}  # logei: nothing pending
        assert a.assignments != b.assignments
        exp = service.get_experiment(eid)
        space_of(exp).validate_assignments(a.assignments)
        space_of(exp).validate_assignments(b.assignments)
    finally:
        sup.stop()


def test_time_out_gives_a_random_point_with_the_reason(service: Service) -> None:
    sup = _attach(service, timeout=0.2, start=False)  # nobody computes: every request times out
    eid = _experiment(service, 8)
    with service.store.write() as s:
        from assay.store import repository as repo

        for _ in range(10):
            repo.bump_suggested(s, int(eid))
    out = service.create_suggestion(eid)
    assert out.source == "fallback-random: no model suggestion within 0.2s"
    space_of(service.get_experiment(eid)).validate_assignments(out.assignments)
    sup.timeout = 60
    sup.start()
    try:
        service.create_observation(eid, {"suggestion": out.id, "value": _branin(out.assignments)})
        assert service.create_suggestion(eid).source in ("gp:logei", "gp:lognei")
    finally:
        sup.stop()


def test_served_suggestions_say_how_they_were_made(tmp_path: Path) -> None:
    # a generous wait: the first model suggestion of a fresh process imports torch and fits a GP, which can
    # take over the default 20 s on a saturated machine (the fallback would then be served, rightly)
    proc = ServerProcess(tmp_path / "home", extra_env={"ASSAY_SEED": "3", "ASSAY_SUGGESTION_TIMEOUT": "180"}).start()
    try:
        with httpx.Client(base_url=proc.url, timeout=60) as c:
            exp = c.post("/v1/experiments", json={"name": "b", "parameters": BRANIN_PARAMS}).json()
            base = f"/v1/experiments/{exp['id']}/suggestions"
            sources = []
            for _ in range(6):  # Branin: 5 initial design points, then the model
                s = c.post(base).json()
                sources.append(s["source"])
                c.post(f"/v1/experiments/{exp['id']}/observations",
                       json={"suggestion": s["id"], "value": -_branin(s["assignments"])}).raise_for_status()
            assert sources[0] == "sobol"
            assert sources[-1] in ("gp:logei", "gp:lognei")
    finally:
        proc.stop()


def test_candidates_are_claimed_once_by_concurrent_requests(database_url: str) -> None:
    """Candidates stored in the database: 16 threads claim them at once, each gets a different one."""
    import threading

    from assay.store import repository as repo

    store = Store(database_url)
    store.ensure_schema()
    svc = Service(store, seed=1)
    sup = Supplier(svc, suggest=suggest, timeout=30)  # never started: only the stored candidates serve
    svc.supplier = sup
    try:
        eid = _experiment(svc, 8)
        marks = [{"x1": -5 + i * 0.5, "x2": i * 0.5} for i in range(16)]
        with store.write() as s:
            repo.insert_candidates(s, int(eid), [(a, None, "test") for a in marks], basis=8)
        got: list[dict] = []
        lock = threading.Lock()

        def take() -> None:
            out = svc.create_suggestion(eid)
            with lock:
                got.append(out.assignments)

        threads = [threading.Thread(target=take) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sorted(map(repr, got)) == sorted(map(repr, marks))  # every candidate once, none twice
        with store.read() as s:
            assert repo.count_candidates(s, int(eid), None) == 0
    finally:
        store.dispose()


def test_processes_share_one_supply(tmp_path: Path, database_url: str) -> None:
    """Two server processes on one database: the initial design's points are handed out once each
    (per-process suppliers would both serve the same quasi-random positions)."""
    import threading

    proc = ServerProcess(tmp_path / "home", database_url, extra_env={"ASSAY_SEED": "4"},
                         args=["--workers", "2"]).start(timeout=240)
    try:
        with httpx.Client(base_url=proc.url, timeout=120) as c:
            exp = c.post("/v1/experiments", json={"name": "b", "parameters": BRANIN_PARAMS,
                                                  "parallel_bandwidth": 24, "observation_budget": 300}).json()
        got: list[dict] = []
        lock = threading.Lock()

        def worker() -> None:
            with httpx.Client(base_url=proc.url, timeout=120) as c:  # own connection: either process
                for _ in range(3):
                    s = c.post(f"/v1/experiments/{exp['id']}/suggestions")
                    assert s.status_code == 200, s.text
                    with lock:
                        got.append(s.json()["assignments"])

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(240)
        assert len(got) == 24
        assert len({repr(sorted(a.items())) for a in got}) == 24  # no point handed out twice
    finally:
        proc.stop()


def _stock(svc: Service, eid: str, points: list[dict]) -> None:
    """Store model candidates for ``eid`` the way the supplier does (plan under the lease, then stock)."""
    from assay.engine.problem import Candidate

    plan = svc.supply_plan(int(eid), "test", 60.0, True)
    assert plan is not None
    problem, _, basis = plan
    svc.supply_stock(int(eid), "test", problem, [Candidate(dict(p), source="gp:logei") for p in points], basis)


def _stocked(svc: Service, eid: str) -> int:
    from assay.store import repository as repo

    with svc.store.read() as s:
        return repo.count_candidates(s, int(eid), None)


def test_a_changed_set_of_open_suggestions_makes_stored_candidates_stale(service: Service) -> None:
    _attach(service, timeout=0.2, start=False)  # nobody computes: the test stocks candidates itself
    eid = _experiment(service, 8)
    _stock(service, eid, [{"x1": 1.0, "x2": 2.0}, {"x1": 3.0, "x2": 4.0}])
    assert _stocked(service, eid) == 2
    claimed = service.create_suggestion(eid)  # claiming a candidate keeps the others (computed as a batch)
    assert claimed.assignments == {"x1": 1.0, "x2": 2.0} and _stocked(service, eid) == 1
    user = service.create_suggestion(eid, {"assignments": {"x1": 0.5, "x2": 0.5}})  # unknown to the candidates
    assert user.source == "user" and _stocked(service, eid) == 0
    _stock(service, eid, [{"x1": 5.0, "x2": 6.0}])
    service.delete_suggestions(eid, user.id)  # the candidates assumed it pending
    assert _stocked(service, eid) == 0


def test_stored_candidates_never_repeat_an_open_suggestion(service: Service) -> None:
    _attach(service, timeout=0.2, start=False)
    eid = _experiment(service, 8)
    user = service.create_suggestion(eid, {"assignments": {"x1": 0.5, "x2": 0.5}})
    _stock(service, eid, [{"x1": 0.5, "x2": 0.5}, {"x1": 3.0, "x2": 4.0}])  # computed before it opened
    assert _stocked(service, eid) == 1
    assert service.create_suggestion(eid).assignments == {"x1": 3.0, "x2": 4.0} != user.assignments


def test_new_candidates_keep_away_from_those_in_stock(service: Service) -> None:
    """With bandwidth 2 a candidate can wait in stock while the next batch is planned: the plan takes it
    as a pending point, and a repeat of it is never stored (a sequential client once got a point twice)."""
    _attach(service, timeout=0.2, start=False)
    eid = _experiment(service, 8)
    service.update_experiment(eid, {"parallel_bandwidth": 2})
    _stock(service, eid, [{"x1": 1.0, "x2": 2.0}])
    plan = service.supply_plan(int(eid), "test", 60.0, True)
    assert plan is not None
    problem, n, basis = plan
    assert problem.pending == [{"x1": 1.0, "x2": 2.0}] and n == 1
    service.supply_stock(int(eid), "test", problem, [Candidate({"x1": 1.0, "x2": 2.0}, source="gp:logei"),
                                                    Candidate({"x1": 3.0, "x2": 4.0}, source="gp:logei"),
                                                    Candidate({"x1": 3.0, "x2": 4.0}, source="gp:logei")], basis)
    assert _stocked(service, eid) == 2
    served = [service.create_suggestion(eid).assignments for _ in range(2)]
    assert sorted(p["x1"] for p in served) == [1.0, 3.0]


def test_server_process_freezes_its_startup_heap(tmp_path: Path) -> None:
    """`assay server` processes exempt their startup heap from garbage collection (full collections
    over the model stack stall every request); an app embedded in another process never does."""
    import gc

    from fastapi.testclient import TestClient

    from assay.config import Settings
    from assay.server.app import create_app

    url = f"sqlite:///{tmp_path / 'a.db'}"
    gc.unfreeze()
    try:
        with TestClient(create_app(Settings(database_url=url, home=tmp_path, precompute=False))):
            assert gc.get_freeze_count() == 0
        with TestClient(create_app(Settings(database_url=url, home=tmp_path, precompute=False, freeze_heap=True))):
            assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()



def _sequential_client(svc: Service, eid: int | str, evaluate: float = 0.0) -> list[tuple[dict, str | None]]:
    """One sequential client (bandwidth 1): suggest -> observe, once with an extra observation by assignments
    shortly after (while the supplier computes for the previous state), each point evaluated for ``evaluate``
    seconds; returns what it was served."""
    import time

    served = []
    for i in range(4):
        s = svc.create_suggestion(eid)
        served.append((s.assignments, s.source))
        time.sleep(evaluate)
        # failed observations keep every point in the (fast) quasi-random design, whose position is n_suggested
        svc.create_observation(eid, {"suggestion": s.id, "failed": True})
        if i == 2:
            time.sleep(evaluate / 6)
            svc.create_observation(eid, {"assignments": {"lr": 0.01, "layers": 8, "opt": "adam"}, "failed": True})
    return served


def test_sequential_clients_are_served_what_inline_computation_gives(tmp_path: Path) -> None:
    """Regression: with one supplier thread busy for another experiment, a candidate was computed for a
    request already served (its wait seen late), or stored for a state that changed while it was computed;
    either took a position in the sequence, so the client's next points differed from inline computation."""
    import threading
    import time

    from .conftest import simple_experiment

    stores = [Store(f"sqlite:///{tmp_path / f'{name}.db'}") for name in ("inline", "served")]
    for store in stores:
        store.ensure_schema()
    calls: list[tuple[int, int, int]] = []

    def slow(problem: Problem, n: int) -> list[Candidate]:  # a slow model: requests wait for it
        calls.append((problem.n_suggested, len(problem.observations), len(problem.pending)))
        time.sleep(0.1)
        return suggest(problem, n)

    try:
        ref = Service(stores[0], seed=1234)
        inline = [_sequential_client(ref, ref.create_experiment(simple_experiment(observation_budget=6)).id)
                  for _ in range(2)]
        svc = Service(stores[1], seed=1234)
        sup = Supplier(svc, suggest=slow, timeout=30)
        svc.supplier = sup
        svc.on_change.append(sup.notify)
        sup.start()
        try:
            eids = [svc.create_experiment(simple_experiment(observation_budget=6)).id for _ in range(2)]
            served: dict[int, list] = {}
            clients = [threading.Thread(target=lambda k=k: served.__setitem__(k, _sequential_client(svc, eids[k], 0.3)))
                       for k in range(2)]
            for c in clients:
                c.start()
            for c in clients:
                c.join(60)
        finally:
            sup.stop()
    finally:
        for store in stores:
            store.dispose()
    assert [served.get(0), served.get(1)] == inline
    assert all(pending == 0 for _, _, pending in calls), calls  # never computed for a request already served
    assert len({src for _, src in inline[0]}) > 1  # the design ran into "the model needs ..." (n_suggested matters)


def test_one_statement_requests_keep_every_rule(database_url: str) -> None:
    """A served random experiment: on PostgreSQL the worker loop's suggestion, observation and
    experiment read are one statement each (no SQLAlchemy statement runs); on both backends retries,
    conflicts, other teams, bad values, queued suggestions, an edited definition, progress and a
    deleted experiment answer as before."""
    import time

    from sqlalchemy import event

    from assay.errors import Conflict, InvalidRequest, NotFound
    from assay.store import repository as repo

    store = Store(database_url)
    store.ensure_schema()
    svc = Service(store, seed=2)
    _attach(svc, timeout=30)
    statements: list[str] = []
    for engine in (store.engine, store._read_engine):
        event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    one_statement = database_url.startswith("postgresql")
    try:
        exp = svc.create_experiment({"name": "r", "type": "random", "parameters": BRANIN_PARAMS,
                                     "metrics": [{"name": "f", "objective": "minimize"}]})
        eid = exp.id
        svc.create_experiment({"name": "theirs", "parameters": BRANIN_PARAMS, "metrics": [{"name": "f"}]},
                              client_id=2)
        first = svc.create_suggestion(eid, client_id=1, idempotency_key="s0")  # waits for the first stock
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with store.read() as s:
                if repo.count_candidates(s, eid, None) > 0:
                    break
            time.sleep(0.05)
        statements.clear()
        s1 = svc.create_suggestion(eid, client_id=1, idempotency_key="s1")
        assert (statements == []) == one_statement
        assert svc.create_suggestion(eid, client_id=1, idempotency_key="s1").id == s1.id  # a retry
        assert svc.create_suggestion(eid, client_id=1, idempotency_key="s0").id == first.id
        with pytest.raises(NotFound):
            svc.create_suggestion(eid, client_id=2)  # another team's experiment
        statements.clear()
        o1 = svc.create_observation(eid, {"suggestion": s1.id, "value": 1.5}, client_id=1, idempotency_key="o1")
        assert (statements == []) == one_statement
        assert (o1.suggestion_id, o1.assignments, o1.values[0].value) == (s1.id, s1.assignments, 1.5)
        assert svc.create_observation(eid, {"suggestion": s1.id, "value": 1.5}, client_id=1,
                                      idempotency_key="o1").id == o1.id  # a retry
        with pytest.raises(Conflict, match="already has an observation"):
            svc.create_observation(eid, {"suggestion": s1.id, "value": 2.0}, client_id=1, idempotency_key="o2")
        with pytest.raises(NotFound):
            svc.create_observation(eid, {"suggestion": first.id, "value": 1.0}, client_id=2)
        with pytest.raises(InvalidRequest, match="unknown metric"):
            svc.create_observation(eid, {"suggestion": first.id, "values": [{"name": "g", "value": 1.0}]})
        with pytest.raises(NotFound):
            svc.create_observation(eid, {"suggestion": 10**6, "value": 1.0})
        # an edited definition (wider bounds): values are checked against the stored one
        svc.update_experiment(eid, {"parameters": [{**BRANIN_PARAMS[0], "bounds": {"min": -5.0, "max": 12.0}},
                                                   BRANIN_PARAMS[1]]})
        o0 = svc.create_observation(eid, {"suggestion": first.id, "value": 0.5}, client_id=1)
        assert o0.suggestion_id == first.id
        # a queued suggestion is served before the stock
        svc.create_queued(eid, {"assignments": {"x1": 1.0, "x2": 2.0}})
        q = svc.create_suggestion(eid, client_id=1)
        assert q.assignments == {"x1": 1.0, "x2": 2.0} and (q.source or "").startswith("queued:")
        s2 = svc.create_suggestion(eid, client_id=1)
        assert not (s2.source or "").startswith("queued:")
        svc.delete_suggestions(eid, s2.id)
        with pytest.raises(Conflict, match="deleted"):
            svc.create_observation(eid, {"suggestion": s2.id, "value": 1.0})
        progress = svc.get_experiment(eid).progress
        assert progress is not None
        assert (progress.observation_count, progress.open_suggestion_count) == (2, 1)
        s3 = svc.create_suggestion(eid, client_id=1)
        svc.create_observation(eid, {"suggestion": s3.id, "value": -1.0}, client_id=1)
        statements.clear()
        progress = svc.get_experiment(eid, client_id=1).progress  # extends the kept summary
        assert (statements == []) == one_statement
        assert progress is not None and (progress.observation_count, progress.open_suggestion_count) == (3, 1)
        assert progress.best_observation is not None and progress.best_observation.suggestion_id == s3.id
        assert progress.last_observation is not None and progress.last_observation.suggestion_id == s3.id
        with pytest.raises(NotFound):
            svc.get_experiment(eid, client_id=2)
        svc.update_experiment(eid, {"state": "deleted"})
        with pytest.raises(Conflict, match="deleted"):
            svc.create_suggestion(eid, client_id=1)
        with pytest.raises(Conflict, match="deleted"):
            svc.create_observation(eid, {"suggestion": q.id, "value": 1.0}, client_id=1)
    finally:
        svc.supplier.stop()
        store.dispose()
