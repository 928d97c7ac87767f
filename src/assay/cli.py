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
) -> None:
    """Serve the API v1 and the dashboard."""
    import uvicorn

    from assay.store import Store

    settings = _settings(database_url)
    host = host or settings.host
    port = port or settings.port
    if database_url:
        os.environ["ASSAY_DATABASE_URL"] = database_url
    store = Store(settings.resolved_database_url)
    store.ensure_schema()
    store.dispose()
    console.print(f"assay serving on http://{host}:{port}  (database: {settings.resolved_database_url})")
    uvicorn.run("assay.server.app:create_app", factory=True, host=host, port=port, workers=workers,
                log_level=log_level)


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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
