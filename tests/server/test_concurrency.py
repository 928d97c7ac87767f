"""Many workers hammering one experiment through real server processes, on SQLite and PostgreSQL.

Every request that creates something carries an ``Idempotency-Key`` and is sent twice (once more
right away, and for some keys from two threads at the same moment), as a client does when a
response is lost: nothing may be duplicated, nothing lost, no worker may share a suggestion.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerProcess, simple_experiment

WORKERS = 16
CYCLES = 3


def value_of(a: dict) -> float:
    return round(-abs(a["layers"] - 4) + (0.5 if a["opt"] == "adam" else 0.0) + a["lr"], 6)


@pytest.mark.parametrize("processes", [2])
def test_workers_never_share_and_never_lose(database_url: str, tmp_path: Path, processes: int) -> None:
    # Generous start timeout: every server process imports the numeric stack, slow on a busy machine.
    server = ServerProcess(tmp_path / "home", database_url, args=["--workers", str(processes)]).start(timeout=240)
    try:
        _hammer(server.url)
    finally:
        server.stop()


def _post(client: httpx.Client, path: str, body: dict, key: str) -> dict:
    resp = client.post(path, json=body, headers={"Idempotency-Key": key})
    assert resp.status_code == 200, resp.text
    return resp.json()


def _hammer(url: str) -> None:
    with httpx.Client(base_url=url, timeout=60) as c:
        exp = c.post("/v1/experiments", json=simple_experiment(observation_budget=200, parallel_bandwidth=4,
                                                                  type="random")).json()
    sug_path = f"/v1/experiments/{exp['id']}/suggestions"
    obs_path = f"/v1/experiments/{exp['id']}/observations"
    handed: dict[str, str] = {}  # suggestion id -> worker/cycle that got it
    reported: dict[str, float] = {}
    lock = threading.Lock()
    pool = ThreadPoolExecutor(WORKERS * 2)

    def worker(w: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as c:
            for i in range(CYCLES):
                key = f"w{w}-c{i}"
                if i % 2:  # the "retry" races the original request
                    a, b = pool.submit(_post, c, sug_path, {}, "s-" + key), pool.submit(_post, c, sug_path, {},
                                                                                         "s-" + key)
                    s, s2 = a.result(), b.result()
                else:
                    s = _post(c, sug_path, {}, "s-" + key)
                    s2 = _post(c, sug_path, {}, "s-" + key)
                assert s2["id"] == s["id"]
                with lock:
                    assert s["id"] not in handed, f"{key} got {handed.get(s['id'])}'s suggestion"
                    handed[s["id"]] = key
                v = value_of(s["assignments"])
                body = {"suggestion": s["id"], "values": [{"value": v}]}
                o = _post(c, obs_path, body, "o-" + key)
                assert _post(c, obs_path, body, "o-" + key)["id"] == o["id"]
                with lock:
                    reported[s["id"]] = v

    with ThreadPoolExecutor(WORKERS) as ex:
        for f in [ex.submit(worker, w) for w in range(WORKERS)]:
            f.result()
    pool.shutdown()

    n = WORKERS * CYCLES
    assert len(handed) == n == len(reported)
    with httpx.Client(base_url=url, timeout=60) as c:
        e = c.get(f"/v1/experiments/{exp['id']}").json()
        assert e["progress"]["observation_count"] == n
        assert e["progress"]["open_suggestion_count"] == 0
        sugs = c.get(sug_path, params={"limit": 1000}).json()
        assert sugs["count"] == n  # retries created nothing extra
        obs = c.get(obs_path, params={"limit": 1000}).json()["data"]
        assert sorted(o["suggestion"] for o in obs) == sorted(handed)
        assert {o["suggestion"]: o["value"] for o in obs} == pytest.approx(reported)
        best = c.get(f"/v1/experiments/{exp['id']}/best_assignments").json()["data"]
        assert best[0]["value"] == pytest.approx(max(reported.values()))
