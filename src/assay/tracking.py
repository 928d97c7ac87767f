"""Run tracking: record what a training script did, embedded or against a server.

Inside a script::

    import assay

    lr = assay.params.setdefault("lr", 0.01)      # a suggested value when run by `assay optimize`
    for epoch in range(10):
        ...
        assay.log_checkpoint({"loss": loss})
    assay.log_metric("accuracy", acc, stddev=0.01)
    assay.log_image(fig, name="confusion")

Run it with ``assay run -- python train.py`` (one run) or ``assay optimize -e experiment.yml -- python
train.py`` (a suggestion per run). Without the CLI, open runs yourself::

    with assay.create_run(name="baseline") as run:
        run.params.update(lr=0.01)
        run.log_metric("accuracy", 0.93)

    exp = assay.create_experiment(name="tune", parameters=[...], metrics=[{"name": "accuracy"}], budget=20)
    for run in exp.loop():
        run.log_metric("accuracy", train(**run.params))

Calls made outside any run do nothing (so an instrumented script also runs bare). The connection is
``assay.Connection()``: remote when ``ASSAY_URL`` is set, embedded (SQLite in ``ASSAY_HOME``) otherwise.
Heavy optional libraries (PIL, matplotlib, numpy) are imported only when an image of that kind is logged.
"""

from __future__ import annotations

import io
import json
import math
import mimetypes
import os
import re
import struct
import sys
import threading
import zlib
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from assay.client import Connection

__all__ = [
    "RunContext",
    "AIExperiment",
    "Params",
    "params",
    "log_metric",
    "log_metrics",
    "log_checkpoint",
    "log_metadata",
    "log_dataset",
    "log_model",
    "log_image",
    "log_file",
    "log_failure",
    "create_run",
    "create_project",
    "create_experiment",
    "get_experiment",
    "get_run",
    "list_runs",
    "archive_run",
    "unarchive_run",
    "current_run",
    "default_project",
    "RUN_ENV",
]

RUN_ENV = "ASSAY_RUN_ID"
MAX_LOG_CHARS = 1_000_000
_lock = threading.RLock()
_connection: Connection | None = None
_current: RunContext | None = None
_attached = False


def _conn(connection: Connection | None = None) -> Connection:
    global _connection
    if connection is not None:
        return connection
    with _lock:
        if _connection is None:
            from assay.client import Connection

            _connection = Connection()
        return _connection


def default_project() -> str:
    """``ASSAY_PROJECT``, else the current directory's name made into a valid project id."""
    env = os.environ.get("ASSAY_PROJECT")
    if env:
        return env
    name = re.sub(r"[^a-z0-9\-_\.]", "", Path.cwd().name.lower().replace(" ", "-"))
    return name or "default"


