"""Hostile input on every write route: clear 4xx errors, never 5xx, nothing stored (real app, real SQLite)."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator

import httpx
import pytest

from assay.config import Settings
from assay.server.app import create_app
from tests.conftest import simple_experiment

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def c(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    app = create_app(Settings(home=tmp_path_factory.mktemp("hostile"), precompute=False, max_body_bytes=LIMIT))
    with TestClient(app, base_url="http://test", raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="module")
def eid(c: TestClient) -> str:
    return c.post("/v1/experiments", json=simple_experiment(name="target")).json()["id"]


def raw(c: TestClient, method: str, path: str, body: str | bytes) -> httpx.Response:
    return c.request(method, path, content=body, headers={"content-type": "application/json"})


@pytest.fixture(scope="module")
def ids(c: TestClient, eid: str) -> dict[str, str]:
    """An object of every kind a write route's path names (team 1, organization 1)."""
    e = f"/v1/experiments/{eid}"
    s = c.post(f"{e}/suggestions").json()["id"]
    o = c.post(f"{e}/observations", json={"suggestion": s, "values": [{"value": 1.0}]}).json()["id"]
    q = c.post(f"{e}/queued_suggestions", json={"assignments": {"lr": 0.01, "layers": 2, "opt": "sgd"}}).json()["id"]
    c.post("/v1/clients/1/projects", json={"id": "hp", "name": "hp"})
    run = c.post("/v1/clients/1/projects/hp/training_runs", json={"name": "r"}).json()["id"]
    cp = c.post(f"/v1/training_runs/{run}/checkpoints", json={"values": [{"name": "y", "value": 1}]}).json()["id"]
    f = c.post(f"/v1/training_runs/{run}/files", json={"content_length": 1, "content_type": "text/plain"}).json()["id"]
    u = c.post("/v1/clients/1/users", json={"email": "h@h.example"}).json()["id"]
    return {"experiment_id": eid, "suggestion_id": s, "observation_id": o, "queued_id": q, "project": "hp",
            "run_id": run, "checkpoint_id": cp, "file_id": f, "user_id": u, "client_id": "1", "organization_id": "1",
            "token_id": "self"}


def write_routes(c: TestClient, ids: dict[str, str]) -> list[tuple[str, str]]:
    """Every operation of the OpenAPI document that takes a JSON body (new routes are covered)."""
    import re

    out = []
    for path, ops in c.get("/openapi.json").json()["paths"].items():
        for method, op in ops.items():
            if "application/json" in op.get("requestBody", {}).get("content", {}):
                out.append((method.upper(), re.sub(r"{(\w+)(:[^}]*)?}", lambda x: ids[x.group(1)], path)))
    assert len(out) >= 25, out
    return out + [("MERGE", f"/v1/training_runs/{ids['run_id']}")]  # not an OpenAPI method


