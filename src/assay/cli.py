"""The ``assay`` command: server, demo, db ..."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console

app = typer.Typer(help="assay: self-hosted Bayesian optimization and experiment tracking.",
                  no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
token_app = typer.Typer(help="API tokens (works on the database directly: run it where the server's data is).",
                        no_args_is_help=True)
app.add_typer(token_app, name="token")
team_app = typer.Typer(help="Teams (SigOpt's clients); each has its own experiments, runs and tokens.",
                       no_args_is_help=True)
app.add_typer(team_app, name="team")
org_app = typer.Typer(help="Organizations: above teams; their owners manage every team in them.",
                      no_args_is_help=True)
app.add_typer(org_app, name="org")
user_app = typer.Typer(help="Users: members of teams, a role in each.", no_args_is_help=True)
app.add_typer(user_app, name="user")
console = Console()


def _settings(database_url: str | None = None, home: Path | None = None):  # type: ignore[no-untyped-def]
    from assay.config import Settings

    kwargs: dict = {}
    if database_url:
        kwargs["database_url"] = database_url
    if home:
        kwargs["home"] = home
    return Settings(**kwargs)


@app.command()
def server(
    host: str = typer.Option(None, help="Address to bind (default ASSAY_HOST or 127.0.0.1)."),
    port: int = typer.Option(None, help="Port (default ASSAY_PORT or 8080)."),
    database_url: str = typer.Option(None, help="SQLAlchemy URL (default ASSAY_DATABASE_URL or SQLite in ASSAY_HOME)."),
    workers: int = typer.Option(1, help="Server processes sharing the database."),
    log_level: str = typer.Option("warning", help="uvicorn log level."),
    no_auth: bool = typer.Option(False, "--no-auth", help="Serve without API tokens (loopback only)."),
    insecure_no_auth: bool = typer.Option(
        False, "--insecure-no-auth", help="Serve without API tokens even on an address beyond loopback."),
) -> None:
    """Serve the API v1 and the dashboard (API tokens required unless --no-auth / ASSAY_AUTH=off)."""
    import uvicorn

    from assay.store import Store

    settings = _settings(database_url)
    host = host or settings.host
    port = port or settings.port
    if database_url:
        os.environ["ASSAY_DATABASE_URL"] = database_url
    insecure = insecure_no_auth or settings.insecure_no_auth
    auth = not (no_auth or insecure_no_auth) and settings.auth is not False
    if not auth and not _is_loopback(host) and not insecure:
        console.print(f"[red]refusing to serve {host} without authentication[/red]: anyone who can reach it could "
                      "read and change every experiment. Drop --no-auth / ASSAY_AUTH=off, or pass "
                      "--insecure-no-auth (ASSAY_INSECURE_NO_AUTH=1) if something in front of assay checks callers.")
        raise typer.Exit(2)
    os.environ["ASSAY_AUTH"] = "on" if auth else "off"
    os.environ["ASSAY_WORKERS"] = str(max(1, workers))  # each process takes its share of the rate limit
    os.environ.setdefault("ASSAY_FREEZE_HEAP", "1")  # server processes: startup heap out of GC (tail latency)
    store = Store(settings.resolved_database_url)
    store.ensure_schema()
    if auth:
        from assay.access import Access

        secret = Access(store).bootstrap()
        if secret:
            console.print("First start: created an admin API token for team 1. It is shown only this once; "
                          "store it now (e.g. in ASSAY_TOKEN):")
            console.print(f"  {secret}", highlight=False, soft_wrap=True)
    store.dispose()
    console.print(f"assay serving on http://{host}:{port}  (database: {settings.resolved_database_url}; "
                  f"auth: {'API tokens' if auth else 'OFF'})")
    uvicorn.run("assay.server.app:create_app", factory=True, host=host, port=port, workers=workers,
                log_level=log_level)


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _access(database_url: str | None):  # type: ignore[no-untyped-def]
    from assay.access import Access
    from assay.store import Store

    store = Store(_settings(database_url).resolved_database_url)
    store.ensure_schema()
    return Access(store)


def _duration(text: str | None) -> int | None:
    if not text:
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
    try:
        if text[-1] in units:
            return int(float(text[:-1]) * units[text[-1]])
        return int(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r}: use seconds or a number with s/m/h/d/w/y, like 30d") from None


def _fail(exc: Exception) -> None:
    console.print(f"[red]{exc}[/red]")
    raise typer.Exit(1)


_DB_OPT = typer.Option(None, "--database-url", help="SQLAlchemy URL (default ASSAY_DATABASE_URL or ASSAY_HOME).")


@token_app.command("create")
def token_create(
    team: int = typer.Option(1, help="Team (client) id."),
    role: str = typer.Option("write", help="admin | write | read."),
    name: str = typer.Option(None, help="A label shown in listings and the audit log."),
    development: bool = typer.Option(False, "--development", help="Development token: random suggestions."),
    experiment: int = typer.Option(None, help="Read-only share token for this experiment."),
    training_run: int = typer.Option(None, "--run", help="Read-only share token for this training run."),
    user: str = typer.Option(None, help="The token belongs to this user (email): it acts with at most the "
                                         "user's role in the team and stops when the user leaves it."),
    expires_in: str = typer.Option(None, help="Lifetime like 90d or 12h (share tokens default to 30d)."),
    database_url: str = _DB_OPT,
) -> None:
    """Create a token and print its secret (shown only once)."""
    from assay.errors import AssayError

    try:
        t = _access(database_url).operator_create_token(team, role=role, name=name, development=development,
                                                        experiment=experiment, training_run=training_run,
                                                        lifetime=_duration(expires_in), user_email=user)
    except AssayError as exc:
        _fail(exc)
        return
    console.print(f"token {t['id']} ({t['kind']}, {t['role']}, team {t['client']}); secret, shown only once:")
    print(t["token"])


@token_app.command("list")
def token_list(team: int = typer.Option(None, help="Only this team."),
               all_: bool = typer.Option(False, "--all", help="Include revoked tokens."),
               database_url: str = _DB_OPT) -> None:
    """List tokens (never their secrets)."""
    import datetime as dt

    from rich.table import Table

    def when(v: int | None) -> str:
        return dt.datetime.fromtimestamp(v, dt.UTC).strftime("%Y-%m-%d %H:%M") if v else "-"

    table = Table("id", "team", "prefix", "kind", "role", "name", "object", "created", "expires", "last used",
                  "revoked")
    for t in _access(database_url).operator_list_tokens(team, include_revoked=all_):
        obj = f"experiment {t['experiment']}" if t["experiment"] else (
            f"run {t['training_run']}" if t["training_run"] else "")
        table.add_row(t["id"], t["client"], t["prefix"] + "…", t["kind"], t["role"], t["name"] or "", obj,
                      when(t["created"]), when(t["expires"]), when(t["last_used"]), when(t["revoked"]))
    console.print(table)


@token_app.command("revoke")
def token_revoke(token_id: int = typer.Argument(..., help="Token id (from `assay token list`)."),
                 database_url: str = _DB_OPT) -> None:
    """Revoke a token: it stops working at once."""
    if not _access(database_url).operator_revoke(token_id):
        _fail(Exception(f"token {token_id} does not exist"))
    console.print(f"token {token_id} revoked")


@team_app.command("create")
def team_create(name: str = typer.Argument(...), org: int = typer.Option(1, help="Organization id."),
                database_url: str = _DB_OPT) -> None:
    """Create a team and print its first admin token (shown only once)."""
    from assay.errors import AssayError

    try:
        cid, t = _access(database_url).create_team(name, organization=org)
    except AssayError as exc:
        _fail(exc)
        return
    assert t is not None
    console.print(f"team {cid} created in organization {org}; admin token {t['id']}, shown only once:")
    print(t["token"])


@team_app.command("list")
def team_list(org: int = typer.Option(None, help="Only this organization."), database_url: str = _DB_OPT) -> None:
    """List teams."""
    for c in _access(database_url).list_teams(org):
        console.print(f"{c['id']}\t{c['name']}\torganization {c['organization_id']}", highlight=False)


@org_app.command("create")
def org_create(name: str = typer.Argument(...), team: str = typer.Option(None, help="Name of its first team."),
               owner: str = typer.Option(None, help="Email of its first owner (created if new); prints the "
                                                     "owner's admin token instead of a team token."),
               database_url: str = _DB_OPT) -> None:
    """Create an organization with a first team, and print an admin token for it (shown only once)."""
    from assay.errors import AssayError

    acc = _access(database_url)
    try:
        org = acc.create_organization(name)
        cid, t = acc.create_team(team or name, organization=int(org["id"]), token=not owner)
        if owner:
            acc.operator_add_user(cid, owner, role="admin", owner=True)
            t = acc.operator_create_token(cid, role="admin", name=f"{owner} (owner)", user_email=owner)
    except AssayError as exc:
        _fail(exc)
        return
    assert t is not None
    console.print(f"organization {org['id']} created with team {cid}; admin token {t['id']}"
                  f"{' of owner ' + owner if owner else ''}, shown only once:")
    print(t["token"])


@org_app.command("list")
def org_list(database_url: str = _DB_OPT) -> None:
    """List organizations."""
    for o in _access(database_url).list_organizations():
        console.print(f"{o['id']}\t{o['name']}", highlight=False)


@user_app.command("add")
def user_add(email: str = typer.Argument(...), team: int = typer.Option(1, help="Team (client) id."),
             role: str = typer.Option("write", help="admin | write | read (in this team)."),
             name: str = typer.Option(None), owner: bool = typer.Option(False, "--owner",
                                                                       help="Also an owner of the organization."),
             database_url: str = _DB_OPT) -> None:
    """Add a user to a team (creating the user if new), or change its role there."""
    from assay.errors import AssayError

    try:
        u = _access(database_url).operator_add_user(team, email, name=name, role=role, owner=owner)
    except AssayError as exc:
        _fail(exc)
        return
    console.print(f"user {u['id']} ({email}) is {role} in team {team}{' and an organization owner' if owner else ''}"
                  f"; give them a token: assay token create --team {team} --user {email}", highlight=False)


@user_app.command("list")
def user_list(team: int = typer.Option(1, help="Team (client) id."), database_url: str = _DB_OPT) -> None:
    """List a team's users and their roles."""
    for u in _access(database_url).operator_list_users(team):
        console.print(f"{u['id']}\t{u['email']}\t{u['name'] or ''}\t{u['role']}", highlight=False)


