"""The audit log: who changed what, for every kind of change, visible to admins only (real app, real SQLite)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from assay.access import Access
from assay.config import Settings
from assay.server.app import create_app
from tests.conftest import simple_experiment

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


def test_every_change_is_audited_with_its_author(tmp_path: Path, database_url: str) -> None:
    app = create_app(Settings(home=tmp_path, database_url=database_url, auth=True, precompute=False, rate_limit=0))
    with TestClient(app, base_url="http://test") as c:
        admin = {"Authorization": f"Bearer {Access(app.state.service.store).bootstrap()}"}

        def ok(method: str, path: str, body: Any = None, h: dict[str, str] = admin, **kw: Any) -> Any:
            r = c.request(method, path, json=body, headers=h, **kw)
            assert r.status_code < 300, (method, path, r.text)
            return r.json() if r.content else None

        writer = ok("POST", "/v1/tokens", {"role": "write", "name": "ci runner"})
        w = {"Authorization": f"Bearer {writer['token']}"}
        e = ok("POST", "/v1/experiments", simple_experiment(), w)["id"]
        x = f"/v1/experiments/{e}"
        ok("PUT", x, {"name": "renamed"}, w)
        s1 = ok("POST", f"{x}/suggestions", None, w)["id"]
        s2 = ok("POST", f"{x}/suggestions", None, w)["id"]
        o = ok("POST", f"{x}/observations", {"suggestion": s1, "values": [{"value": 1.0}]}, w)["id"]
        ok("PUT", f"{x}/observations/{o}", {"values": [{"value": 2.0}]}, w)
        ok("DELETE", f"{x}/suggestions/{s2}", None, w)
        q = ok("POST", f"{x}/queued_suggestions", {"assignments": {"lr": 0.01, "layers": 2, "opt": "sgd"}}, w)["id"]
        ok("DELETE", f"{x}/queued_suggestions/{q}", None, w)
        ok("DELETE", f"{x}/observations/{o}", None, w)
        ok("DELETE", x, None, w)
        ok("POST", "/v1/clients/1/projects", {"id": "p1", "name": "P"}, w)
        ok("POST", "/v1/clients/1/projects", {"id": "p" * 100}, w)  # longer than an audit object id
        ok("PUT", "/v1/clients/1/projects/p1", {"name": "P2"}, w)
        ai = ok("POST", "/v1/clients/1/projects/p1/aiexperiments", simple_experiment(name="ai"), w)["id"]
        ok("DELETE", f"/v1/aiexperiments/{ai}", None, w)
        run = ok("POST", "/v1/clients/1/projects/p1/training_runs", {"name": "r"}, w)["id"]
        ok("POST", f"/v1/training_runs/{run}/files", {"content_length": 3, "name": "f", "content_type": "text/plain"},
           w)
        ok("DELETE", f"/v1/training_runs/{run}", None, w)
        ok("PUT", f"/v1/training_runs/{run}", {"deleted": False}, w)
        ok("PUT", f"/v1/tokens/{writer['id']}", {"token": "rotate"})
        ok("POST", "/v1/clients/1/users", {"email": "a@b.example"})
        ok("PUT", "/v1/clients/1", {"name": "research"})
        ok("DELETE", f"/v1/tokens/{writer['id']}")

        log = ok("GET", "/v1/audit", params={"limit": 1000})
        entries = log["data"]
        assert log["count"] == len(entries)
        seen = {(e["action"], e["object_type"]) for e in entries}
        assert seen >= {
            ("experiment.create", "experiment"), ("experiment.update", "experiment"),
            ("experiment.delete", "experiment"), ("suggestion.delete", "experiment"),
            ("observation.update", "observation"), ("observation.delete", "experiment"),
            ("queued_suggestion.delete", "queued_suggestion"), ("project.create", "project"),
            ("project.update", "project"), ("file.create", "file"), ("training_run.delete", "training_run"),
            ("training_run.restore", "training_run"), ("token.create", "token"), ("token.update", "token"),
            ("token.revoke", "token"), ("user.add", "user"), ("client.update", "client")}, seen
        by_action = {entry["action"]: entry for entry in reversed(entries)}  # the newest of each kind
        upd = by_action["experiment.update"]
        assert upd["actor"] == f"token {writer['id']} (ci runner)" and upd["token"] == writer["id"]
        assert upd["object_id"] == e and upd["details"] == {"fields": ["name"]}
        assert by_action["observation.update"]["details"]["experiment"] == e
        ai_events = [x for x in entries if x["object_id"] == ai and x["object_type"] == "experiment"]
        assert sorted(x["action"] for x in ai_events) == ["experiment.create", "experiment.delete"]
        assert all(x["token"] == writer["id"] for x in ai_events)  # never "local" behind a token
        assert all(x["actor"] != "local" for x in entries if x["action"] != "token.create" or x["token"])
        assert by_action["token.update"]["details"]["rotated"] is True
        ids = [int(x["id"]) for x in entries]
        assert ids == sorted(ids, reverse=True)  # newest first

        # reads write nothing; a refused change writes nothing
        before = ok("GET", "/v1/audit")["count"]
        for path in ("/v1/experiments", f"{x}", "/v1/clients/1/projects", f"/v1/training_runs/{run}"):
            ok("GET", path)
        assert c.put(x, json={"parameters": "nonsense"}, headers=admin).status_code in (400, 422)
        assert c.delete("/v1/experiments/999999", headers=admin).status_code == 404
        assert ok("GET", "/v1/audit")["count"] == before

        # filters
        only = ok("GET", "/v1/audit", params={"action": "experiment.delete"})
        assert only["count"] == 2 and {x["action"] for x in only["data"]} == {"experiment.delete"}
        tokens = ok("GET", "/v1/audit", params={"action": "token."})["data"]
        assert {x["action"] for x in tokens} == {"token.create", "token.update", "token.revoke"}
        one = ok("GET", "/v1/audit", params={"object_type": "experiment", "object_id": e})["data"]
        assert [x["action"] for x in one][::-1][:2] == ["experiment.create", "experiment.update"]
        assert ok("GET", "/v1/audit", params={"action": "%"})["count"] == 0  # no wildcards
        assert c.get("/v1/audit", params={"action": "x" * 101}, headers=admin).status_code == 400

        # admins only
        reader = ok("POST", "/v1/tokens", {"role": "read"})["token"]
        writer2 = ok("POST", "/v1/tokens", {"role": "write"})["token"]
        for t in (reader, writer2):
            r = c.get("/v1/audit", headers={"Authorization": f"Bearer {t}"})
            assert r.status_code == 403 and "admin" in r.json()["message"]
        page = ok("GET", "/v1/audit", params={"limit": 3})
        assert len(page["data"]) == 3 and page["paging"]["before"]
        nxt = ok("GET", "/v1/audit", params={"limit": 3, "before": page["paging"]["before"]})
        assert int(nxt["data"][0]["id"]) < int(page["data"][-1]["id"])
