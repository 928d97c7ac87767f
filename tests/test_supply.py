"""The background supplier: precomputed suggestions, time-outs, and the served wiring."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

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
    sup = Supplier(suggest, svc.snapshot, timeout=timeout)
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
        assert a.source == "gp:lognei" and b.source == "gp:lognei"
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
        assert service.create_suggestion(eid).source == "gp:lognei"
    finally:
        sup.stop()


def test_served_suggestions_say_how_they_were_made(tmp_path: Path) -> None:
    proc = ServerProcess(tmp_path / "home", extra_env={"ASSAY_SEED": "3"}).start()
    try:
        with httpx.Client(base_url=proc.url, timeout=60) as c:
            exp = c.post("/v1/experiments", json={"name": "b", "parameters": BRANIN_PARAMS}).json()
            base = f"/v1/experiments/{exp['id']}/suggestions"
            sources = []
            for _ in range(5):
                s = c.post(base).json()
                sources.append(s["source"])
                c.post(f"/v1/experiments/{exp['id']}/observations",
                       json={"suggestion": s["id"], "value": -_branin(s["assignments"])}).raise_for_status()
            assert sources[0] == "sobol"
            assert sources[-1] == "gp:lognei"
    finally:
        proc.stop()
