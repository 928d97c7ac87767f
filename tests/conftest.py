"""Shared fixtures: real SQLite files, real uvicorn servers on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import assay
from tests.forkserver import ForkedProcess, forkserver

# The CLI's Rich consoles read COLUMNS once, when assay.cli is imported, and keep that width; pytest-xdist workers
# start with COLUMNS=80. Tests that need a width set COLUMNS themselves, before the CLI prints.
for _name in ("COLUMNS", "LINES"):
    os.environ.pop(_name, None)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    forkserver.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``assay server`` in a subprocess, on a free loopback port.

    Without ``auth=True`` it runs with ``ASSAY_AUTH=off`` (every caller is team 1's admin).
    With it, ``self.token`` is an admin token of team 1, made before the server starts.
    """

    def __init__(self, home: Path, database_url: str | None = None, extra_env: dict[str, str] | None = None,
                 args: list[str] | None = None, auth: bool = False) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # No prewarm: most test servers never fit a model, and the import is seconds of CPU each.
        self.env = {**os.environ, "ASSAY_HOME": str(home), "ASSAY_AUTH": "on" if auth else "off",
                    "ASSAY_PREWARM": "0", **(extra_env or {})}
        if database_url:
            self.env["ASSAY_DATABASE_URL"] = database_url
        self.auth = auth
        self.token: str | None = None
        if auth:
            from assay.access import Access
            from assay.config import Settings
            from assay.store import Store

            home.mkdir(parents=True, exist_ok=True)
            store = Store(database_url or Settings(home=home).resolved_database_url)
            store.ensure_schema()
            self.token = Access(store).bootstrap()
            store.dispose()
        self.args = args or []
        self.proc: subprocess.Popen | ForkedProcess | None = None
        self.log = home / f"server-{self.port}.log"

    def start(self, timeout: float = 120.0) -> ServerProcess:
        self.home.mkdir(parents=True, exist_ok=True)
        argv = ["server", "--port", str(self.port), *self.args]
        self.proc = forkserver.spawn(argv, self.env, self.log) if forkserver.usable_for(self.env) else None
        if self.proc is None:
            with open(self.log, "ab") as out:
                self.proc = subprocess.Popen([sys.executable, "-m", "assay", *argv], env=self.env, stdout=out,
                                             stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.kill()  # never leave a half-started server behind
        raise RuntimeError(f"server did not start: {self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flush beyond what was committed."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "assay-home"


@pytest.fixture
def server(home: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(home).start()
    yield proc
    proc.stop()


@pytest.fixture
def remote(server: ServerProcess) -> Iterator[assay.Connection]:
    with assay.Connection(server.url, token=server.token) as conn:
        yield conn


@pytest.fixture
def embedded(home: Path) -> Iterator[assay.Connection]:
    with assay.Connection(home=home) as conn:
        yield conn


@pytest.fixture(params=["embedded", "remote"])
def conn(request: pytest.FixtureRequest, home: Path) -> Iterator[assay.Connection]:
    """Each test using this runs twice: embedded and against a real server."""
    if request.param == "embedded":
        with assay.Connection(home=home) as c:
            yield c
    else:
        proc = ServerProcess(home).start()
        try:
            with assay.Connection(proc.url) as c:
                yield c
        finally:
            proc.stop()


BRANIN_PARAMS = [
    {"name": "x1", "type": "double", "bounds": {"min": -5.0, "max": 10.0}},
    {"name": "x2", "type": "double", "bounds": {"min": 0.0, "max": 15.0}},
]


def simple_experiment(**overrides):  # type: ignore[no-untyped-def]
    body = {
        "name": "test",
        "parameters": [
            {"name": "lr", "type": "double", "bounds": {"min": 1e-5, "max": 1e-1}, "transformation": "log"},
            {"name": "layers", "type": "int", "bounds": {"min": 1, "max": 8}},
            {"name": "opt", "type": "categorical", "categorical_values": ["adam", "sgd", "rmsprop"]},
        ],
        "metrics": [{"name": "acc", "objective": "maximize"}],
        "observation_budget": 12,
    }
    body.update(overrides)
    return body


# -- databases: every storage/service test runs on SQLite and on a real PostgreSQL -------------------
class PostgresCluster:
    """A throwaway PostgreSQL cluster (initdb into a temp dir, pg_ctl on a free loopback port).

    PostgreSQL refuses to run as root: as root the cluster runs as the ``postgres`` user.
    ``ASSAY_TEST_POSTGRES_URL`` (a server URL whose user may CREATE DATABASE) is used instead when set.
    """

    def __init__(self) -> None:
        import shutil
        import tempfile

        self.external = os.environ.get("ASSAY_TEST_POSTGRES_URL")
        self.dir: Path | None = None
        self._n = 0
        if self.external:
            self.base = self.external.rsplit("/", 1)[0]
            return
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
                      key=lambda p: [int(x) for x in p.parent.parent.name.split(".") if x.isdigit()])
        pg_ctl = str(bins[-1]) if bins else shutil.which("pg_ctl")
        if not pg_ctl:
            raise FileNotFoundError("no PostgreSQL binaries (pg_ctl, initdb) on this machine")
        self.bin = Path(pg_ctl).parent
        # Memory when there is plenty (a session makes ~90 databases, ~700 MB that a disk is slow to delete).
        shm = "/dev/shm" if Path("/dev/shm").is_dir() and shutil.disk_usage("/dev/shm").free > 4e9 else None
        self.dir = Path(tempfile.mkdtemp(prefix="assay-pg-", dir=shm))
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.port = free_port()
        self.base = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}"

    def start(self) -> PostgresCluster:
        if self.external:
            return self
        assert self.dir is not None  # set in __init__ unless external
        data = self.dir / "data"
        subprocess.run([*self.as_user, str(self.bin / "initdb"), "-D", str(data), "-U", "postgres",
                        "--auth=trust", "-E", "UTF8"], check=True, capture_output=True)
        # Test data is throwaway: no fsync. Enough connections for several server processes.
        opts = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c max_connections=300 "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        subprocess.run([*self.as_user, str(self.bin / "pg_ctl"), "-D", str(data), "-l", str(self.dir / "log"),
                        "-w", "-o", opts, "start"], check=True, capture_output=True)
        return self

    def create_database(self) -> str:
        """A fresh, empty database; returns its SQLAlchemy URL."""
        import uuid

        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        admin = self.base.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return f"{self.base}/{name}"

    def stop(self) -> None:
        if self.external or self.dir is None:
            return
        import shutil

        subprocess.run([*self.as_user, str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate",
                        "-w", "stop"], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """One PostgreSQL cluster for the whole session (skipped only when no PostgreSQL is installed)."""
    try:
        cluster = PostgresCluster().start()
    except FileNotFoundError as exc:
        pytest.skip(f"PostgreSQL tests skipped: {exc}")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs on a fresh SQLite file and on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'assay.db'}"
    return request.getfixturevalue("postgres").create_database()
