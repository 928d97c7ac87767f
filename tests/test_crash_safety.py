"""SIGKILL the server during concurrent writes: every acknowledged write survives, nothing is half-written."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from assay.store import Store
from tests.conftest import ServerProcess

WRITERS = 4
BATCH = 5



def test_sqlite_is_wal_with_full_sync(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    store.dispose()


def _writer(url: str, eid: str, wid: int, stop: threading.Event, acked: dict, lock: threading.Lock) -> None:
    """Alternates single observations, all-or-nothing batches and suggestion->observation pairs."""
    i = 0
    with httpx.Client(base_url=url, timeout=30) as h:
        while not stop.is_set():
            i += 1
            key = f"w{wid}-{i}"
            x = (wid * 1000 + i) % 997 / 997
            try:
                kind = i % 3
                if kind == 0:
                    r = h.post(f"/v1/experiments/{eid}/observations", json={
                        "assignments": {"x": x}, "values": [{"value": x * 2}], "idempotency_key": key,
                        "metadata": {"key": key}})
                    ok = r.status_code == 200
                    rec: tuple[str, str, Any, float | None] = ("single", key, r.json()["id"] if ok else None, x)
                elif kind == 1:
                    r = h.post(f"/v1/experiments/{eid}/observations/batch", json={"observations": [
                        {"assignments": {"x": x}, "values": [{"value": x * 2}], "idempotency_key": f"{key}-{j}",
                         "metadata": {"key": key, "batch": key}} for j in range(BATCH)]})
                    ok = r.status_code == 200
                    rec = ("batch", key, None, x)
                else:
                    s = h.post(f"/v1/experiments/{eid}/suggestions", json={"metadata": {"key": key}})
                    if s.status_code != 200:
                        continue
                    sid = s.json()["id"]
                    r = h.post(f"/v1/experiments/{eid}/observations", json={
                        "suggestion": sid, "values": [{"value": 1.5}], "metadata": {"key": key}})
                    ok = r.status_code == 200
                    rec = ("pair", key, sid, None)
            except httpx.TransportError:
                return  # the server died mid-request: this write was not acknowledged
            if ok:
                with lock:
                    acked[key] = rec


def test_sigkill_during_concurrent_writes(tmp_path: Path, database_url: str) -> None:
    """On SQLite and on PostgreSQL (the shared ``database_url`` fixture gives a fresh database of each)."""
    home = tmp_path / "h"
    proc = ServerProcess(home, database_url=database_url).start()
    body = {"name": "crash", "parameters": [{"name": "x", "type": "double", "bounds": {"min": 0, "max": 1}}],
            "metrics": [{"name": "y"}], "observation_budget": 100000}
    try:
        eid = httpx.post(proc.url + "/v1/experiments", json=body, timeout=30).json()["id"]
    except BaseException:
        proc.kill()
        raise
    acked: dict = {}
    lock = threading.Lock()
    stop = threading.Event()
    threads = [threading.Thread(target=_writer, args=(proc.url, eid, w, stop, acked, lock)) for w in range(WRITERS)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(acked) < 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.kill()  # SIGKILL while the writers are mid-stream
    stop.set()
    for t in threads:
        t.join(30)
    assert len(acked) >= 40, "too few writes before the kill to mean anything"

    if database_url.startswith("sqlite"):
        db = sqlite3.connect(database_url.removeprefix("sqlite:///"))
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        db.close()

    proc2 = ServerProcess(home, database_url=database_url).start()
    try:
        with httpx.Client(base_url=proc2.url, timeout=30) as h:
            obs, before = [], None
            while True:
                page = h.get(f"/v1/experiments/{eid}/observations",
                             params={"limit": 1000, **({"before": before} if before else {})}).json()
                obs += page["data"]
                before = page["paging"]["before"]
                if not before:
                    break
            sugs = h.get(f"/v1/experiments/{eid}/suggestions", params={"limit": 1000, "state": "all"}).json()
            exp = h.get(f"/v1/experiments/{eid}").json()
    finally:
        proc2.stop()

    by_key: dict[str, list] = {}
    for o in obs:
        by_key.setdefault(o["metadata"]["key"], []).append(o)
    # every acknowledged write is there, complete
    for key, (kind, _, ref, x) in acked.items():
        got = by_key.get(key, [])
        if kind == "single":
            assert len(got) == 1 and got[0]["id"] == ref and got[0]["assignments"]["x"] == x
            assert got[0]["values"][0]["value"] == x * 2
        elif kind == "batch":
            assert len(got) == BATCH, (key, len(got))
        else:
            assert len(got) == 1 and got[0]["suggestion"] == ref
    # nothing half-written: batches are whole, values complete, suggestions closed exactly when observed
    for key, got in by_key.items():
        if "batch" in got[0]["metadata"]:
            assert len(got) == BATCH, (key, len(got))
        for o in got:
            assert o["failed"] or (o["values"] and o["values"][0]["value"] is not None)
    observed = {o["suggestion"] for o in obs if o["suggestion"]}
    for s in sugs["data"]:
        assert (s["state"] == "closed") == (s["id"] in observed), s
    assert exp["progress"]["observation_count"] == len(obs)