@user_app.command("remove")
def user_remove(email: str = typer.Argument(...), team: int = typer.Option(1, help="Team (client) id."),
                database_url: str = _DB_OPT) -> None:
    """Take a user out of a team; the user's tokens in that team are revoked."""
    if not _access(database_url).operator_remove_user(team, email):
        _fail(Exception(f"{email} is not a member of team {team}"))
    console.print(f"{email} removed from team {team}", highlight=False)


@app.command()
def audit(team: int = typer.Option(1, help="Team (client) id."), limit: int = typer.Option(50),
          action: str = typer.Option(None, help="Only this action (experiment.delete) or prefix (token.)."),
          object_type: str = typer.Option(None, "--object", help="Only this kind of object (experiment, token ...)."),
          object_id: str = typer.Option(None, "--id", help="Only this object id."),
          database_url: str = _DB_OPT) -> None:
    """Show who changed what (newest first)."""
    import datetime as dt

    from rich.table import Table

    from assay.access import Principal

    page = _access(database_url).audit_log(Principal(client_id=team), limit=limit, action=action,
                                           object_type=object_type, object_id=object_id)
    table = Table("when (UTC)", "who", "action", "object", "details")
    for e in page["data"]:
        when = dt.datetime.fromtimestamp(e["created"], dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(when, e["actor"], e["action"], f"{e['object_type']} {e['object_id'] or ''}",
                      "" if e["details"] is None else str(e["details"]))
    console.print(table)


@db_app.command("upgrade")
def db_upgrade(database_url: str = typer.Option(None, help="SQLAlchemy URL.")) -> None:
    """Migrate the database schema to this version of assay."""
    from assay.store import Store

    store = Store(_settings(database_url).resolved_database_url)
    before = store.current_revision()
    store.upgrade()
    console.print(f"schema: {before or 'empty'} -> {store.current_revision()}")


@app.command()
def demo(
    evaluations: int = typer.Option(25, help="Model trainings to spend."),
    home: Path = typer.Option(None, help="Data folder (default ASSAY_HOME or ~/.assay)."),
) -> None:
    """Tune an SVM on scikit-learn's digits data with the embedded database."""
    from assay.demo import run_demo

    run_demo(evaluations, home, console)


@app.command()
def version() -> None:
    """Print the version."""
    from assay import __version__

    console.print(__version__)


def _register_workflow() -> None:
    from assay.cli_runs import register

    register(app)


_register_workflow()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
