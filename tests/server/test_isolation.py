"""Team isolation over every route of the app: team A can neither read, change nor detect team B's objects.

Routes are enumerated from ``app.routes``, so routes added later are covered automatically. A route
with a path parameter this test does not know fails the test with the fix: add a factory that
makes team B's object of that kind to ``FACTORIES``.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.routing import Mount, Route

from assay.access import Access
from assay.config import Settings
from assay.server.app import create_app
from tests.conftest import simple_experiment

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

SECRET = "team-b-secret-7f3a"
MISSING = "987654"  # an id no object has


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Team:
    def __init__(self, c: TestClient, token: str, client_id: str, marker: str) -> None:
        self.c, self.token, self.client_id, self.marker = c, token, client_id, marker
        self.ids: dict[str, str] = {"client_id": client_id}

    def req(self, method: str, path: str, **kw: Any) -> Any:
        r = self.c.request(method, path, headers=bearer(self.token), **kw)
        assert r.status_code < 300, (method, path, r.status_code, r.text)
        return r.json() if r.content else None


def _experiment_objects(t: Team) -> None:
    e = t.req("POST", "/v1/experiments", json=simple_experiment(name=t.marker, metadata={"k": t.marker}))
    t.ids["experiment_id"] = e["id"]
    s1 = t.req("POST", f"/v1/experiments/{e['id']}/suggestions", json={"metadata": {"k": t.marker}})
    t.req("POST", f"/v1/experiments/{e['id']}/suggestions")
    t.ids["suggestion_id"] = s1["id"]
    o = t.req("POST", f"/v1/experiments/{e['id']}/observations",
              json={"suggestion": s1["id"], "values": [{"value": 0.25}], "metadata": {"k": t.marker}})
    t.ids["observation_id"] = o["id"]
    q = t.req("POST", f"/v1/experiments/{e['id']}/queued_suggestions",
              json={"assignments": {"lr": 0.01, "layers": 2, "opt": "sgd"}})
    t.ids["queued_id"] = q["id"]


def _token(t: Team) -> None:
    t.ids["token_id"] = t.req("POST", "/v1/tokens", json={"role": "read", "name": t.marker})["id"]


def _user(t: Team) -> None:
    t.ids["user_id"] = t.req("POST", f"/v1/clients/{t.client_id}/users",
                             json={"email": f"{t.marker}@b.example", "name": t.marker})["id"]


def _project(t: Team) -> None:
    if "project" not in t.ids:
        ref = f"proj-c{t.client_id}"  # echoed in 404 messages: must not carry the marker
        t.ids["project"] = t.req("POST", f"/v1/clients/{t.client_id}/projects",
                                 json={"id": ref, "name": t.marker, "metadata": {"k": t.marker}})["id"]


def _run_objects(t: Team) -> None:
    """A training run with a checkpoint and an uploaded file."""
    if "run_id" in t.ids:
        return
    _project(t)
    run = t.req("POST", f"/v1/clients/{t.client_id}/projects/{t.ids['project']}/training_runs",
                json={"name": t.marker, "metadata": {"k": t.marker}})
    t.ids["run_id"] = run["id"]
    cp = t.req("POST", f"/v1/training_runs/{run['id']}/checkpoints",
               json={"values": [{"name": "acc", "value": 0.5}], "metadata": {"k": t.marker}})
    t.ids["checkpoint_id"] = cp["id"]
    data = t.marker.encode()
    f = t.req("POST", f"/v1/training_runs/{run['id']}/files",
              json={"content_length": len(data), "name": t.marker, "filename": "notes.txt",
                    "content_type": "text/plain"})
    t.ids["file_id"] = f["id"]
    up = f["upload"]
    r = t.c.put(up["url"].replace("http://test", ""), content=data, headers=up["headers"])
    assert r.status_code == 200, r.text


def _tag(t: Team) -> None:
    """A tag (named with the team's marker) attached to the team's run."""
    _run_objects(t)
    tag = t.req("POST", f"/v1/clients/{t.client_id}/tags", json={"name": t.marker, "color": "#123456"})
    t.ids["tag_id"] = tag["id"]
    t.req("POST", f"/v1/training_runs/{t.ids['run_id']}/tags", json={"id": tag["id"]})


# the same for every caller by design (static assets of the dashboard)
PUBLIC_ROUTES = {"/dashboard/static/{name}"}

# path parameter name -> factory making team B's object and storing its id under that name
FACTORIES: dict[str, Callable[[Team], object]] = {
    "experiment_id": _experiment_objects, "suggestion_id": _experiment_objects,
    "observation_id": _experiment_objects, "queued_id": _experiment_objects,
    "token_id": _token, "client_id": lambda t: None, "user_id": _user, "organization_id": lambda t: None,
    "name": lambda t: t.ids.setdefault("name", "app.js"),  # dashboard static assets: public, no team
    "project": _run_objects, "run_id": _run_objects, "checkpoint_id": _run_objects, "file_id": _run_objects,
    "tag_id": _tag,
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home: Path = tmp_path_factory.mktemp("iso")
    app = create_app(Settings(home=home, auth=True, precompute=False, rate_limit=0))
    with TestClient(app, base_url="http://test") as c:
        acc = Access(app.state.service.store)
        a_token = acc.bootstrap()
        assert a_token
        b_org = acc.create_organization("org B")  # another organization: its ids must not show either
        b_client, b_admin = acc.create_team("team B", organization=int(b_org["id"]))
        assert b_admin is not None
        a = Team(c, a_token, "1", "team-a-own")
        b = Team(c, b_admin["token"], str(b_client), SECRET)
        a.ids["organization_id"], b.ids["organization_id"] = "1", b_org["id"]
        params = {p for _, path in app_routes(app) for p in re.findall(r"{(\w+)", path)}
        unknown = params - set(FACTORIES)
        assert not unknown, (f"routes have path parameters {sorted(unknown)} this test cannot fill: add a factory "
                             "making team B's object to FACTORIES in tests/server/test_isolation.py")
        done: set[Callable[[Team], object]] = set()
        for name in sorted(params):
            f = FACTORIES[name]
            if f not in done:
                f(b)
                f(a)  # team A has its own objects of every kind too
                done.add(f)
        yield {"app": app, "c": c, "a": a, "b": b, "params": params}


def app_routes(app: Any) -> list[tuple[str, str]]:
    """Every (method, path) the app serves, through included routers (FastAPI's own walk when it has one)."""
    out: list[tuple[str, str]] = []

    def walk(routes: Any) -> None:
        for r in routes:
            if hasattr(r, "effective_route_contexts"):  # FastAPI >= 0.16x: included routers stay nested
                for ctx in r.effective_route_contexts():
                    for m in sorted((getattr(ctx.original_route, "methods", None) or {"GET"}) - {"HEAD"}):
                        out.append((m, ctx.path))
            elif isinstance(r, Route):
                for m in sorted((r.methods or {"GET"}) - {"HEAD"}):
                    out.append((m, r.path))
            elif hasattr(r, "routes") and not isinstance(r, Mount):
                walk(r.routes)

    walk(app.routes)
    return sorted(set(out))


def _fill(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"{(\w+)(:[^}]*)?}", lambda m: ids[m.group(1)], path)


def test_every_route_hides_team_b(world: dict[str, Any]) -> None:
    app, c, a, b = world["app"], world["c"], world["a"], world["b"]
    checked = 0
    for method, path in app_routes(app):
        if "{" not in path or path in PUBLIC_ROUTES:
            continue
        b_path = _fill(path, b.ids)
        missing_path = _fill(path, {k: MISSING for k in b.ids})
        bodies: tuple[dict[str, Any] | None, ...] = ({}, None)
        for body in bodies:
            r_b = c.request(method, b_path, json=body, headers=bearer(a.token))
            r_missing = c.request(method, missing_path, json=body, headers=bearer(a.token))
            assert r_b.status_code < 500, (method, b_path, r_b.text)
            # same answer as for an object that does not exist: nothing confirms B's object is there
            assert r_b.status_code == r_missing.status_code, (method, path, r_b.text, r_missing.text)
            # dashboard pages are data-free HTML shells (the same for any id; data comes from the API)
            shell = r_b.status_code == 200 and method == "GET" and r_b.headers.get("content-type", "").startswith(
                "text/html")
            assert shell or r_b.status_code in (401, 403, 404, 405, 422), (method, b_path, r_b.status_code,
                                                                            r_b.text[:300])
            assert SECRET not in r_b.text, (method, b_path, r_b.text)
        # with a body the route accepts, the answer is 404 (or 403 for what team A may not do at all)
        checked += 1
    assert checked >= 20


def test_lists_and_searches_never_show_team_b(world: dict[str, Any]) -> None:
    app, c, a = world["app"], world["c"], world["a"]
    for method, path in app_routes(app):
        if method != "GET":
            continue
        p = _fill(path, a.ids)
        r = c.get(p, headers=bearer(a.token), params={"state": "all"} if path == "/v1/experiments" else None)
        assert r.status_code < 500, (p, r.text)
        assert SECRET not in r.text, (p, r.text)


def test_team_b_objects_unchanged_and_usable(world: dict[str, Any]) -> None:
    b = world["b"]
    e = b.req("GET", f"/v1/experiments/{b.ids['experiment_id']}")
    assert e["name"] == SECRET and e["state"] == "active"
    assert e["progress"]["observation_count"] == 1
    assert b.req("GET", f"/v1/experiments/{b.ids['experiment_id']}/suggestions/{b.ids['suggestion_id']}")
    assert len(b.req("GET", f"/v1/experiments/{b.ids['experiment_id']}/queued_suggestions")["data"]) == 1
    assert b.req("GET", f"/v1/tokens/{b.ids['token_id']}")["revoked"] is None
    assert b.req("GET", f"/v1/experiments/{b.ids['experiment_id']}/observations")["count"] == 1


def test_wrong_client_in_path_is_404(world: dict[str, Any]) -> None:
    c, a, b = world["c"], world["a"], world["b"]
    for path in (f"/v1/clients/{b.client_id}/experiments", f"/v1/clients/{b.client_id}",
                 f"/v1/clients/{b.client_id}/users"):
        assert c.get(path, headers=bearer(a.token)).status_code == 404
    r = c.post(f"/v1/clients/{b.client_id}/experiments", json=simple_experiment(), headers=bearer(a.token))
    assert r.status_code == 404
    own = c.get(f"/v1/clients/{a.client_id}/experiments", headers=bearer(a.token)).json()
    assert own["count"] >= 1 and all(x["client"] == a.client_id for x in own["data"])


def test_share_token_of_team_a_reads_nothing_of_team_b(world: dict[str, Any]) -> None:
    c, a, b = world["c"], world["a"], world["b"]
    share = a.req("POST", f"/v1/experiments/{a.ids['experiment_id']}/tokens")["token"]
    for path in (f"/v1/experiments/{b.ids['experiment_id']}",
                 f"/v1/experiments/{b.ids['experiment_id']}/observations"):
        assert c.get(path, headers=bearer(share)).status_code == 404
    # team A cannot mint a share token for team B's experiment either
    r = c.post("/v1/tokens", json={"experiment": b.ids["experiment_id"]}, headers=bearer(a.token))
    assert r.status_code == 404
    r = c.post(f"/v1/experiments/{b.ids['experiment_id']}/tokens", headers=bearer(a.token))
    assert r.status_code == 404


def test_share_token_for_a_training_run(world: dict[str, Any]) -> None:
    c, a, b = world["c"], world["a"], world["b"]
    share = a.req("POST", "/v1/tokens", json={"training_run": a.ids["run_id"]})
    assert share["training_run"] == a.ids["run_id"] and share["role"] == "read"
    h = bearer(share["token"])
    assert c.get(f"/v1/training_runs/{a.ids['run_id']}", headers=h).status_code == 200
    assert c.get(f"/v1/training_runs/{a.ids['run_id']}/checkpoints", headers=h).status_code == 200
    assert c.get(f"/v1/training_runs/{b.ids['run_id']}", headers=h).status_code == 404
    assert c.get(f"/v1/files/{a.ids['file_id']}", headers=h).status_code == 404  # only the run's own paths
    assert c.put(f"/v1/training_runs/{a.ids['run_id']}", json={"name": "x"}, headers=h).status_code in (403, 404)
    r = c.post("/v1/tokens", json={"training_run": b.ids["run_id"]}, headers=bearer(a.token))
    assert r.status_code == 404
