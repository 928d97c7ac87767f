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
        self.env = {**os.environ, "ASSAY_HOME": str(home), "ASSAY_AUTH": "on" if auth else "off",
                    **(extra_env or {})}
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
        self.proc: subprocess.Popen | None = None
        self.log = home / f"server-{self.port}.log"

    def start(self, timeout: float = 60.0) -> ServerProcess:
        self.home.mkdir(parents=True, exist_ok=True)
        out = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "assay", "server", "--port", str(self.port), *self.args],
            env=self.env, stdout=out, stderr=subprocess.STDOUT)
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
