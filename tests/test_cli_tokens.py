"""`assay token create/list/revoke`, `assay team create`, `assay audit` against a real database."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assay.cli import app
from assay.config import Settings
from assay.server.app import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


@pytest.fixture
def cli(home: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("ASSAY_HOME", str(home))
    monkeypatch.setenv("COLUMNS", "250")
    return CliRunner()


def secret_of(output: str) -> str:
    return next(w for w in output.split() if w.startswith("assay_"))


def test_token_lifecycle(cli: CliRunner, home: Path) -> None:
    out = cli.invoke(app, ["token", "create", "--role", "read", "--name", "dashboard viewer"])
    assert out.exit_code == 0, out.output
    secret = secret_of(out.output)
    listed = cli.invoke(app, ["token", "list"])
    assert listed.exit_code == 0 and "dashboard viewer" in listed.output and "read" in listed.output
    assert secret not in listed.output and secret[:12] in listed.output  # only the prefix, never the secret

    with TestClient(create_app(Settings(home=home, auth=True, precompute=False)), base_url="http://t") as c:
        h = {"Authorization": f"Bearer {secret}"}
        assert c.get("/v1/experiments", headers=h).status_code == 200
        assert c.post("/v1/experiments", json={}, headers=h).status_code == 403
        token_id = c.get("/v1/tokens/self", headers=h).json()["id"]
        out = cli.invoke(app, ["token", "revoke", token_id])
        assert out.exit_code == 0 and "revoked" in out.output
        assert c.get("/v1/experiments", headers=h).status_code == 401
    assert "dashboard viewer" not in cli.invoke(app, ["token", "list"]).output
    assert "dashboard viewer" in cli.invoke(app, ["token", "list", "--all"]).output
    assert cli.invoke(app, ["token", "revoke", "999"]).exit_code == 1


def test_team_create_and_audit(cli: CliRunner, home: Path) -> None:
    out = cli.invoke(app, ["team", "create", "vision"])
    assert out.exit_code == 0, out.output
    secret = secret_of(out.output)
    assert "vision" in cli.invoke(app, ["team", "list"]).output
    with TestClient(create_app(Settings(home=home, auth=True, precompute=False)), base_url="http://t") as c:
        me = c.get("/v1/tokens/self", headers={"Authorization": f"Bearer {secret}"}).json()
        assert me["role"] == "admin" and me["client"] != "1"
        team = me["client"]
    audit = cli.invoke(app, ["audit", "--team", team])
    assert audit.exit_code == 0 and "client.create" in audit.output and "token.create" in audit.output
    dev = cli.invoke(app, ["token", "create", "--team", team, "--development", "--expires-in", "2d"])
    assert dev.exit_code == 0 and "development" in dev.output
    assert cli.invoke(app, ["token", "create", "--team", "424242"]).exit_code == 1
    assert cli.invoke(app, ["token", "create", "--expires-in", "soon"]).exit_code != 0


def test_org_user_commands(cli: CliRunner, home: Path) -> None:
    out = cli.invoke(app, ["org", "create", "Acme", "--team", "acme research", "--owner", "boss@acme.example"])
    assert out.exit_code == 0, out.output
    owner = secret_of(out.output)
    assert "Acme" in cli.invoke(app, ["org", "list"]).output
    teams = cli.invoke(app, ["team", "list", "--org", "2"]).output
    assert "acme research" in teams and "default" not in teams
    team = teams.split()[0]
    out = cli.invoke(app, ["user", "add", "dev@acme.example", "--team", team, "--role", "read", "--name", "Dev"])
    assert out.exit_code == 0, out.output
    assert cli.invoke(app, ["team", "create", "second", "--org", "2"]).exit_code == 0
    assert cli.invoke(app, ["team", "create", "nowhere", "--org", "77"]).exit_code == 1
    listed = cli.invoke(app, ["user", "list", "--team", team]).output
    assert "dev@acme.example" in listed and "boss@acme.example" in listed and "read" in listed
    tok = cli.invoke(app, ["token", "create", "--team", team, "--user", "dev@acme.example", "--role", "write"])
    assert tok.exit_code == 0, tok.output
    dev = secret_of(tok.output)
    with TestClient(create_app(Settings(home=home, auth=True, precompute=False)), base_url="http://t") as c:
        h_owner, h_dev = ({"Authorization": f"Bearer {t}"} for t in (owner, dev))
        assert {t["name"] for t in c.get("/v1/organizations/2/clients", headers=h_owner).json()["data"]} == {
            "acme research", "second"}
        assert c.get("/v1/organizations/1", headers=h_owner).status_code == 404
        assert c.post("/v1/experiments", json={}, headers=h_dev).status_code == 403  # capped at read
        assert c.get("/v1/experiments", headers=h_dev).status_code == 200
        assert cli.invoke(app, ["user", "remove", "dev@acme.example", "--team", team]).exit_code == 0
        assert c.get("/v1/experiments", headers=h_dev).status_code == 401
    assert cli.invoke(app, ["user", "remove", "dev@acme.example", "--team", team]).exit_code == 1
    assert "user.remove" in cli.invoke(app, ["audit", "--team", team]).output
    only = cli.invoke(app, ["audit", "--team", team, "--action", "user."]).output
    assert "user.remove" in only and "user.add" in only and "token.create" not in only