def _number(what: str, value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise ValueError(f"{what} must be finite, got {value!r}")
    return out


def _tail(text: str, limit: int = MAX_LOG_CHARS) -> str:
    if len(text) <= limit:
        return text
    return "[assay: log truncated, showing the end]\n" + text[-limit:]


# -- parameters ------------------------------------------------------------------------------
class Params(MutableMapping):
    """A run's parameters: suggested ones are fixed, others are recorded as the script sets them."""

    def __init__(self, run: RunContext | None, values: Mapping[str, Any] | None = None,
                 fixed: set[str] | None = None) -> None:
        object.__setattr__(self, "_run", run)
        object.__setattr__(self, "_values", dict(values or {}))
        object.__setattr__(self, "_fixed", set(fixed or ()))

    def _record(self, changes: Mapping[str, Any]) -> None:
        """Store changed parameters on the run; the script set them, so their source is ``user``."""
        if self._run is not None and changes:
            body: dict[str, Any] = {"assignments": dict(changes)}
            added = [k for k, v in changes.items() if v is not None]
            if added:
                body["assignments_meta"] = {k: {"source": "user"} for k in added}
                body["assignments_sources"] = {"user": {"sort": 2, "default_show": True}}
            self._run._merge(body)

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def __delitem__(self, key: str) -> None:
        if key in self._fixed:
            raise ValueError(f"parameter {key!r} was suggested and cannot be changed")
        del self._values[key]
        self._record({key: None})

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"no parameter named {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __repr__(self) -> str:
        return repr(self._values)

    def update(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        new = dict(*args, **kwargs)
        for k, v in new.items():
            if k in self._fixed and self._values.get(k) != v:
                raise ValueError(f"parameter {k!r} was suggested ({self._values[k]!r}) and cannot be changed")
        self._values.update(new)
        self._record(new)

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self._values:
            self.update({key: default})
        return self._values[key]

    def setdefaults(self, *args: Any, **kwargs: Any) -> Params:
        """Set the parameters not already given (by a suggestion or earlier); returns ``self``."""
        new = {k: v for k, v in dict(*args, **kwargs).items() if k not in self._values}
        if new:
            self.update(new)
        return self


class _GlobalParams(MutableMapping):
    """``assay.params``: the current run's parameters, or a local dict outside any run."""

    _local = Params(None)

    def _target(self) -> Params:
        run = current_run()
        return run.params if run is not None else self._local

    def __getitem__(self, key: str) -> Any:
        return self._target()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._target()[key] = value

    def __delitem__(self, key: str) -> None:
        del self._target()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._target())

    def __len__(self) -> int:
        return len(self._target())

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._target(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        self._target()[name] = value

    def __repr__(self) -> str:
        return repr(self._target())

    def update(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        self._target().update(*args, **kwargs)

    def setdefault(self, key: str, default: Any = None) -> Any:
        return self._target().setdefault(key, default)

    def setdefaults(self, *args: Any, **kwargs: Any) -> Params:
        return self._target().setdefaults(*args, **kwargs)


params = _GlobalParams()


# -- output capture --------------------------------------------------------------------------
class _Tee(io.TextIOBase):
    def __init__(self, original: Any) -> None:
        self.original = original
        self.buffer_ = io.StringIO()
        self.lock = threading.Lock()

    def write(self, s: str) -> int:
        n = self.original.write(s)
        with self.lock:
            self.buffer_.write(s)
        return n if n is not None else len(s)

    def flush(self) -> None:
        self.original.flush()

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.original, "encoding", "utf-8")

    def getvalue(self) -> str:
        with self.lock:
            return self.buffer_.getvalue()


# -- images ----------------------------------------------------------------------------------
def _png_from_array(array: Any) -> bytes:
    """Encode a 2-D (grey) or 3-D (RGB/RGBA) array as PNG with zlib only."""
    import numpy as np

    a = np.asarray(array)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise ValueError(f"an image array must be HxW, HxWx3 or HxWx4, got shape {a.shape}")
    if a.dtype.kind == "f" and a.size and float(np.nanmax(a)) <= 1.0:
        a = a * 255.0
    a = np.clip(np.nan_to_num(a), 0, 255).astype(np.uint8)
    h, w, c = a.shape
    color = {1: 0, 3: 2, 4: 6}[c]
    raw = b"".join(b"\x00" + a[y].tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def _image_payload(image: Any) -> tuple[bytes, str, str | None]:
    """(bytes, content type, filename) for a path, PIL image, matplotlib figure or numpy array."""
    if isinstance(image, (str, Path)):
        path = Path(image)
        ctype = mimetypes.guess_type(path.name)[0]
        if ctype is None or not ctype.startswith("image/"):
            raise ValueError(f"{path.name}: not an image file type (use log_file for other artifacts)")
        return path.read_bytes(), ctype, path.name
    mod = type(image).__module__
    if mod.startswith("PIL."):
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        return buf.getvalue(), "image/png", None
    if mod.startswith("matplotlib."):
        fig = image.figure if hasattr(image, "figure") and not hasattr(image, "savefig") else image
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue(), "image/png", None
    if mod.startswith("numpy") or hasattr(image, "__array_interface__"):
        return _png_from_array(image), "image/png", None
    raise TypeError(f"cannot log an image of type {type(image).__name__}: give a path, a PIL image, "
                    "a matplotlib figure or a numpy array")


# -- runs ------------------------------------------------------------------------------------
class RunContext:
    """One training run; use it as a context manager (ends completed, or failed on an exception)."""

    def __init__(self, connection: Connection, run: Mapping[str, Any], *, owner: bool = True,
                 capture: bool = False) -> None:
        self.connection = connection
        self.run = dict(run)
        self.owner = owner  # an attached child (`assay run`) never ends the run: its parent does
        fixed = set(run.get("assignments") or {}) if run.get("suggestion") else set()
        self.params = Params(self, run.get("assignments") or {}, fixed)
        self._capture = capture
        self._tees: tuple[_Tee, _Tee] | None = None
        self._previous: RunContext | None = None
        self.ended = False

    def __repr__(self) -> str:
        return f"RunContext(id={self.id}, name={self.run.get('name')!r})"

    @property
    def id(self) -> str:
        return str(self.run["id"])

    @property
    def experiment(self) -> str | None:
        return self.run.get("experiment")

    @property
    def path(self) -> str:
        return f"/v1/training_runs/{self.id}"

    def _merge(self, body: Mapping[str, Any]) -> None:
        self.run = self.connection.request("MERGE", self.path, json=dict(body))

    def fetch(self) -> dict[str, Any]:
        self.run = self.connection.request("GET", self.path)
        return self.run

    # logging -----------------------------------------------------------------------------
    def log_metric(self, name: str, value: Any, stddev: Any = None) -> None:
        entry: dict[str, Any] = {"value": _number(f"metric {name!r}", value)}
        if stddev is not None:
            entry["value_stddev"] = _number(f"stddev of metric {name!r}", stddev)
        self._merge({"values": {name: entry}})

    def log_metrics(self, metrics: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        """Several metrics at once; a value may be a number or a ``(value, stddev)`` pair."""
        values: dict[str, Any] = {}
        for name, v in {**(metrics or {}), **kwargs}.items():
            if isinstance(v, tuple):
                values[name] = {"value": _number(f"metric {name!r}", v[0]),
                                "value_stddev": _number(f"stddev of metric {name!r}", v[1])}
            else:
                values[name] = {"value": _number(f"metric {name!r}", v)}
        self._merge({"values": values})

    def log_checkpoint(self, values: Mapping[str, Any], metadata: Mapping[str, Any] | None = None) -> None:
        body: dict[str, Any] = {"values": [{"name": k, "value": _number(f"checkpoint value {k!r}", v)}
                                           for k, v in values.items() if v is not None]}
        if metadata:
            body["metadata"] = dict(metadata)
        self.connection.request("POST", f"{self.path}/checkpoints", json=body)

    def log_metadata(self, key: str | Mapping[str, Any], value: Any = None) -> None:
        items = dict(key) if isinstance(key, Mapping) else {key: value}
        clean: dict[str, Any] = {}
        for k, v in items.items():
            clean[k] = v if v is None or isinstance(v, (str, bool, int, float)) else str(v)
        self._merge({"metadata": clean})

    def log_dataset(self, name: str) -> None:
        self._merge({"datasets": {name: {}}})

    def log_model(self, model: Any) -> None:
        self._merge({"model": {"type": model if isinstance(model, str) else type(model).__name__}})

    def log_source_code(self, content: str | None = None, hash: str | None = None) -> None:  # noqa: A002
        self._merge({"source_code": {k: v for k, v in {"content": content, "hash": hash}.items() if v is not None}})

    def set_logs(self, logs: Mapping[str, str]) -> None:
        self._merge({"logs": {k: {"content": _tail(v)} for k, v in logs.items()}})

    def log_failure(self) -> None:
        self._merge({"state": "failed"})

    def add_tags(self, *tags: str) -> None:
        """Tag the run (tag names, made when new, or tag ids)."""
        self._merge({"tags": [str(t) for t in tags]})

    def remove_tag(self, tag: str) -> None:
        """Take a tag (name or id) off the run."""
        client = self.run.get("client") or "1"
        found = [t for t in self.connection.request("GET", f"/v1/clients/{client}/tags",
                                                    params={"limit": 1000})["data"]
                 if str(tag) in (t["id"], t["name"])]
        for t in found:
            self.connection.request("DELETE", f"{self.path}/tags/{t['id']}")
        self.fetch()

    def set_favorite(self, favorite: bool = True) -> None:
        self._merge({"favorite": bool(favorite)})

    def log_file(self, path: str | Path | bytes, name: str | None = None, content_type: str | None = None,
                 filename: str | None = None) -> dict[str, Any]:
        """Upload any artifact (a path, or bytes with ``filename``); returns the file object."""
        if isinstance(path, (bytes, bytearray)):
            data = bytes(path)
        else:
            data = Path(path).read_bytes()
            filename = filename or Path(path).name
        ctype = content_type or (mimetypes.guess_type(filename or "")[0] if filename else None)
        return self._upload(data, ctype or "application/octet-stream", name, filename)

    def log_image(self, image: Any, name: str | None = None) -> dict[str, Any]:
        """Upload an image: a path, a PIL image, a matplotlib figure or a numpy array (HxW[x3|4])."""
        data, ctype, filename = _image_payload(image)
        return self._upload(data, ctype, name, filename)

    def _upload(self, data: bytes, content_type: str, name: str | None, filename: str | None) -> dict[str, Any]:
        import base64
        import hashlib

        f = self.connection.request("POST", f"{self.path}/files", json={
            "content_length": len(data), "content_type": content_type, "name": name, "filename": filename,
            "content_md5": base64.b64encode(hashlib.md5(data).digest()).decode(),
            "content_sha256": hashlib.sha256(data).hexdigest()})
        upload = f.pop("upload")
        return self.connection.upload(upload["url"], data, headers=upload.get("headers"), method=upload["method"])

    # lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> RunContext:
        global _current
        with _lock:
            self._previous, _current = _current, self
        if self._capture and self._tees is None:
            self._tees = (_Tee(sys.stdout), _Tee(sys.stderr))
            sys.stdout, sys.stderr = self._tees  # type: ignore[assignment]
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        global _current
        if self._tees is not None:
            out, err = self._tees
            sys.stdout, sys.stderr = out.original, err.original
            self._tees = None
            try:
                self.set_logs({"stdout": out.getvalue(), "stderr": err.getvalue()})
            except Exception:  # noqa: BLE001 - logs are best effort; ending the run matters more
                pass
        with _lock:
            if _current is self:
                _current = self._previous
        failed = exc_type is not None and not issubclass(exc_type, GeneratorExit)
        if failed:
            what = ("the loop body raised an exception" if exc_type is _LoopBodyRaised
                    else f"{exc_type.__name__}: {exc}".rstrip(": "))
            try:
                self.log_metadata("error", what[:1000])
            except Exception:  # noqa: BLE001 - the run must still end
                pass
        self.end(failed=failed)

    def end(self, failed: bool = False) -> None:
        """Finish the run: ``completed``, or ``failed`` (a run already failed stays failed)."""
        if self.ended or not self.owner:
            return
        self.ended = True
        state = self.fetch().get("state")
        if state == "active" or (failed and state == "completed"):
            self._merge({"state": "failed" if failed else "completed"})


def current_run() -> RunContext | None:
    """The run logging calls go to: the innermost ``with`` run, or the run `assay run` started."""
    global _attached, _current
    if _current is not None:
        return _current
    run_id = os.environ.get(RUN_ENV)
    if run_id and not _attached:
        with _lock:
            if not _attached and _current is None:
                _attached = True
                conn = _conn()
                run = conn.request("GET", f"/v1/training_runs/{run_id}")
                _current = RunContext(conn, run, owner=False)
    return _current


def _delegate(method: str):  # type: ignore[no-untyped-def]
    def call(*args: Any, **kwargs: Any) -> Any:
        run = current_run()
        if run is None:
            return None
        return getattr(run, method)(*args, **kwargs)

    call.__name__ = method
    call.__doc__ = (getattr(RunContext, method).__doc__
                    or f"``RunContext.{method}`` on the current run (no-op outside one).")
    return call


log_metric = _delegate("log_metric")
log_metrics = _delegate("log_metrics")
log_checkpoint = _delegate("log_checkpoint")
log_metadata = _delegate("log_metadata")
log_dataset = _delegate("log_dataset")
log_model = _delegate("log_model")
log_image = _delegate("log_image")
log_file = _delegate("log_file")
log_failure = _delegate("log_failure")


def create_project(project: str | None = None, name: str | None = None, *,
                   connection: Connection | None = None) -> dict[str, Any]:
    """The project (created when missing)."""
    from assay.errors import Conflict, NotFound

    conn = _conn(connection)
    ref = project or default_project()
    client = conn.request("GET", "/v1/tokens/self")["client"]
    try:
        return conn.request("GET", f"/v1/clients/{client}/projects/{ref}")
    except NotFound:
        try:
            return conn.request("POST", f"/v1/clients/{client}/projects", json={"id": ref, "name": name or ref})
        except Conflict:
            return conn.request("GET", f"/v1/clients/{client}/projects/{ref}")


def create_run(name: str | None = None, *, project: str | None = None, metadata: Mapping[str, Any] | None = None,
               tags: list[str] | None = None, capture: bool = True, source: bool = True,
               connection: Connection | None = None) -> RunContext:
    """A new run in ``project`` (default :func:`default_project`); use ``with``.

    ``tags`` are tag names (made when new) or ids; ``capture`` records stdout/stderr; ``source`` records the
    running script (``sys.argv[0]``) and its git commit as the run's source code.
    """
    conn = _conn(connection)
    proj = create_project(project, connection=conn)
    body: dict[str, Any] = {"name": name or "Run"}
    if metadata:
        body["metadata"] = dict(metadata)
    if tags:
        body["tags"] = [str(t) for t in tags]
    if source and (code := _own_source()):
        body["source_code"] = code
    run = conn.request("POST", f"/v1/clients/{proj['client']}/projects/{proj['id']}/training_runs", json=body)
    return RunContext(conn, run, capture=capture)


def get_run(run_id: Any, *, connection: Connection | None = None) -> dict[str, Any]:
    return _conn(connection).request("GET", f"/v1/training_runs/{run_id}")


def _filters(where: Any) -> str | None:
    """``[("values.acc", ">", 0.9), {"field": "state", "value": "completed"}, ...]`` as the API's JSON."""
    if not where:
        return None
    out = []
    for w in where:
        if isinstance(w, Mapping):
            out.append(dict(w))
        else:
            field, op, value = w
            out.append({"field": field, "operator": op, "value": value})
    return json.dumps(out)


def list_runs(project: str | None = None, *, where: Any = None, sort: str | None = None, ascending: bool = False,
              state: str | None = None, experiment: Any = None, archived: bool = False, limit: int | None = None,
              connection: Connection | None = None) -> list[dict[str, Any]]:
    """Runs of ``project`` (all projects when None), filtered and sorted by the server.

    ``where``: ``(field, operator, value)`` triples, all of which must hold. Fields are ``name``, ``state``,
    ``created``, ``updated``, ``completed``, ``favorite``, ``tags`` (a tag name or id), ``values.<metric>``,
    ``assignments.<parameter>`` and ``metadata.<key>``; operators ``== != < <= > >=``, ``contains`` and
    ``exists``. ``sort`` takes the same fields (newest first by default); runs lacking the key come last.
    ``archived`` includes archived runs. ``limit`` caps how many come back (all of them by default).
    """
    conn = _conn(connection)
    client = conn.request("GET", "/v1/tokens/self")["client"]
    path = (f"/v1/clients/{client}/projects/{project}/training_runs" if project
            else f"/v1/clients/{client}/training_runs")
    filters = json.loads(_filters(where) or "[]")
    if archived:
        filters.append({"field": "deleted", "operator": "exists", "value": True})
    params: dict[str, Any] = {"filters": json.dumps(filters) if filters else None, "sort": sort,
                              "ascending": "true" if ascending else None, "state": state, "experiment": experiment}
    params = {k: v for k, v in params.items() if v is not None}
    out: list[dict[str, Any]] = []
    while limit is None or len(out) < limit:
        params["limit"] = min(1000, limit - len(out)) if limit is not None else 1000
        page = conn.request("GET", path, params=params)
        out.extend(page["data"])
        before = (page.get("paging") or {}).get("before")
        if not before or not page["data"]:
            break
        params["before"] = before
    return out


def archive_run(run_id: Any, *, connection: Connection | None = None) -> None:
    """Archive a run: it leaves lists (``archived=True`` shows it) and can be restored."""
    _conn(connection).request("DELETE", f"/v1/training_runs/{run_id}")


def unarchive_run(run_id: Any, *, connection: Connection | None = None) -> dict[str, Any]:
    return _conn(connection).request("MERGE", f"/v1/training_runs/{run_id}", json={"deleted": False})


_own_source_cache: list[dict[str, Any]] = []


def _own_source() -> dict[str, Any]:
    """:func:`source_code` of the running script, read once per process."""
    if not _own_source_cache:
        _own_source_cache.append(source_code())
    return _own_source_cache[0]


def source_code(path: str | Path | None = None, max_chars: int = 1_000_000) -> dict[str, Any]:
    """``{"content", "hash"}`` of a script (default: the running one) and its git commit, when known."""
    out: dict[str, Any] = {}
    script = Path(path) if path is not None else (Path(sys.argv[0]) if sys.argv and sys.argv[0] else None)
    if script is not None and script.suffix == ".py" and script.is_file():
        try:
            text = script.read_text(errors="replace")
        except OSError:
            text = ""
        if text and len(text) <= max_chars:
            out["content"] = text
    where = script.resolve().parent if script is not None and script.exists() else Path.cwd()
    if commit := git_commit(where):
        out["hash"] = commit
    return out


def git_commit(where: str | Path | None = None) -> str | None:
    """The git commit checked out in ``where`` (default: the current directory), or None outside git."""
    import subprocess

    try:
        git = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where or Path.cwd(), capture_output=True, text=True,
                             timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return (git.stdout.strip() or None) if git.returncode == 0 else None


class AIExperiment:
    """An AI experiment (runs-only): each run gets the next suggestion; finished runs become observations."""

    def __init__(self, connection: Connection, data: Mapping[str, Any]) -> None:
        self.connection = connection
        self.data = dict(data)

    def __repr__(self) -> str:
        return f"AIExperiment(id={self.id}, name={self.data.get('name')!r})"

    @property
    def id(self) -> str:
        return str(self.data["id"])

    @property
    def progress(self) -> dict[str, Any]:
        return self.data.get("progress") or {}

    def refresh(self) -> dict[str, Any]:
        self.data = self.connection.request("GET", f"/v1/aiexperiments/{self.id}")
        return self.data

    def is_finished(self) -> bool:
        remaining = self.refresh()["progress"].get("remaining_budget")
        return remaining is not None and remaining <= 0

    def create_run(self, name: str | None = None, capture: bool = False, source: bool = True) -> RunContext:
        """A run with the next suggestion (``source``: record the running script, as :func:`create_run`)."""
        body: dict[str, Any] = {"name": name} if name else {}
        if source and (code := _own_source()):
            body["source_code"] = code
        run = self.connection.request("POST", f"/v1/aiexperiments/{self.id}/training_runs", json=body)
        return RunContext(self.connection, run, capture=capture)

    def loop(self, name: str | None = None, max_runs: int | None = None, capture: bool = True,
             source: bool = True) -> Iterator[RunContext]:
        """Yield runs until the budget is spent. Each run is current inside the loop body and ends after it:
        completed, or failed when the body raised (the exception goes on) or called ``log_failure``; a run
        missing a metric gives a failed observation. ``break`` ends the current run normally.
        ``capture`` records each run's stdout/stderr.
        """
        done = 0
        while (max_runs is None or done < max_runs) and not self.is_finished():
            run = self.create_run(name, capture=capture, source=source)
            run.__enter__()
            try:
                yield run
            except GeneratorExit:
                # The loop was left in the middle of a run: by break/return, or by an exception the body
                # raised (which a generator never sees). Only the caller's frame can tell them apart.
                if _left_by_exception(sys._getframe().f_back):
                    run.__exit__(_LoopBodyRaised, _LoopBodyRaised("the loop body raised an exception"), None)
                else:
                    run.__exit__(None, None, None)
                raise
            except BaseException as exc:  # thrown into the generator (gen.throw)
                run.__exit__(type(exc), exc, exc.__traceback__)
                raise
            run.__exit__(None, None, None)
            done += 1

    def runs(self, where: Any = None, sort: str | None = None, ascending: bool = False) -> list[dict[str, Any]]:
        """This experiment's runs (``where``/``sort`` as in :func:`list_runs`)."""
        return list_runs(where=where, sort=sort, ascending=ascending, experiment=self.id,
                         connection=self.connection)

    def get_best_runs(self) -> list[dict[str, Any]]:
        return self.connection.request("GET", f"/v1/aiexperiments/{self.id}/best_training_runs")["data"]

    def archive(self, include_runs: bool = False) -> None:
        self.connection.request("DELETE", f"/v1/aiexperiments/{self.id}",
                                params={"include_runs": "true" if include_runs else "false"})


def create_experiment(*, name: str, parameters: Sequence[Mapping[str, Any]], metrics: Sequence[Mapping[str, Any]],
                      project: str | None = None, connection: Connection | None = None,
                      **body: Any) -> AIExperiment:
    """An AI experiment in ``project`` (``budget``, ``parallel_bandwidth`` ... as keyword arguments)."""
    conn = _conn(connection)
    proj = create_project(project, connection=conn)
    data = conn.request("POST", f"/v1/clients/{proj['client']}/projects/{proj['id']}/aiexperiments",
                        json={"name": name, "parameters": list(parameters), "metrics": list(metrics), **body})
    return AIExperiment(conn, data)


def get_experiment(experiment_id: Any, *, connection: Connection | None = None) -> AIExperiment:
    conn = _conn(connection)
    return AIExperiment(conn, conn.request("GET", f"/v1/aiexperiments/{experiment_id}"))


class _LoopBodyRaised(Exception):
    """Stands for the exception that left an experiment loop (a generator cannot see it)."""


# Opcodes at which a frame drops a for-loop's iterator without an exception (break, return, while-else ...).
_NORMAL_EXIT_OPS = {"POP_TOP", "END_FOR", "POP_ITER", "SWAP", "RETURN_VALUE", "RETURN_CONST", "JUMP_FORWARD"}


def _left_by_exception(frame: Any) -> bool:
    """Whether the frame that closed a generator was unwinding an exception (not leaving by ``break``).

    A generator closed while its caller unwinds is closed at the instruction that raised; one left by
    ``break``/``return`` at the instruction that pops the iterator. Anything unknown counts as an exception.
    """
    import dis

    if frame is None:
        return True
    try:
        op = dis.opname[frame.f_code.co_code[frame.f_lasti]]
    except (IndexError, AttributeError):
        return True
    return op not in _NORMAL_EXIT_OPS


def params_from_env() -> dict[str, Any]:
    """The parameters `assay run`/`assay optimize` handed to this process (``ASSAY_PARAMS``)."""
    raw = os.environ.get("ASSAY_PARAMS")
    return json.loads(raw) if raw else {}