HOSTILE = [
    ("not json", b"{nope"),
    ("invalid utf-8", b'{"name": "\xff\xfe"}'),
    ("array body", b"[1, 2, 3]"),
    ("string body", b'"hello"'),
    ("deep nesting", b'{"metadata": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5001),
    ("deep list", b"[" * 100_000 + b"]" * 100_000),
    ("NUL in text", json.dumps({"name": "a\x00b", "metadata": {"k": "\x00"}}).encode()),
    ("lone surrogate", b'{"name": "\\ud800", "metadata": {"k": "\\udfff"}}'),
    ("surrogate key", b'{"metadata": {"\\ud800": 1}}'),
    ("NaN", b'{"value": NaN, "observation_budget": NaN}'),
    ("Infinity", b'{"value": Infinity, "metadata": {"k": -Infinity}}'),
    ("1e999", b'{"value": 1e999, "observation_budget": 1e999}'),
    ("huge int", b'{"observation_budget": ' + b"9" * 4000 + b"}"),
    ("wrong types", b'{"name": 5, "parameters": "x", "metadata": [1], "values": {"a": 1}, "role": 7}'),
    ("huge string", json.dumps({"name": "x" * 60_000}).encode()),
    ("many keys", json.dumps({"metadata": {f"k{i}": i for i in range(5000)}}).encode()),
    ("unicode names", json.dumps({"name": "\u202e\ufeff\U0001f600" * 5, "email": "\u0430@\u0430.\u0430"}).encode()),
]


@pytest.mark.parametrize("label,body", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_bodies_get_clear_4xx(c: TestClient, eid: str, ids: dict[str, str], label: str, body: bytes) -> None:
    before = c.get(f"/v1/experiments/{eid}").json()
    count = c.get("/v1/experiments", params={"state": "all"}).json()["count"]
    for method, path in write_routes(c, ids):
        r = raw(c, method, path, body)
        assert 400 <= r.status_code < 500 or (label == "unicode names" and r.status_code == 200), \
            (label, method, path, r.status_code, r.text[:300])
        if r.status_code >= 400:
            err = r.json()
            assert err["object"] == "error" and err["status"] == r.status_code and err["message"], err
    after = c.get(f"/v1/experiments/{eid}").json()
    assert after["name"] == before["name"] and after["progress"] == before["progress"]
    if label != "unicode names":
        assert c.get("/v1/experiments", params={"state": "all"}).json()["count"] == count


def test_errors_name_the_field(c: TestClient, eid: str) -> None:
    r = c.post("/v1/experiments", json={**simple_experiment(), "metadata": {"note": "a\x00"}})
    assert r.status_code == 422 and r.json()["field"] == "metadata.note" and "NUL" in r.json()["message"]
    r = raw(c, "POST", "/v1/experiments", json.dumps(simple_experiment()).replace('"test"', '"\\ud83d"'))
    assert r.status_code == 422 and r.json()["field"] == "name" and "surrogate" in r.json()["message"]
    r = raw(c, "POST", f"/v1/experiments/{eid}/observations",
            '{"assignments": {"lr": 0.01, "layers": 2, "opt": "adam"}, "value": NaN}')
    assert r.status_code == 422 and r.json()["field"] == "value"


def test_body_over_limit_is_413_declared_or_streamed(c: TestClient, eid: str) -> None:
    big = json.dumps({**simple_experiment(), "metadata": {"pad": "x" * (LIMIT + 10)}}).encode()
    r = raw(c, "POST", "/v1/experiments", big)
    assert r.status_code == 413 and r.json()["status"] == 413 and "larger than" in r.json()["message"]

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(big), 8192):
            yield big[i:i + 8192]

    r = c.post("/v1/experiments", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["status"] == 413
    assert c.get("/v1/experiments", params={"state": "all"}).json()["count"] >= 1  # still serving


@pytest.mark.parametrize("url", [
    "/v1/experiments?project=%00", "/v1/experiments/%00", "/v1/experiments?project=%ff%fe",
    "/v1/experiments?limit=" + "9" * 500, "/v1/experiments?limit=-1", "/v1/experiments?before=abc",
    "/v1/experiments/" + "9" * 300, "/v1/experiments/-1", "/v1/experiments/1e3", "/v1/experiments/%F0%9F%98%80",
    "/v1/experiments?state=%E2%80%AE", "/v1/tokens/" + "x" * 5000, "/v1/audit?limit=100000",
])
def test_hostile_urls(c: TestClient, url: str) -> None:
    r = c.get(url)
    assert 400 <= r.status_code < 500, (url, r.status_code, r.text)
    assert r.json()["object"] == "error"


def test_unknown_route_and_method_use_the_error_shape(c: TestClient) -> None:
    r = c.get("/v1/nothing-here")
    assert r.status_code == 404 and r.json()["object"] == "error"
    r = c.patch("/v1/experiments")
    assert r.status_code == 405 and r.json()["status"] == 405


def test_request_line_and_header_limits_on_a_real_server(server: object) -> None:
    """414 for an over-long URL, 431 for over-long or too many headers; the server keeps serving."""
    import httpx

    from assay.server.app import MAX_HEADER_BYTES, MAX_HEADER_COUNT, MAX_URL_BYTES

    url = server.url  # type: ignore[attr-defined]
    with httpx.Client(base_url=url) as h:
        r = h.get("/v1/experiments/" + "1" * (MAX_URL_BYTES + 10))
        assert r.status_code == 414 and "URL" in r.json()["message"]
        r = h.get("/v1/experiments", params={"state": "x" * (MAX_URL_BYTES + 10)})
        assert r.status_code == 414
        r = h.get("/v1/experiments", headers={"X-Big": "y" * (MAX_HEADER_BYTES + 10)})
        assert r.status_code == 431 and "x-big" in r.json()["message"]
        r = h.get("/v1/experiments", headers={f"X-H{i}": "1" for i in range(MAX_HEADER_COUNT + 5)})
        assert r.status_code == 431 and r.json()["object"] == "error"
        # just under the limits: served normally (an unknown experiment id is a plain 404)
        assert h.get("/v1/experiments/" + "9" * 2000).status_code == 404
        assert h.get("/v1/experiments", headers={"X-Big": "y" * 4000}).status_code == 200
        assert h.get("/health").status_code == 200


def test_security_headers(c: TestClient, eid: str) -> None:
    """No sniffing, no framing, no caching of API answers; error answers too."""
    for path, api in ((f"/v1/experiments/{eid}", True), ("/v1/experiments/999999", True), ("/login", False),
                      ("/v1/" + "x" * 9000, True)):
        r = c.get(path)
        assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-frame-options"] == "DENY", path
        assert r.headers["referrer-policy"] == "same-origin"
        assert (r.headers.get("cache-control") == "no-store") == api, (path, r.headers.get("cache-control"))
