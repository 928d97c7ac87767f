"""The direct path for the hot requests (assay.server.fast) answers exactly what FastAPI's routes do.

Two real apps on two fresh SQLite databases with the same seed and tokens get the same requests:
one as served (hot requests answered by HotRoutes), one with HotRoutes taken out of its middleware
stack (every request through FastAPI's router). Status, headers that matter and bodies must agree
for good requests and for every kind of bad one.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from assay.access import Access
from assay.config import Settings
from assay.server.app import create_app
from assay.server.fast import HotRoutes
from assay.store import Store
from tests.conftest import simple_experiment


def _database(home: Path) -> dict[str, str]:
    """A fresh database with an admin and a read-only token."""
    store = Store(f"sqlite:///{home / 'assay.db'}")
    store.ensure_schema()
    access = Access(store)
    tokens = {"admin": access.bootstrap() or "", "read": access.operator_create_token(1, role="read")["token"]}
    store.dispose()
    return tokens


def _app(home: Path, direct: bool) -> Any:
    app = create_app(Settings(home=home, database_url=f"sqlite:///{home / 'assay.db'}", auth=True,
                              precompute=False, seed=7, rate_limit=0))
    if not direct:
        app.user_middleware = [m for m in app.user_middleware if m.cls is not HotRoutes]
    assert any(m.cls is HotRoutes for m in app.user_middleware) == direct
    return app


def _strip(body: Any) -> Any:
    """Drop what differs between two databases by design (timestamps)."""
    if isinstance(body, dict):
        return {k: _strip(v) for k, v in body.items() if k not in ("created", "updated")}
    if isinstance(body, list):
        return [_strip(v) for v in body]
    return body


def _requests(eid: str) -> list[tuple[str, str, str | None, dict[str, Any]]]:
    """(method, path, token name, httpx request kwargs): good requests and every kind of bad one."""
    exp = f"/v1/experiments/{eid}"
    sug, obs = f"{exp}/suggestions", f"{exp}/observations"
    return [
        ("POST", sug, "admin", {}),  # no body
        ("POST", sug, "admin", {"json": {}}),
        ("POST", sug, "admin", {"json": {"assignments": {"lr": 0.01, "layers": 3, "opt": "sgd"}}}),  # user-made
        ("POST", sug, "admin", {"json": {"assignments": {"lr": 9.0, "layers": 3, "opt": "sgd"}}}),  # out of bounds: 400
        ("POST", sug, "admin", {"content": b"{not json", "headers": {"content-type": "application/json"}}),
        ("POST", sug, "admin", {"json": [1, 2]}),
        ("POST", sug, "admin", {"json": {"bogus": 1}}),
        ("POST", sug, "admin", {"content": b"{}", "headers": {"content-type": "text/plain"}}),
        ("POST", sug, "admin", {"content": b"{}"}),  # no content type
        ("POST", sug, "read", {}),  # read-only token: 403
        ("POST", sug, None, {}),  # no token: 401 with a challenge
        ("POST", sug, "admin", {"headers": {"Idempotency-Key": "k1"}}),
        ("POST", sug, "admin", {"headers": {"Idempotency-Key": "k1"}}),  # the retry: same suggestion
        ("POST", sug, "admin", {"headers": {"Idempotency-Key": "x" * 300}}),  # key too long
        ("POST", "/v1/experiments/999/suggestions", "admin", {}),
        ("POST", "/v1/experiments/abc/suggestions", "admin", {}),
        ("POST", obs, "admin", {"json": {"suggestion": "1", "value": 1.5}}),
        ("POST", obs, "admin", {"json": {"suggestion": "1", "value": 2.5}}),  # already observed: 409
        ("POST", obs, "admin", {"json": {"suggestion": "2", "value": 1.0}, "headers": {"Idempotency-Key": "o1"}}),
        ("POST", obs, "admin", {"json": {"suggestion": "2", "value": 1.0}, "headers": {"Idempotency-Key": "o1"}}),
        ("POST", obs, "admin", {"json": {"suggestion": "3", "value": "abc"}}),
        ("POST", obs, "admin", {"content": b'{"suggestion": "3", "value": NaN}',
                                "headers": {"content-type": "application/json"}}),
        ("POST", obs, "admin", {"json": {"suggestion": "3"}}),  # no value
        ("POST", obs, "admin", {}),  # no body
        ("POST", obs, "admin", {"json": {"assignments": {"lr": 0.001, "layers": 2, "opt": "adam"}, "value": 0.3}}),
        ("POST", obs, "admin", {"json": {"suggestion": "3", "value": 1.0, "extra": 1}}),
        ("POST", obs, "read", {"json": {"suggestion": "3", "value": 1.0}}),
        ("POST", obs, "admin", {"content": b"x" * 100, "headers": {"content-type": "application/json"}}),
        ("POST", obs, "admin", {"content": b'{"metadata": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5001,
                                "headers": {"content-type": "application/json"}}),  # too deep for json
        ("GET", exp, "admin", {}),
        ("GET", exp, "read", {}),
        ("GET", exp, None, {"headers": {"X-Requested-With": "fetch"}}),  # 401 without a challenge
        ("GET", "/v1/experiments/999", "admin", {}),
        ("GET", "/v1/experiments/abc", "admin", {}),
        ("HEAD", exp, "admin", {}),
        ("GET", exp + "/", "admin", {}),
    ]


def test_hot_routes_answer_like_fastapi(tmp_path: Path) -> None:
    (tmp_path / "direct").mkdir()
    tokens = _database(tmp_path / "direct")
    shutil.copytree(tmp_path / "direct", tmp_path / "routed")  # the same database twice
    with TestClient(_app(tmp_path / "direct", True)) as a, TestClient(_app(tmp_path / "routed", False)) as b:
        eids = []
        for client in (a, b):
            body = simple_experiment()
            r = client.post("/v1/experiments", json=body, headers={"Authorization": f"Bearer {tokens['admin']}"})
            assert r.status_code == 200, r.text
            eids.append(r.json()["id"])
        assert eids[0] == eids[1]
        seen = set()
        for method, path, who, kw in _requests(eids[0]):
            out = []
            for client in (a, b):
                headers = dict(kw.get("headers", {}))
                if who is not None:
                    headers["Authorization"] = f"Bearer {tokens[who]}"
                r = client.request(method, path, **{**kw, "headers": headers})
                body = _strip(r.json()) if r.content and r.headers.get("content-type") == "application/json" \
                    else r.content
                out.append((r.status_code, r.headers.get("content-type"), r.headers.get("www-authenticate"),
                            r.headers.get("cache-control"), body))
            assert out[0] == out[1], (method, path, who, kw)
            seen.add(out[0][0])
        assert {200, 400, 401, 403, 404, 409, 422} <= seen, seen


def test_oversized_body_refused_on_the_hot_path(tmp_path: Path) -> None:
    """The body limit still applies to hot requests (the limit sits in front of them)."""
    url, limit = f"sqlite:///{tmp_path / 'assay.db'}", 1024
    app = create_app(Settings(home=tmp_path, database_url=url, auth=False, precompute=False, max_body_bytes=limit))
    with TestClient(app) as c:
        eid = c.post("/v1/experiments", json=simple_experiment()).json()["id"]
        s = c.post(f"/v1/experiments/{eid}/suggestions").json()
        r = c.post(f"/v1/experiments/{eid}/observations",
                   json={"suggestion": s["id"], "value": 1.0, "metadata": {"pad": "x" * limit}})
        assert r.status_code == 413 and r.json()["object"] == "error", r.text
        assert c.get(f"/v1/experiments/{eid}").json()["progress"]["observation_count"] == 0
