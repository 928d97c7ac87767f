"""Engines, transactions and the schema check."""

from __future__ import annotations

import collections
import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from assay.errors import AssayError

try:
    import fcntl
except ImportError:  # (Windows: SQLite's busy handler alone orders writers of several processes)
    fcntl = None  # type: ignore[assignment]

__all__ = ["Store", "SchemaOutOfDate"]

_MIGRATIONS = Path(__file__).with_name("migrations")


class SchemaOutOfDate(AssayError):
    status = 503


# Any constant: PostgreSQL advisory lock taken while the schema is checked or migrated.
_SCHEMA_LOCK = 0x61737361


def _set_wal(cur: sqlite3.Cursor, deadline: float = 60.0) -> None:
    """Switch to WAL (persistent; a no-op once done). Switching needs an exclusive lock and SQLite
    answers "database is locked" at once, without its busy handler, when other connections open the
    same new file at that moment (several servers starting together): retry until the deadline."""
    give_up = time.monotonic() + deadline
    delay = 0.005
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > give_up:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def _sqlite_engine(url: str, immediate: bool, pool_size: int) -> Engine:
    # SQLite connections are cheap; writers queue on the database lock (busy_timeout), not on the pool.
    engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False},
                           pool_size=pool_size, max_overflow=64, pool_timeout=120)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        _set_wal(cur)
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # type: ignore[no-untyped-def]
        # Writers take the lock up front so two writers never deadlock upgrading a read lock.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class _ProcessLock:
    """An advisory lock file (``flock``) that a SQLite database's writers in different processes take
    turns on. The kernel wakes a waiter the moment the holder lets go, whereas SQLite's busy handler
    sleeps and retries (up to 100 ms a try), which gave servers of several processes write p99s of
    0.6-0.9 s. Only a queue in front of SQLite's own lock: a writer that skips it is still correct.
    One holder per process at a time (:class:`FairLock` admits one thread)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = -1
        self._pid = 0

    def acquire(self) -> None:
        if self._pid != os.getpid():  # a lock is shared with a forked child: open our own
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def release(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)


class FairLock:
    """A first-come first-served lock (``threading.Lock`` is not fair): a SQLite database's writers
    in one process queue here, in order, instead of polling the database lock through SQLite's busy
    handler, whose growing sleeps let late writers overtake early ones (seconds of tail latency).
    With ``path``, the thread whose turn it is also takes the database's :class:`_ProcessLock`, so the
    writers of several processes queue too; it is let go between turns, so processes alternate."""

    def __init__(self, timeout: float = 60.0, path: str | None = None) -> None:
        self.timeout = timeout
        self._mutex = threading.Lock()
        self._held = False
        self._waiters: collections.deque[threading.Event] = collections.deque()
        self._process = _ProcessLock(path) if path is not None and fcntl is not None else None

    def __enter__(self) -> FairLock:
        with self._mutex:
            if not self._held:
                self._held = True
                return self._cross_process()
            turn = threading.Event()
            self._waiters.append(turn)
        if not turn.wait(self.timeout):
            with self._mutex:
                if turn in self._waiters:  # (else it was handed over just now: ours)
                    self._waiters.remove(turn)
                    raise TimeoutError(f"the database stayed locked by other writers for {self.timeout:g}s")
        return self._cross_process()

    def _cross_process(self) -> FairLock:
        if self._process is not None:
            try:
                self._process.acquire()
            except OSError:  # no lock file to be had (read-only folder...): SQLite's busy handler only
                self._process = None
            except BaseException:
                self._hand_over()
                raise
        return self

    def __exit__(self, *_: object) -> None:
        if self._process is not None:
            self._process.release()
        self._hand_over()

    def _hand_over(self) -> None:
        with self._mutex:
            if self._waiters:
                self._waiters.popleft().set()  # handed straight to the next in line
            else:
                self._held = False


_WRITER_LOCKS: dict[str, FairLock] = {}
_WRITER_LOCKS_GUARD = threading.Lock()


def _writer_lock(url: str, path: str | None) -> FairLock:
    """One queue per SQLite database per process (every Store on the same file shares it); with the
    database file's ``path``, writers of other processes queue with them (``<path>-writers.lock``)."""
    with _WRITER_LOCKS_GUARD:
        lock = _WRITER_LOCKS.get(url)
        if lock is None:
            lock = _WRITER_LOCKS[url] = FairLock(path=f"{path}-writers.lock" if path else None)
        return lock


#: pooled connections per SQLite engine (one for writes, one for reads)
SQLITE_POOL = 10

#: a pooled connection unused for longer than this is tested before use (seconds)
IDLE_PING = 5.0


def _ping_when_idle(engine: Engine) -> None:
    """Pessimistic disconnect handling for connections that sat idle in the pool (the database may
    have restarted or dropped them meanwhile): they are pinged at checkout and replaced when dead.
    Busy connections skip the ping (``pool_pre_ping`` would add a round trip to every transaction)."""

    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi_conn, record):  # type: ignore[no-untyped-def]
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn, record, _proxy):  # type: ignore[no-untyped-def]
        since = record.info.get("idle_since")
        if since is not None and time.monotonic() - since > IDLE_PING:
            try:
                engine.dialect.do_ping(dbapi_conn)
            except Exception as exc:  # noqa: BLE001 - any failure: the pool retries with a new connection
                raise DisconnectionError() from exc


