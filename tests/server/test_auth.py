"""API tokens, roles, share tokens, rotation and revocation (real app, real SQLite)."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

with __import__("warnings").catch_warnings():
    __import__("warnings").simplefilter("ignore")
    from starlette.testclient import TestClient

from assay.access import Access, hash_token
from assay.config import Settings
from assay.server.app import create_app
from assay.store.models import ApiTokenRow
from tests.conftest import simple_experiment


@pytest.fixture
def app_client(tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(Settings(home=tmp_path, auth=True, precompute=False, rate_limit=0))
    with TestClient(app, base_url="http://test") as c:
        c.admin = Access(app.state.service.store).bootstrap()  # type: ignore[attr-defined]
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(token: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{token}:".encode()).decode()}


def make_token(c: TestClient, admin: str, **body) -> dict:  # type: ignore[no-untyped-def]
    r = c.post("/v1/tokens", json=body, headers=bearer(admin))
    assert r.status_code == 200, r.text
    return r.json()


def test_no_token_is_401_with_basic_challenge(app_client: TestClient) -> None:
    r = app_client.get("/v1/experiments")
    assert r.status_code == 401
    assert r.json()["object"] == "error" and "token" in r.json()["message"]
    assert r.headers["www-authenticate"].startswith("Basic")
    for h in ({"Authorization": "Bearer nope"}, basic("assay_wrong"), {"Authorization": "Basic !!!"},
              {"Authorization": "Digest x"}):
        assert app_client.get("/v1/experiments", headers=h).status_code == 401
    assert app_client.get("/health").status_code == 200  # health stays open for load balancers


def test_basic_and_bearer_both_work(app_client: TestClient) -> None:
    admin = app_client.admin  # type: ignore[attr-defined]
    assert app_client.get("/v1/experiments", headers=bearer(admin)).status_code == 200
    assert app_client.get("/v1/experiments", headers=basic(admin)).status_code == 200
    me = app_client.get("/v1/tokens/self", headers=basic(admin)).json()
    assert me["client"] == "1" and me["role"] == "admin" and me["token"] is None


def test_tokens_are_stored_hashed_and_shown_once(app_client: TestClient) -> None:
    admin = app_client.admin  # type: ignore[attr-defined]
    t = make_token(app_client, admin, name="ci", role="write")
    assert t["token"].startswith("assay_") and len(t["token"]) > 40
    store = app_client.app.state.service.store  # type: ignore[attr-defined]
    from sqlalchemy import select

    with store.read() as s:
        rows = s.execute(select(ApiTokenRow)).scalars().all()
        assert all(r.token_hash != t["token"] and len(r.token_hash) == 64 for r in rows)
        assert hash_token(t["token"]) in {r.token_hash for r in rows}
    listed = app_client.get("/v1/tokens", headers=bearer(admin)).json()
    assert {x["id"] for x in listed["data"]} >= {t["id"]}
    assert all(x["token"] is None for x in listed["data"])
    assert app_client.get(f"/v1/tokens/{t['id']}", headers=bearer(admin)).json()["token"] is None


def test_roles(app_client: TestClient) -> None:
    admin = app_client.admin  # type: ignore[attr-defined]
    write = make_token(app_client, admin, role="write")["token"]
    read = make_token(app_client, admin, role="read")["token"]
    r = app_client.post("/v1/experiments", json=simple_experiment(), headers=bearer(write))
    assert r.status_code == 200
    eid = r.json()["id"]
    # read: can read, cannot write anything
    assert app_client.get(f"/v1/experiments/{eid}", headers=bearer(read)).status_code == 200
    for method, path, body in [("POST", "/v1/experiments", simple_experiment()),
                               ("PUT", f"/v1/experiments/{eid}", {"name": "x"}),
                               ("DELETE", f"/v1/experiments/{eid}", None),
                               ("POST", f"/v1/experiments/{eid}/suggestions", {})]:
        r = app_client.request(method, path, json=body, headers=bearer(read))
        assert r.status_code == 403, (method, path, r.text)
    assert app_client.get(f"/v1/experiments/{eid}", headers=bearer(read)).json()["name"] == "test"
    # write: cannot manage tokens or read the audit log
    assert app_client.get("/v1/tokens", headers=bearer(write)).status_code == 403
    assert app_client.post("/v1/tokens", json={"role": "admin"}, headers=bearer(write)).status_code == 403
    assert app_client.get("/v1/audit", headers=bearer(write)).status_code == 403
    assert app_client.get("/v1/audit", headers=bearer(admin)).status_code == 200


def test_development_token_gets_random_suggestions(app_client: TestClient) -> None:
    admin = app_client.admin  # type: ignore[attr-defined]
    dev = make_token(app_client, admin, development=True)
    assert dev["development"] and dev["token_type"] == "client-dev" and dev["role"] == "write"
    eid = app_client.post("/v1/experiments", json=simple_experiment(), headers=bearer(admin)).json()["id"]
    s = app_client.post(f"/v1/experiments/{eid}/suggestions", headers=bearer(dev["token"])).json()
    assert s["object"] == "suggestion"
    stored = app_client.app.state.service.get_suggestion(eid, s["id"])  # type: ignore[attr-defined]
    assert stored.source and "random" in stored.source


def test_share_token_reads_one_experiment_only(app_client: TestClient) -> None:
    admin = app_client.admin  # type: ignore[attr-defined]
    e1 = app_client.post("/v1/experiments", json=simple_experiment(name="shared"), headers=bearer(admin)).json()
    e2 = app_client.post("/v1/experiments", json=simple_experiment(name="private"), headers=bearer(admin)).json()
    r = app_client.post(f"/v1/experiments/{e1['id']}/tokens", headers=bearer(admin))
    share = r.json()
    assert share["token_type"] == "guest" and share["role"] == "read" and share["experiment"] == e1["id"]
    assert share["expires"] > time.time() + 29 * 86400
    h = bearer(share["token"])
    assert app_client.get(f"/v1/experiments/{e1['id']}", headers=h).json()["name"] == "shared"
    assert app_client.get(f"/v1/experiments/{e1['id']}/observations", headers=h).status_code == 200
    assert app_client.get(f"/v1/experiments/{e1['id']}/best_assignments", headers=h).status_code == 200
    # nothing else, not even a hint that the other experiment exists
    assert app_client.get(f"/v1/experiments/{e2['id']}", headers=h).status_code == 404
    assert app_client.get("/v1/experiments", headers=h).status_code == 404
    assert app_client.get(f"/v1/experiments/{e1['id']}/../{e2['id']}", headers=h).status_code == 404
    assert app_client.get("/v1/tokens", headers=h).status_code in (403, 404)
    assert app_client.get("/v1/clients/1", headers=h).status_code == 404
    assert app_client.put(f"/v1/experiments/{e1['id']}", json={"name": "x"}, headers=h).status_code in (403, 404)
    assert app_client.post(f"/v1/experiments/{e1['id']}/suggestions", headers=h).status_code in (403, 404)
    assert app_client.get("/v1/tokens/self", headers=h).json()["experiment"] == e1["id"]


def test_share_token_expires_and_renews(app_client: TestClient) -> None:
    admin = app_client.admin  # type: ignore[attr-defined]
    eid = app_client.post("/v1/experiments", json=simple_experiment(), headers=bearer(admin)).json()["id"]
    share = make_token(app_client, admin, experiment=eid, lifetime=60)
    store = app_client.app.state.service.store  # type: ignore[attr-defined]
    from sqlalchemy import update

    with store.write() as s:
        s.execute(update(ApiTokenRow).where(ApiTokenRow.id == int(share["id"])).values(expires=int(time.time()) - 1))
    r = app_client.get(f"/v1/experiments/{eid}", headers=bearer(share["token"]))
    assert r.status_code == 401 and "expired" in r.json()["message"]
    renewed = app_client.put(f"/v1/tokens/{share['id']}", json={"expires": "renew"}, headers=bearer(admin)).json()
    assert renewed["expires"] >= time.time() + 55 and renewed["token"] is None
    assert app_client.get(f"/v1/experiments/{eid}", headers=bearer(share["token"])).status_code == 200


def test_share_token_for_one_training_run_expires(app_client: TestClient) -> None:
    """POST /v1/training_runs/{id}/tokens: read that run (and its checkpoints) until it expires."""
    admin = app_client.admin  # type: ignore[attr-defined]
    h_admin = bearer(admin)
    app_client.post("/v1/clients/1/projects", json={"id": "p", "name": "p"}, headers=h_admin)
    r1 = app_client.post("/v1/clients/1/projects/p/training_runs", json={"name": "one"}, headers=h_admin).json()
    r2 = app_client.post("/v1/clients/1/projects/p/training_runs", json={"name": "two"}, headers=h_admin).json()
    share = app_client.post(f"/v1/training_runs/{r1['id']}/tokens", headers=h_admin).json()
    assert share["training_run"] == r1["id"] and share["role"] == "read" and share["token_type"] == "guest"
    assert share["expires"] > time.time() + 29 * 86400
    h = bearer(share["token"])
    assert app_client.get(f"/v1/training_runs/{r1['id']}", headers=h).json()["name"] == "one"
    assert app_client.get(f"/v1/training_runs/{r1['id']}/checkpoints", headers=h).status_code == 200
    assert app_client.get(f"/v1/training_runs/{r2['id']}", headers=h).status_code == 404
    assert app_client.get("/v1/clients/1/training_runs", headers=h).status_code == 404
    assert app_client.put(f"/v1/training_runs/{r1['id']}", json={"name": "x"}, headers=h).status_code in (403, 404)
    assert app_client.post(f"/v1/training_runs/{r1['id']}/tokens", headers=h).status_code in (403, 404)
    read = make_token(app_client, admin, role="read")["token"]
    assert app_client.post(f"/v1/training_runs/{r1['id']}/tokens", headers=bearer(read)).status_code == 403
    assert app_client.post("/v1/training_runs/999999/tokens", headers=h_admin).status_code == 404
    store = app_client.app.state.service.store  # type: ignore[attr-defined]
    from sqlalchemy import update

    with store.write() as s:
        s.execute(update(ApiTokenRow).where(ApiTokenRow.id == int(share["id"])).values(expires=int(time.time()) - 1))
    r = app_client.get(f"/v1/training_runs/{r1['id']}", headers=h)
    assert r.status_code == 401 and "expired" in r.json()["message"]


def test_rotate_and_revoke(app_client: TestClient) -> None:
    admin = app_client.admin  # type: ignore[attr-defined]
    t = make_token(app_client, admin, role="write", name="worker")
    old = t["token"]
    rotated = app_client.put("/v1/tokens/self", json={"token": "rotate"}, headers=bearer(old)).json()
    new = rotated["token"]
    assert new and new != old and rotated["id"] == t["id"]
    assert app_client.get("/v1/experiments", headers=bearer(old)).status_code == 401
    assert app_client.get("/v1/experiments", headers=bearer(new)).status_code == 200
    assert app_client.delete(f"/v1/tokens/{t['id']}", headers=bearer(admin)).status_code == 204
    r = app_client.get("/v1/experiments", headers=bearer(new))
    assert r.status_code == 401 and "revoked" in r.json()["message"]
    # a write token can revoke itself but not touch others
    other = make_token(app_client, admin, role="write")["token"]
    assert app_client.delete("/v1/tokens/1", headers=bearer(other)).status_code == 404
    assert app_client.get("/v1/experiments", headers=bearer(admin)).status_code == 200
    assert app_client.delete("/v1/tokens/self", headers=bearer(other)).status_code == 204
    assert app_client.get("/v1/experiments", headers=bearer(other)).status_code == 401


def test_audit_log_records_changes_and_token_events(app_client: TestClient) -> None:
    admin = app_client.admin  # type: ignore[attr-defined]
    writer = make_token(app_client, admin, role="write", name="alice laptop")
    h = bearer(writer["token"])
    eid = app_client.post("/v1/experiments", json=simple_experiment(), headers=h).json()["id"]
    app_client.put(f"/v1/experiments/{eid}", json={"name": "renamed", "observation_budget": 30}, headers=h)
    app_client.delete(f"/v1/experiments/{eid}/observations", headers=h)
    app_client.delete(f"/v1/experiments/{eid}", headers=h)
    app_client.delete(f"/v1/tokens/{writer['id']}", headers=bearer(admin))
    log = app_client.get("/v1/audit", headers=bearer(admin)).json()
    actions = [(e["action"], e["object_id"], e["token"]) for e in log["data"]]
    assert actions[:5] == [
        ("token.revoke", writer["id"], "1"),
        ("experiment.delete", eid, writer["id"]),
        ("observation.delete", eid, writer["id"]),
        ("experiment.update", eid, writer["id"]),
        ("experiment.create", eid, writer["id"]),
    ]
    upd = log["data"][3]
    assert upd["actor"] == f"token {writer['id']} (alice laptop)"
    assert upd["details"]["fields"] == ["name", "observation_budget"]
    assert ("token.create", writer["id"], "1") in [(e["action"], e["object_id"], e["token"]) for e in log["data"]]
    page = app_client.get("/v1/audit", params={"limit": 2}, headers=bearer(admin)).json()
    assert len(page["data"]) == 2 and page["paging"]["before"]
    nxt = app_client.get("/v1/audit", params={"limit": 2, "before": page["paging"]["before"]},
                         headers=bearer(admin)).json()
    assert nxt["data"][0]["id"] < page["data"][-1]["id"] or int(nxt["data"][0]["id"]) < int(page["data"][-1]["id"])


def test_audit_entry_rolls_back_with_a_failed_change(app_client: TestClient) -> None:
    admin = app_client.admin  # type: ignore[attr-defined]
    eid = app_client.post("/v1/experiments", json=simple_experiment(), headers=bearer(admin)).json()["id"]
    before = app_client.get("/v1/audit", headers=bearer(admin)).json()["count"]
    # metrics cannot be renamed: the update fails inside its transaction, after the row was locked
    r = app_client.put(f"/v1/experiments/{eid}", json={"metrics": [{"name": "other"}]}, headers=bearer(admin))
    assert r.status_code == 400
    assert app_client.get("/v1/audit", headers=bearer(admin)).json()["count"] == before


def test_users(app_client: TestClient) -> None:
    admin = app_client.admin  # type: ignore[attr-defined]
    r = app_client.post("/v1/clients/1/users", json={"email": "ada@example.org", "name": "Ada"},
                        headers=bearer(admin))
    assert r.status_code == 200, r.text
    uid = r.json()["id"]
    assert app_client.post("/v1/clients/1/users", json={"email": "ada@example.org"},
                           headers=bearer(admin)).status_code == 409
    t = make_token(app_client, admin, user=uid, role="read")
    assert t["user"] == uid
    users = app_client.get("/v1/clients/1/users", headers=bearer(t["token"])).json()
    assert [u["email"] for u in users["data"]] == ["ada@example.org"]
    assert app_client.post("/v1/clients/1/users", json={"email": "x@y.z"},
                           headers=bearer(t["token"])).status_code == 403


def test_without_auth_everyone_is_local_admin(tmp_path: Path) -> None:
    with TestClient(create_app(Settings(home=tmp_path, precompute=False)), base_url="http://t") as c:
        assert c.get("/v1/experiments").status_code == 200
        me = c.get("/v1/tokens/self").json()
        assert me["client"] == "1" and me["kind"] == "local"


def test_embedded_connection_needs_no_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSAY_AUTH", "on")  # even so: embedded mode is the user's own process and database
    import assay

    with assay.Connection(home=tmp_path) as conn:
        assert conn.create_experiment(**simple_experiment()).id


def test_server_with_auth_prints_admin_token_once(tmp_path: Path) -> None:
    from assay.store import Store
    from tests.conftest import ServerProcess

    home = tmp_path / "h"
    proc = ServerProcess(home, extra_env={"ASSAY_AUTH": "on"}).start()
    try:
        text = proc.log.read_text()
        token = next(w for w in text.split() if w.startswith("assay_"))
        assert httpx.get(proc.url + "/v1/experiments").status_code == 401
        assert httpx.get(proc.url + "/v1/experiments", auth=(token, "")).status_code == 200
        me = httpx.get(proc.url + "/v1/tokens/self", auth=(token, "")).json()
        assert me["role"] == "admin" and me["client"] == "1"
        store = Store(f"sqlite:///{home / 'assay.db'}")
        assert Access(store).bootstrap() is None  # a later start neither re-creates nor shows it
        store.dispose()
    finally:
        proc.stop()


def test_refuses_public_bind_without_auth(tmp_path: Path) -> None:
    import subprocess
    import sys

    env = {"ASSAY_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    import os

    env["PYTHONPATH"] = os.environ.get("PYTHONPATH", "")
    r = subprocess.run([sys.executable, "-m", "assay", "server", "--host", "0.0.0.0", "--no-auth"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "refusing" in r.stdout and "--insecure-no-auth" in r.stdout
