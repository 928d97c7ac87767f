"""Organizations above teams, users in several teams with a role each, and who may manage what."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from assay.access import Access
from assay.config import Settings
from assay.server.app import create_app
from assay.store import Store
from tests.conftest import simple_experiment

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


class Caller:
    def __init__(self, c: TestClient, token: str) -> None:
        self.c, self.h = c, {"Authorization": f"Bearer {token}"}

    def __call__(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        return self.c.request(method, path, json=body, headers=self.h, **kw)

    def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        r = self(method, path, body, **kw)
        assert r.status_code < 300, (method, path, r.status_code, r.text)
        return r.json() if r.content else None


@pytest.fixture
def world(tmp_path: Path, database_url: str) -> Iterator[dict[str, Any]]:
    """Org 1: team 1 (plain admin token), team C, an owner user; org B: team B (SQLite and PostgreSQL)."""
    app = create_app(Settings(home=tmp_path, database_url=database_url, auth=True, precompute=False, rate_limit=0))
    with TestClient(app, base_url="http://test") as c:
        acc = Access(app.state.service.store)
        team1_admin = acc.bootstrap()
        assert team1_admin
        team_c, c_admin = acc.create_team("team C")
        acc.operator_add_user(1, "owner@a.example", name="Olga", role="admin", owner=True)
        owner = acc.operator_create_token(1, role="admin", user_email="owner@a.example")
        org_b = acc.create_organization("org B")
        team_b, b_admin = acc.create_team("team B", organization=int(org_b["id"]))
        assert c_admin and b_admin
        yield {"c": c, "acc": acc, "admin1": Caller(c, team1_admin), "adminC": Caller(c, c_admin["token"]),
               "owner": Caller(c, owner["token"]), "adminB": Caller(c, b_admin["token"]),
               "team_c": str(team_c), "team_b": str(team_b), "org_b": org_b["id"]}


def test_owner_manages_every_team_of_its_organization_and_nothing_beyond(world: dict[str, Any]) -> None:
    owner, admin1, team_c, team_b = world["owner"], world["admin1"], world["team_c"], world["team_b"]
    assert owner.ok("GET", "/v1/organizations/1")["name"] == "default"
    assert owner("GET", f"/v1/organizations/{world['org_b']}").status_code == 404
    teams = {t["id"] for t in owner.ok("GET", "/v1/organizations/1/clients")["data"]}
    assert teams == {"1", team_c}
    # a new team, a token for it, data in it
    d = owner.ok("POST", "/v1/organizations/1/clients", {"name": "team D"})
    assert d["organization"] == "1"
    d_write = owner.ok("POST", f"/v1/clients/{d['id']}/tokens", {"role": "write", "name": "ci"})
    assert d_write["client"] == d["id"] and d_write["token"]
    exp = Caller(world["c"], d_write["token"]).ok("POST", "/v1/experiments", simple_experiment(name="in D"))
    assert exp["client"] == d["id"]
    # tokens act inside their own team: not even the owner's token reads team D's experiments directly
    assert owner("GET", f"/v1/experiments/{exp['id']}").status_code == 404
    assert admin1("GET", f"/v1/experiments/{exp['id']}").status_code == 404
    # the owner sees, rotates and revokes team D's tokens; team 1's admin cannot even see them
    assert [t["id"] for t in owner.ok("GET", f"/v1/clients/{d['id']}/tokens")["data"]] == [d_write["id"]]
    assert admin1("GET", f"/v1/tokens/{d_write['id']}").status_code == 404
    assert admin1("DELETE", f"/v1/tokens/{d_write['id']}").status_code == 404
    assert owner.ok("GET", f"/v1/tokens/{d_write['id']}")["client"] == d["id"]
    assert owner("DELETE", f"/v1/tokens/{d_write['id']}").status_code == 204
    assert Caller(world["c"], d_write["token"])("GET", "/v1/experiments").status_code == 401
    assert world["adminB"]("GET", f"/v1/tokens/{d_write['id']}").status_code == 404
    # the owner reads team D's audit log and renames team C; team 1's admin can do neither
    actions = [e["action"] for e in owner.ok("GET", "/v1/audit", params={"client": d["id"]})["data"]]
    assert {"client.create", "token.create", "experiment.create", "token.revoke"} <= set(actions)
    assert admin1("GET", "/v1/audit", params={"client": d["id"]}).status_code == 404
    assert owner.ok("PUT", f"/v1/clients/{team_c}", {"name": "team C2"})["name"] == "team C2"
    assert admin1("PUT", f"/v1/clients/{team_c}", {"name": "x"}).status_code == 404
    # never another organization's teams
    for method, path, body in (("GET", f"/v1/clients/{team_b}", None),
                               ("POST", f"/v1/clients/{team_b}/tokens", {"role": "admin"}),
                               ("GET", f"/v1/clients/{team_b}/users", None),
                               ("GET", "/v1/audit?client=" + team_b, None)):
        assert owner(method, path, body).status_code == 404, path


def test_team_admin_is_not_an_organization_admin(world: dict[str, Any]) -> None:
    admin1, team_c = world["admin1"], world["team_c"]
    assert admin1.ok("GET", "/v1/organizations/1")["id"] == "1"  # its own organization: visible
    assert [t["id"] for t in admin1.ok("GET", "/v1/organizations/1/clients")["data"]] == ["1"]
    assert admin1("POST", "/v1/organizations/1/clients", {"name": "x"}).status_code == 403
    assert admin1("GET", "/v1/organizations/1/memberships").status_code == 403
    assert admin1("PUT", "/v1/organizations/1", {"name": "mine"}).status_code == 403
    assert admin1("POST", f"/v1/clients/{team_c}/tokens", {"role": "admin"}).status_code == 404
    assert admin1("POST", f"/v1/clients/{team_c}/users", {"email": "x@a.example"}).status_code == 404
    # a read token of team 1 manages nothing, even in its own team
    read = Caller(world["c"], admin1.ok("POST", "/v1/tokens", {"role": "read"})["token"])
    assert read("POST", "/v1/clients/1/users", {"email": "y@a.example"}).status_code == 403
    assert read("GET", "/v1/audit").status_code == 403
    assert world["owner"].ok("PUT", "/v1/organizations/1", {"name": "Acme"})["name"] == "Acme"
    members = world["owner"].ok("GET", "/v1/organizations/1/memberships")["data"]
    assert [(m["user"]["email"], m["type"]) for m in members] == [("owner@a.example", "owner")]


def test_user_in_several_teams_with_a_role_each(world: dict[str, Any]) -> None:
    c, owner, admin1, team_c = world["c"], world["owner"], world["admin1"], world["team_c"]
    alice = admin1.ok("POST", "/v1/clients/1/users", {"email": "alice@a.example", "name": "Alice", "role": "write"})
    again = owner.ok("POST", f"/v1/clients/{team_c}/users", {"email": "alice@a.example", "role": "read"})
    assert again["id"] == alice["id"] and again["role"] == "read"
    assert admin1("POST", "/v1/clients/1/users", {"email": "alice@a.example"}).status_code == 409
    perms = owner.ok("GET", f"/v1/users/{alice['id']}/permissions")["data"]
    assert {(p["client"]["id"], p["role"]) for p in perms} == {("1", "write"), (team_c, "read")}
    # team 1's admin sees alice, but only her role in team 1
    assert [p["client"]["id"] for p in admin1.ok("GET", f"/v1/users/{alice['id']}/permissions")["data"]] == ["1"]

    # a token of alice in team C: asked for admin, capped at her role there (read)
    tok = owner.ok("POST", f"/v1/clients/{team_c}/tokens", {"user": alice["id"], "role": "admin"})
    assert tok["user"] == alice["id"]
    a = Caller(c, tok["token"])
    assert a("POST", "/v1/experiments", simple_experiment()).status_code == 403
    assert a.ok("GET", "/v1/experiments")["object"] == "pagination"
    assert a.ok("GET", "/v1/tokens/self")["role"] == "read"  # what the dashboard uses to hide edit controls
    owner.ok("PUT", f"/v1/clients/{team_c}/users/{alice['id']}", {"role": "write"})
    assert a("POST", "/v1/experiments", simple_experiment()).status_code == 200  # at once
    assert a("GET", "/v1/tokens").status_code == 403  # write, not admin
    assert a.ok("PUT", f"/v1/users/{alice['id']}", {"name": "Alice B."})["name"] == "Alice B."

    # out of team C: her token there stops working; she stays in team 1
    owner.ok("DELETE", f"/v1/clients/{team_c}/users/{alice['id']}")
    assert a("GET", "/v1/experiments").status_code == 401
    users = admin1.ok("GET", "/v1/clients/1/users")["data"]
    assert [(u["email"], u["role"], u["name"]) for u in users if u["id"] == alice["id"]] == [
        ("alice@a.example", "write", "Alice B.")]
    # other organizations: cannot see her; may add her to their own team, seeing only that
    b = world["adminB"]
    assert b("GET", f"/v1/users/{alice['id']}").status_code == 404
    in_b = b.ok("POST", f"/v1/clients/{world['team_b']}/users", {"email": "alice@a.example", "role": "read"})
    assert in_b["id"] == alice["id"]
    assert [(p["client"]["id"], p["role"]) for p in b.ok("GET", f"/v1/users/{alice['id']}/permissions")["data"]] \
        == [(world["team_b"], "read")]
    assert [m["organization"]["id"] for m in b.ok("GET", f"/v1/users/{alice['id']}/memberships")["data"]] == [
        world["org_b"]]
    assert b("PUT", f"/v1/users/{alice['id']}", {"name": "Mallory"}).status_code == 403  # she is not only theirs
    assert admin1("PUT", f"/v1/users/{alice['id']}", {"name": "x"}).status_code == 403
    assert {p["client"]["id"] for p in owner.ok("GET", f"/v1/users/{alice['id']}/permissions")["data"]} == {"1"}
    log = [e["action"] for e in owner.ok("GET", "/v1/audit", params={"client": team_c})["data"]]
    assert {"user.add", "user.role", "user.remove"} <= set(log)


def test_user_tokens_only_for_members(world: dict[str, Any]) -> None:
    admin1, adminB = world["admin1"], world["adminB"]
    u = admin1.ok("POST", "/v1/clients/1/users", {"email": "bob@a.example"})
    assert adminB("POST", "/v1/tokens", {"user": u["id"]}).status_code == 404
    assert world["adminC"]("POST", "/v1/tokens", {"user": u["id"]}).status_code == 404  # not in team C
    bob = Caller(world["c"], admin1.ok("POST", "/v1/tokens", {"user": u["id"], "role": "write"})["token"])
    # a user's token may make more tokens for that user (capped by the user's role), not for others
    assert bob.ok("POST", "/v1/tokens", {"user": u["id"], "role": "read"})["role"] == "read"
    assert bob("POST", "/v1/tokens", {"role": "write"}).status_code == 403


def test_upgrade_keeps_users_in_their_teams(database_url: str) -> None:
    """A database from before organizations: teams join organization 1, users keep team and role."""
    from alembic import command

    store = Store(database_url)
    cfg = store._alembic_config()
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0006")
    with store.write() as s:
        s.execute(text("INSERT INTO clients (id, name, created) VALUES (1, 'default', 0), (2, 'two', 0)"))
        s.execute(text("INSERT INTO users (client_id, email, name, role, created, deleted) "
                       "VALUES (2, 'old@a.example', 'Old', 'read', 0, false)"))
    store.upgrade()
    acc = Access(store)
    assert [(t["id"], t["organization_id"]) for t in acc.list_teams()] == [(1, 1), (2, 1)]
    assert [(u["email"], u["role"]) for u in acc.operator_list_users(2)] == [("old@a.example", "read")]
    assert acc.list_organizations()[0]["name"] == "default"
    assert acc.create_organization("next")["id"] == "2"  # ids continue after the default organization
    with store.engine.begin() as conn:  # and back down (the users keep their team and role there too)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0006")
    assert store.current_revision() == "0006"
    store.upgrade()
    assert [(u["email"], u["role"]) for u in acc.operator_list_users(2)] == [("old@a.example", "read")]
    store.dispose()