class Store:
    """A database: ``with store.write() as s`` for one write transaction, ``store.read()`` for reads."""

    def __init__(self, url: str, *, pool_size: int = 4, max_overflow: int = 0, read_pool_size: int = 8) -> None:
        """PostgreSQL: ``pool_size + max_overflow`` connections per process for writes and
        ``read_pool_size + max_overflow`` for reads; keep ``processes * (pool_size + read_pool_size + 2 *
        max_overflow)`` below the server's ``max_connections``."""
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            path: str | None = url.split("///", 1)[1].split("?", 1)[0] if "///" in url else None
            if path and path != ":memory:" and not path.startswith("file:"):
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            else:
                path = None
            # (the pool sizes are PostgreSQL's: here a process's writers queue on the FairLock)
            self._write_engine = _sqlite_engine(url, immediate=True, pool_size=SQLITE_POOL)
            self._read_engine = _sqlite_engine(url, immediate=False, pool_size=SQLITE_POOL)
            self._writer_lock: FairLock | None = _writer_lock(url, path)
        else:
            self._write_engine = create_engine(url, pool_size=pool_size, max_overflow=max_overflow,
                                               pool_timeout=120)
            _ping_when_idle(self._write_engine)
            # Reads see one snapshot for the whole transaction (several statements that must agree,
            # e.g. an observation count and the rows it counts). They have a pool of their own: a read
            # does not queue for a connection behind the writes in flight. The small write pool bounds
            # how many request threads run transactions at once: past a few, more threads only fight
            # for the interpreter lock, and every request in the process (reads too) waits on that.
            self._read_engine = create_engine(url, pool_size=read_pool_size, max_overflow=max_overflow,
                                              pool_timeout=120, isolation_level="REPEATABLE READ")
            _ping_when_idle(self._read_engine)
            self._writer_lock = None  # row locks: writers of different rows run together
        self._write = sessionmaker(self._write_engine, expire_on_commit=False)
        self._read = sessionmaker(self._read_engine, expire_on_commit=False)

    @property
    def engine(self) -> Engine:
        return self._write_engine

    @contextlib.contextmanager
    def write(self) -> Iterator[Session]:
        """One write transaction: committed on success, rolled back on any error. (SQLite: the
        process's writers take turns in arrival order, see :class:`FairLock`.)"""
        if self._writer_lock is None:
            with self._write() as session, session.begin():
                yield session
            return
        with self._writer_lock, self._write() as session, session.begin():
            yield session

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        with self._read() as session, session.begin():
            yield session

    @property
    def single_statements(self) -> bool:
        """Whether :meth:`autocommit` serves the one-statement hot requests (PostgreSQL)."""
        return self._writer_lock is None and self._write_engine.dialect.name == "postgresql"

    @contextlib.contextmanager
    def autocommit(self, read: bool = False) -> Iterator[Any]:
        """PostgreSQL: a pooled psycopg connection (of the write pool, or the read pool when ``read``)
        in autocommit mode, each statement its own transaction (see ``repository.hot_suggest``). A
        connection that broke is dropped from the pool."""
        raw = (self._read_engine if read else self._write_engine).raw_connection()
        conn: Any = raw.driver_connection
        assert conn is not None
        try:
            conn.autocommit = True
            try:
                yield conn
            finally:
                if not conn.broken:
                    conn.autocommit = False
        except BaseException:
            if conn.broken or conn.closed:
                raw.invalidate()
            raise
        finally:
            raw.close()

    @contextlib.contextmanager
    def read_connection(self) -> Iterator[Connection]:
        """A read transaction without the ORM session (for the per-request token lookup)."""
        with self._read_engine.connect() as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
        self._write_engine.dispose()
        self._read_engine.dispose()

    # -- schema ------------------------------------------------------------------------
    def _alembic_config(self):  # type: ignore[no-untyped-def]
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        return cfg

    def head_revision(self) -> str:
        from alembic.script import ScriptDirectory

        head = ScriptDirectory.from_config(self._alembic_config()).get_current_head()
        assert head is not None
        return head

    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self._write_engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def _lock_schema(self, conn) -> None:  # type: ignore[no-untyped-def]
        """Serialize schema checks/migrations across processes (SQLite: BEGIN IMMEDIATE already does)."""
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SCHEMA_LOCK})

    def _upgrade(self, conn) -> None:  # type: ignore[no-untyped-def]
        from alembic import command

        cfg = self._alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")

    def upgrade(self) -> None:
        """Bring the schema to the newest revision (``assay db upgrade``)."""
        with self._write_engine.begin() as conn:
            self._lock_schema(conn)
            self._upgrade(conn)

    def ensure_schema(self, auto_create: bool = True) -> None:
        """Create an empty database's schema; refuse an outdated one with the fix in the message.

        Safe when several server processes start together on one database: the check and the
        creation run under one lock, so exactly one process creates the schema.
        """
        from alembic.runtime.migration import MigrationContext

        head = self.head_revision()
        with self._write_engine.begin() as conn:
            self._lock_schema(conn)
            current = MigrationContext.configure(conn).get_current_revision()
            if current is None:
                tables = set(inspect(conn).get_table_names())
                if tables - {"alembic_version"} and not auto_create:
                    raise SchemaOutOfDate("database has tables but no schema version; run `assay db upgrade`")
                self._upgrade(conn)
                return
        if current != head:
            raise SchemaOutOfDate(
                f"database schema is at revision {current}, this assay needs {head}: "
                "run `assay db upgrade` (back up the database first)")
