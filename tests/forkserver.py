"""Start ``python -m assay ...`` processes fast: fork them from a process that has already imported the stack.

A fresh interpreter spends ~3 s importing FastAPI, SQLAlchemy, Typer and assay before ``assay server`` can
listen; the suite starts about fifty servers. The fork server is one long-lived child of the test session
that imports those modules once (never torch; it opens only a throwaway database, and closes it), then forks on request.
Each forked child sets its own environment, working directory and log file and runs the real CLI entry
point, so the server under test is the same program as ``python -m assay server``: only the imports are
shared. ``ASSAY_TEST_FORKSERVER=0`` (or a platform without ``fork``) starts plain subprocesses instead.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

# Runs in the fork server: read {"argv", "env", "cwd", "log"} lines, fork, answer {"pid"} lines.
_SERVE = r"""
import json, os, signal, sys
import assay.cli, assay.server.app, uvicorn, httpx  # the slow imports, done once
try:
    import psycopg  # noqa: F401
except ImportError:
    pass
from assay.config import Settings
from assay.store import Store
assay.server.app.create_app(Settings(precompute=False))  # imports the route modules; starts nothing
import shutil, tempfile
_tmp = tempfile.mkdtemp(prefix="assay-forkserver-")
_store = Store(f"sqlite:///{_tmp}/warm.db")  # a throwaway database: imports alembic and the migrations
_store.ensure_schema()
_store.dispose()
shutil.rmtree(_tmp)
del _store
sys.stdout.write("ready\n")
sys.stdout.flush()
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps finished children
for line in sys.stdin:
    req = json.loads(line)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            log = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(log, 1)
            os.dup2(log, 2)
            os.environ.clear()
            os.environ.update(req["env"])
            os.chdir(req["cwd"])
            sys.argv = ["assay", *req["argv"]]
            try:
                assay.cli.main()
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            import traceback
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    sys.stdout.write(json.dumps({"pid": pid}) + "\n")
    sys.stdout.flush()
"""


class ForkedProcess:
    """The part of :class:`subprocess.Popen` the tests use, for a process that is not our child.

    The exit status is not ours to collect (the fork server's kernel reaps it): ``returncode`` is -1 once
    the process is gone.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                self.returncode = -1
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(["assay"], timeout or 0)
            time.sleep(0.02)
        return -1

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ForkServer:
    """One fork server per test session, started on first use."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None
        self._env: dict[str, str] = {}
        self._lock = threading.Lock()
        self._broken = False

    def usable_for(self, env: dict[str, str]) -> bool:
        """Whether a child with ``env`` imports the same code as the fork server did."""
        if os.environ.get("ASSAY_TEST_FORKSERVER", "1") == "0" or not hasattr(os, "fork"):
            return False
        return self._proc is None or env.get("PYTHONPATH") == self._env.get("PYTHONPATH")

    def spawn(self, argv: list[str], env: dict[str, str], log: Path, cwd: str | None = None) -> ForkedProcess | None:
        """Fork ``python -m assay *argv``; None if the fork server is unusable (then start a subprocess)."""
        with self._lock:
            if self._broken:
                return None
            try:
                if self._proc is None:
                    self._env = dict(env)
                    self._proc = subprocess.Popen([sys.executable, "-c", _SERVE], env=self._env, text=True,
                                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE)
                    assert self._proc.stdout is not None
                    if self._proc.stdout.readline().strip() != "ready":
                        raise RuntimeError("the fork server did not start")
                assert self._proc.stdin is not None and self._proc.stdout is not None
                req: dict[str, Any] = {"argv": argv, "env": env, "cwd": cwd or os.getcwd(), "log": str(log)}
                self._proc.stdin.write(json.dumps(req) + "\n")
                self._proc.stdin.flush()
                return ForkedProcess(json.loads(self._proc.stdout.readline())["pid"])
            except (OSError, ValueError, RuntimeError) as exc:
                sys.stderr.write(f"tests/forkserver.py: falling back to subprocesses ({exc})\n")
                self._broken = True
                if self._proc is not None:
                    self._proc.kill()
                return None

    def close(self) -> None:
        with self._lock:
            if self._proc is not None:
                assert self._proc.stdin is not None
                self._proc.stdin.close()
                try:
                    self._proc.wait(10)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                self._proc = None


forkserver = ForkServer()
