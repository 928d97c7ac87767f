"""Run-tracking use cases: projects, training runs, checkpoints, files and AI experiments.

:class:`RunService` sits next to :class:`assay.service.Service` (it reuses its store,
suggestions and observations). Each public method is one request and, like the core
service, runs each write in one transaction.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import math
import os
import re
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from assay import run_schemas as rs
from assay import schemas
from assay.access import Principal, record
from assay.domain import Checkpoint, Experiment, MetricValue, Page, Project, StoredFile, Tag, TrainingRun
from assay.engine.analysis import best_observations
from assay.errors import Conflict, Forbidden, InvalidRequest, NotFound, PayloadTooLarge, Unprocessable
from assay.service import Service, _int_id, _page, _page_args
from assay.store import repository as repo
from assay.store import runs as runs_repo

__all__ = ["RunService", "UploadSink", "aiexperiment_json", "safe_filename", "MAX_CHECKPOINTS"]

MAX_CHECKPOINTS = 200
FINISHED = ("completed", "failed")
_MAP_FIELDS = ("assignments_meta", "assignments_sources", "values", "logs", "metadata", "sys_metadata",
               "dev_metadata", "model", "source_code", "datasets")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_BAD_KEY = re.compile(r'["\\\x00-\x1f]')
_OPERATORS = ("==", "!=", "<", "<=", ">", ">=", "contains", "exists")


PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")


def _palette_color(name: str) -> str:
    """A stable colour for a tag made without one."""
    return PALETTE[int(hashlib.sha256(name.encode()).hexdigest(), 16) % len(PALETTE)]


def _color(raw: str) -> str:
    text = raw.strip().lower()
    if not re.fullmatch(r"#?[0-9a-f]{6}", text):
        raise InvalidRequest(f"color must be a hex colour like #1f77b4, got {raw!r}", field="color")
    return text if text.startswith("#") else "#" + text


def _find_tag(s: Session, client_id: int, ref: Any) -> Tag | None:
    """The team's tag named by id (digits) or by name."""
    text = str(ref)
    if text.isdigit() and len(text) < 12:
        found = runs_repo.find_tag(s, client_id, tag_id=int(text))
        if found is not None:
            return found
    return runs_repo.find_tag(s, client_id, name=text)


def _finite(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError
    out = float(value)
    if not math.isfinite(out):
        raise ValueError
    return out


def _offset_marker(marker: Any, limit: int, back: bool = False) -> int:
    """The offset a sorted list's paging marker (``o<offset>``) stands for."""
    if marker in (None, ""):
        return 0
    text = str(marker)
    if not re.fullmatch(r"o\d{1,9}", text):
        name = "after" if back else "before"
        raise InvalidRequest(f"{name} must be a paging marker from a previous page of this sorted list", field=name)
    return int(text[1:])


def safe_filename(name: str | None) -> str | None:
    """A display name with no directories, control characters or leading dots."""
    if not name:
        return None
    base = _CONTROL.sub("", name.replace("\\", "/").rsplit("/", 1)[-1]).strip().lstrip(".")
    return base[:200] or None


def aiexperiment_json(exp: Experiment, active: int, finished: int, total: int) -> dict[str, Any]:
    """An experiment in SigOpt's ``aiexperiment`` shape (progress counts runs)."""
    out = exp.to_json()
    out["object"] = "aiexperiment"
    consumed = exp.progress.observation_budget_consumed if exp.progress else 0.0
    budget = exp.observation_budget
    out["progress"] = {
        "object": "progress",
        "active_run_count": active,
        "finished_run_count": finished,
        "total_run_count": total,
        "remaining_budget": None if budget is None else max(budget - consumed, 0.0),
        "observation_count": exp.progress.observation_count if exp.progress else 0,
        "observation_budget_consumed": consumed,
    }
    return out


@dataclass
class UploadSink:
    """Bytes of one upload streaming into a temporary file, hashed on the way."""

    file: StoredFile
    token: str
    path: Path
    limit: int
    length: int = 0
    md5: Any = field(default_factory=hashlib.md5)
    sha256: Any = field(default_factory=hashlib.sha256)
    _fh: Any = None

    def write(self, chunk: bytes) -> None:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        self.length += len(chunk)
        if self.length > self.limit:
            self.discard()
            raise PayloadTooLarge(f"file {self.file.id}: upload is larger than {self.limit} bytes",
                                  field="content_length")
        self.md5.update(chunk)
        self.sha256.update(chunk)
        self._fh.write(chunk)

    def close(self) -> None:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "wb")  # noqa: SIM115
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()

    def discard(self) -> None:
        if self._fh is not None and not self._fh.closed:
            self._fh.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _values_map(raw: Any) -> dict[str, Any]:
    """Run values as ``{name: {value, value_stddev}}`` (``None`` entries delete on merge)."""
    if raw is None:
        return {}
    if isinstance(raw, list):
        out: dict[str, Any] = {}
        for i, v in enumerate(raw):
            if v.name is None:
                raise InvalidRequest(f"values[{i}].name is required", field=f"values[{i}].name")
            out[v.name] = {"value": v.value, "value_stddev": v.value_stddev}
        return out
    return {k: (None if v is None else {"value": v.value, "value_stddev": v.value_stddev}) for k, v in raw.items()}


def _field_value(req: rs.TrainingRunIn, name: str) -> Any:
    """The request's value for a map field, normalised to plain JSON."""
    raw = getattr(req, name)
    if raw is None:
        return None
    if name == "values":
        return _values_map(raw)
    if name == "logs":
        return {k: (None if v is None else {"content": v.content}) for k, v in raw.items()}
    if name in ("model", "source_code"):
        return raw.model_dump(exclude_none=True, exclude={"object"})
    if name == "datasets" and isinstance(raw, list):
        return {n: {} for n in raw}
    return dict(raw)


class RunService:
    """Use cases of run tracking over the core :class:`Service`."""

    def __init__(self, service: Service, artifact_dir: Path, *, max_file_bytes: int = 256 * 1024 * 1024) -> None:
        self.svc = service
        self.store = service.store
        self.artifact_dir = Path(artifact_dir)
        self.max_file_bytes = max_file_bytes

    # -- projects ----------------------------------------------------------------------
    def create_project(self, body: Any, *, client_id: int = 1, actor: Principal | None = None) -> Project:
        req = schemas.parse(rs.ProjectCreate, body)
        try:
            with self.store.write() as s:
                repo.ensure_client(s, client_id)
                if runs_repo.find_project(s, client_id, req.id) is not None:
                    raise Conflict(f"project {req.id!r} already exists", field="id")
                created = runs_repo.insert_project(s, client_id, req.id, req.name or req.id, req.metadata)
                record(s, actor, "project.create", "project", req.id, {"project": req.id, "name": created.name},
                       client_id=client_id)
                return created
        except IntegrityError:
            raise Conflict(f"project {req.id!r} already exists", field="id") from None

    def get_project(self, reference: str, *, client_id: int = 1) -> Project:
        with self.store.read() as s:
            return runs_repo.get_project(s, client_id, reference)

    def ensure_project(self, reference: str, *, client_id: int = 1, name: str | None = None) -> Project:
        """The project, created first if missing (what the tracking API and CLI use)."""
        with self.store.read() as s:
            found = runs_repo.find_project(s, client_id, reference)
        if found is not None:
            return found
        try:
            return self.create_project({"id": reference, "name": name or reference}, client_id=client_id)
        except Conflict:
            return self.get_project(reference, client_id=client_id)

    def list_projects(self, *, client_id: int = 1, limit: int | None = None, before: Any = None,
                      after: Any = None) -> Page:
        lim, b, a = _page_args(limit, before, after)
        with self.store.read() as s:
            items, total = runs_repo.list_projects(s, client_id, limit=lim, before=b, after=a)
        return _page(items, total, lim)

    def update_project(self, reference: str, body: Any, *, client_id: int = 1,
                       actor: Principal | None = None) -> Project:
        req = schemas.parse(rs.ProjectUpdate, body)
        with self.store.write() as s:
            p = runs_repo.get_project(s, client_id, reference)
            fields: dict[str, Any] = {}
            if req.name is not None:
                fields["name"] = req.name
            if "metadata" in req.model_fields_set:
                fields["metadata"] = req.metadata
            if fields:
                runs_repo.update_project(s, p.id, **fields)
                record(s, actor, "project.update", "project", reference, {"project": reference,
                                                                          "fields": sorted(fields)},
                       client_id=client_id)
            return runs_repo.get_project(s, client_id, reference)

    # -- training runs -----------------------------------------------------------------
    def _new_run_fields(self, req: rs.TrainingRunIn) -> tuple[dict[str, Any], dict[str, Any]]:
        data: dict[str, Any] = {}
        for name in _MAP_FIELDS:
            value = _field_value(req, name)
            if value:
                data[name] = {k: v for k, v in value.items() if v is not None}
        assignments = {k: v for k, v in (req.assignments or {}).items() if v is not None}
        return assignments, data

    def _finish_new(self, s: Session, run: TrainingRun, req: rs.TrainingRunIn, client_id: int) -> TrainingRun:
        """Favorite and tags of a just-inserted run; returns it as stored."""
        if not req.favorite and not req.tags:
            return run
        if req.favorite:
            runs_repo.update_run(s, run.id, favorite=True)
        if req.tags:
            runs_repo.set_run_tags(s, run.id, add=self._tag_ids(s, client_id, req.tags))
        return runs_repo.get_run(s, run.id)

    def create_run(self, project: str, body: Any, *, client_id: int = 1) -> TrainingRun:
        req = schemas.parse(rs.TrainingRunIn, body)
        assignments, data = self._new_run_fields(req)
        if req.state not in (None, "active"):
            raise InvalidRequest("a run starts active; finish it with an update", field="state")
        with self.store.write() as s:
            proj = runs_repo.get_project(s, client_id, project)
            run = runs_repo.insert_run(s, client_id=client_id, project=proj, name=req.name or "Run",
                                       assignments=assignments, data=data)
            return self._finish_new(s, run, req, client_id)

    def create_runs_batch(self, project: str, body: Any, *, client_id: int = 1) -> Page:
        """Upload finished (or any) runs in one transaction; all or nothing."""
        req = schemas.parse(rs.TrainingRunBatch, body)
        out = []
        with self.store.write() as s:
            proj = runs_repo.get_project(s, client_id, project)
            for r in req.runs:
                assignments, data = self._new_run_fields(r)
                run = runs_repo.insert_run(s, client_id=client_id, project=proj, name=r.name or "Run",
                                           assignments=assignments, data=data, state=r.state or "active")
                out.append(self._finish_new(s, run, r, client_id))
        return Page(out, len(out))

    def run_keys(self, project: str, *, client_id: int = 1) -> dict[str, list[str]]:
        """The parameter and metric names used by a project's runs (its runs table's columns)."""
        with self.store.read() as s:
            pid = runs_repo.get_project(s, client_id, project).id
            params, metrics = runs_repo.run_keys(s, client_id, pid)
        return {"assignments": params, "values": metrics}

    def get_run(self, run_id: Any, *, client_id: int = 1) -> TrainingRun:
        rid = _int_id(run_id, "training_run")
        with self.store.read() as s:
            return runs_repo.get_run(s, rid, client_id=client_id)

    @staticmethod
    def _field(name: Any, where: str) -> tuple[str, str | None]:
        """``state`` → ("state", None); ``values.acc`` → ("values", "acc"); anything else is a 400."""
        if isinstance(name, str) and name in runs_repo.RUN_COLUMNS:
            return name, None
        if isinstance(name, str) and "." in name:
            head, key = name.split(".", 1)
            if head in runs_repo.RUN_JSON_FIELDS and key and len(key) <= 100 and not _BAD_KEY.search(key):
                return head, key
        fields = sorted(runs_repo.RUN_COLUMNS) + [f"{f}.<name>" for f in runs_repo.RUN_JSON_FIELDS] + ["tags"]
        raise InvalidRequest(f"{where}: cannot use {name!r}; use one of {', '.join(fields)}", field=where)

    def _filters(self, raw: Any) -> list[runs_repo.RunFilter]:
        """``filters``: a JSON list of ``{field, operator, value}`` (operator ``==`` by default)."""
        if not raw:
            return []
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError:
                raise InvalidRequest("filters must be a JSON list of {field, operator, value}",
                                     field="filters") from None
        if not isinstance(raw, list):
            raise InvalidRequest("filters must be a JSON list of {field, operator, value}", field="filters")
        return [self._filter(i, f) for i, f in enumerate(raw)]

    def _filter(self, i: int, f: Any) -> runs_repo.RunFilter:
        where = f"filters[{i}]"
        if not isinstance(f, dict) or "field" not in f:
            raise InvalidRequest(f"{where} needs field, operator and value", field=where)
        op, value = f.get("operator", "=="), f.get("value")
        if op not in _OPERATORS:
            raise InvalidRequest(f"{where}.operator must be one of {' '.join(_OPERATORS)}", field=f"{where}.operator")
        if f["field"] == "tags":
            if op not in ("==", "!="):
                raise InvalidRequest(f"{where}.operator: tags take == (has the tag) or != (has not)",
                                     field=f"{where}.operator")
            return runs_repo.RunFilter("tags", op, value)
        name, key = self._field(f["field"], f"{where}.field")
        if op == "exists":
            if not isinstance(value, bool):
                raise InvalidRequest(f"{where}.value must be true or false for exists", field=f"{where}.value")
            return runs_repo.RunFilter(name, op, value, key)
        try:
            if key is not None:
                if name == "values" and op != "contains":
                    value = _finite(value)
                elif op == "contains" or not isinstance(value, (int, float)) or isinstance(value, bool):
                    if not isinstance(value, str):
                        raise ValueError
                else:
                    value = _finite(value)
            elif name in ("experiment", "id", "created", "updated", "completed"):
                if op == "contains" or value is None:
                    raise ValueError
                value = int(value)
            elif name in ("deleted", "favorite"):
                if op not in ("==", "!="):
                    raise ValueError
                value = value if isinstance(value, bool) else str(value).lower() == "true"
            else:
                value = str(value)
        except (TypeError, ValueError, OverflowError):
            if name in ("deleted", "favorite"):
                kind = "true or false (compared with == or !=)"
            elif op == "contains":
                kind = "text"
            elif name in ("values", "experiment", "id", "created", "updated", "completed"):
                kind = "a finite number"
            else:
                kind = "a number or text"
            raise InvalidRequest(f"{where}.value must be {kind} for {f['field']} {op}",
                                 field=f"{where}.value") from None
        return runs_repo.RunFilter(name, op, value, key)

    def _sort(self, sort: str | None, ascending: Any) -> runs_repo.RunSort | None:
        if sort in (None, ""):
            return None
        name, key = self._field(sort, "sort")
        if isinstance(ascending, str):
            if ascending.lower() not in ("true", "false", "1", "0"):
                raise InvalidRequest("ascending must be true or false", field="ascending")
            ascending = ascending.lower() in ("true", "1")
        return runs_repo.RunSort(name, key, bool(ascending))

    def list_runs(self, *, client_id: int = 1, project: str | None = None, experiment: Any = None,
                  filters: Any = None, state: str | None = None, include_deleted: bool = False,
                  limit: int | None = None, before: Any = None, after: Any = None, sort: str | None = None,
                  ascending: Any = False) -> Page:
        """Runs, filtered (``filters``, ``state``) and sorted (``sort`` any filterable field, ``ascending``).

        Without ``sort`` the newest come first and paging markers are run ids; with one, ``paging.before``
        is an opaque marker of the next page.
        """
        order = self._sort(sort, ascending)
        if order is None:
            lim, b, a = _page_args(limit, before, after)
            offset = 0
        else:
            lim, _, _ = _page_args(limit, None, None)
            b = a = None
            offset = _offset_marker(after if after not in (None, "") else before, lim, back=after not in (None, ""))
        flt = self._filters(filters)
        if state is not None:
            if state not in ("active", "completed", "failed"):
                raise InvalidRequest("state must be active, completed or failed", field="state")
            flt.append(runs_repo.RunFilter("state", "==", state))
        if any(f.field == "deleted" for f in flt):
            include_deleted = True
        with self.store.read() as s:
            pid = runs_repo.get_project(s, client_id, project).id if project is not None else None
            eid = None
            if experiment is not None:
                eid = _int_id(experiment, "experiment")
                repo.experiment_row(s, eid, client_id=client_id)
            flt = [self._resolve_tag_filter(s, client_id, f) if f.field == "tags" else f for f in flt]
            items, total = runs_repo.list_runs(s, client_id, project_id=pid, experiment_id=eid, filters=flt,
                                               include_deleted=include_deleted, limit=lim, before=b, after=a,
                                               sort=order, offset=offset)
        if order is None:
            return _page(items, total, lim)
        more = offset + len(items) < total and len(items) == lim
        return Page(items, total, before=f"o{offset + lim}" if more else None,
                    after=f"o{max(offset - lim, 0)}" if offset > 0 else None)

    @staticmethod
    def _resolve_tag_filter(s: Session, client_id: int, f: runs_repo.RunFilter) -> runs_repo.RunFilter:
        """A tags filter names a tag by id or name; an unknown tag matches no run (``==``)."""
        tag = _find_tag(s, client_id, f.value)
        return runs_repo.RunFilter("tags", f.op, tag.id if tag is not None else -1)

    def update_run(self, run_id: Any, body: Any, *, client_id: int = 1, merge: bool = False,
                   actor: Principal | None = None) -> TrainingRun:
        """PUT replaces the fields given; MERGE merges map fields key by key (``null`` removes a key)."""
        rid = _int_id(run_id, "training_run")
        req = schemas.parse(rs.TrainingRunIn, body)
        try:
            with self.store.write() as s:
                row = runs_repo.get_run(s, rid, client_id=client_id, lock=True)
                old_state = row.state
                fields = self._run_changes(s, row, req, merge)
                if fields:
                    runs_repo.update_run(s, rid, **fields)
                if "deleted" in fields and fields["deleted"] != row.deleted:  # archive/restore: audited
                    record(s, actor, "training_run.delete" if fields["deleted"] else "training_run.restore",
                           "training_run", rid, client_id=client_id)
                new_state = fields.get("state", old_state)
                eid = row.experiment_id
                observed = False
                if eid is not None and new_state in FINISHED and new_state != old_state:
                    observed = self._observe_run(s, rid)
                run = runs_repo.get_run(s, rid)
        except IntegrityError:
            raise Conflict("the run's suggestion already has an observation", field="state") from None
        if observed and eid is not None:
            self.svc._changed(eid)
        return run

    def _run_changes(self, s: Session, row: TrainingRun, req: rs.TrainingRunIn, merge: bool) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        given = req.model_fields_set
        if req.name is not None:
            fields["name"] = req.name
        if req.deleted is not None:
            fields["deleted"] = req.deleted
        if req.favorite is not None:
            fields["favorite"] = req.favorite
        if req.state is not None and req.state != row.state:
            if row.state in FINISHED and req.state == "active":
                raise Conflict(f"training run {row.id} is {row.state}; it cannot become active again",
                               field="state")
            if row.state == "failed" and req.state == "completed":
                raise Conflict(f"training run {row.id} failed; it cannot become completed", field="state")
            fields["state"] = req.state
            fields["completed"] = repo.now()
        if "assignments" in given and req.assignments is not None:
            fixed: dict[str, Any] = {}
            if row.suggestion_id is not None and row.experiment_id is not None:
                fixed = repo.get_suggestion(s, row.experiment_id, row.suggestion_id, include_deleted=True).assignments
            new = dict(row.assignments or {}) if merge else {}
            for k, v in req.assignments.items():
                if k in fixed and v != fixed[k]:
                    raise InvalidRequest(f"assignments.{k} was suggested by the experiment and cannot change",
                                         field=f"assignments.{k}")
                if v is None:
                    new.pop(k, None)
                else:
                    new[k] = v
            for k, v in fixed.items():
                new.setdefault(k, v)
            fields["assignments"] = new
        data = dict(row.data or {})
        changed = False
        for name in _MAP_FIELDS:
            if name not in given:
                continue
            value = _field_value(req, name)
            if value is None:
                if not merge:
                    data.pop(name, None)
                    changed = True
                continue
            base = dict(data.get(name) or {}) if merge else {}
            for k, v in value.items():
                if v is None:
                    base.pop(k, None)
                else:
                    base[k] = v
            data[name] = base
            changed = True
        if "tags" in given:  # MERGE adds tags, PUT replaces them
            ids = self._tag_ids(s, row.client_id, req.tags or [])
            runs_repo.set_run_tags(s, row.id, add=ids, replace=not merge)
        if changed:
            fields["data"] = data
        return fields

    def _observe_run(self, s: Session, run_id: int) -> bool:
        """Turn a finished AI-experiment run into an observation (or fail the existing one)."""
        row = runs_repo.get_run(s, run_id)
        if row.experiment_id is None:
            return False
        exp, _, _ = repo.get_experiment(s, row.experiment_id, lock=True)
        values = (row.data or {}).get("values") or {}
        failed = row.state == "failed"
        obs_values: list[dict[str, Any]] = []
        for m in exp.metrics:
            v = values.get(m.name)
            if v is None:
                if m.strategy != "store":
                    failed = True
                continue
            obs_values.append({"name": m.name, "value": v["value"], "value_stddev": v.get("value_stddev")})
        if row.observation_id is not None:
            if failed:
                repo.update_observation(s, row.observation_id, failed=True, values=())
                return True
            return False
        if row.suggestion_id is None:
            return False
        sug = repo.get_suggestion(s, exp.id, row.suggestion_id, include_deleted=True)
        if sug.state == "closed":
            return False
        body: dict[str, Any] = {"failed": failed, "metadata": {"training_run": str(run_id)}}
        if not failed:
            body["values"] = obs_values
        if sug.deleted:
            body["assignments"] = dict(sug.assignments)
            if sug.task is not None:
                body["task"] = sug.task.name
        else:
            body["suggestion"] = sug.id
        obs = self.svc._observe(s, exp, schemas.ObservationCreate.model_validate(body), "observation")
        runs_repo.update_run(s, run_id, observation_id=obs.id)
        return True

    def delete_run(self, run_id: Any, *, client_id: int = 1, actor: Principal | None = None) -> None:
        """Archive (SigOpt's delete is soft); ``PUT {"deleted": false}`` restores."""
        rid = _int_id(run_id, "training_run")
        with self.store.write() as s:
            runs_repo.get_run(s, rid, client_id=client_id, lock=True)
            runs_repo.update_run(s, rid, deleted=True)
            record(s, actor, "training_run.delete", "training_run", rid, client_id=client_id)

    # -- checkpoints -------------------------------------------------------------------
    def _stopping(self, s: Session, run: TrainingRun, values: list[MetricValue]) -> dict[str, Any] | None:
        """The experiment's ``training_monitor`` decision for a run's new checkpoint (None without one)."""
        if run.experiment_id is None:
            return None
        exp, _, _ = repo.get_experiment(s, run.experiment_id)
        tm = exp.training_monitor
        if not tm:
            return None
        from assay.engine import early_stopping as es

        objective = {m.name: m.objective for m in exp.metrics}
        criteria = [es.Criterion(
            type=c["type"], name=c["name"], metric=c["metric"], maximize=objective.get(c["metric"]) != "minimize",
            lookback_checkpoints=c.get("lookback_checkpoints") or 3, min_checkpoints=c.get("min_checkpoints") or 1,
            min_improvement=c.get("min_improvement") or 0.0, reduction_factor=c.get("reduction_factor") or 3)
            for c in tm.get("early_stopping_criteria") or []]
        curves = runs_repo.learning_curves(s, exp.id)
        mine = curves.pop(run.id, {})
        for v in values:
            mine.setdefault(v.name, []).append(v.value)
        others: dict[str, list[list[float]]] = {}
        for c in curves.values():
            for name, curve in c.items():
                others.setdefault(name, []).append(curve)
        d = es.decide(mine, others, criteria, run.checkpoint_count + 1, tm.get("max_checkpoints"))
        return {"should_stop": d.should_stop, "stopping_reasons": d.reasons}

    def create_checkpoint(self, run_id: Any, body: Any, *, client_id: int = 1) -> Checkpoint:
        rid = _int_id(run_id, "training_run")
        req = schemas.parse(rs.CheckpointCreate, body)
        values = []
        for i, v in enumerate(req.values):
            if v.name is None:
                raise InvalidRequest(f"values[{i}].name is required", field=f"values[{i}].name")
            values.append(MetricValue(v.name, float(v.value), v.value_stddev))
        if len({v.name for v in values}) != len(values):
            raise InvalidRequest("values: a metric is given twice", field="values")
        with self.store.write() as s:
            row = runs_repo.get_run(s, rid, client_id=client_id, lock=True)
            if row.observation_id is not None:
                raise Conflict(f"training run {rid} already produced an observation; no more checkpoints",
                               field="training_run")
            if row.checkpoint_count >= MAX_CHECKPOINTS:
                raise InvalidRequest(f"training run {rid} already has the maximum of {MAX_CHECKPOINTS} checkpoints",
                                     field="checkpoints")
            stopping = self._stopping(s, row, values)
            return runs_repo.insert_checkpoint(s, rid, row.checkpoint_count, values, req.metadata, stopping)

    def list_checkpoints(self, run_id: Any, *, client_id: int = 1, limit: int | None = None, before: Any = None,
                         after: Any = None) -> Page:
        rid = _int_id(run_id, "training_run")
        lim, b, a = _page_args(limit, before, after)
        with self.store.read() as s:
            runs_repo.get_run(s, rid, client_id=client_id)
            items, total = runs_repo.list_checkpoints(s, rid, limit=lim, before=b, after=a)
        return _page(items, total, lim)

    def get_checkpoint(self, run_id: Any, checkpoint_id: Any, *, client_id: int = 1) -> Checkpoint:
        rid = _int_id(run_id, "training_run")
        with self.store.read() as s:
            runs_repo.get_run(s, rid, client_id=client_id)
            return runs_repo.get_checkpoint(s, rid, _int_id(checkpoint_id, "checkpoint"))

    # -- files -------------------------------------------------------------------------
    def file_path(self, file_id: int) -> Path:
        # Derived from the id alone: no user text ever reaches the filesystem path.
        return self.artifact_dir / "files" / f"{file_id // 1000:06d}" / f"{file_id}.bin"

    def create_file(self, run_id: Any, body: Any, *, client_id: int = 1,
                    actor: Principal | None = None) -> tuple[StoredFile, str]:
        """Record a file and return it with a one-time upload token (the presigned-URL dance)."""
        rid = _int_id(run_id, "training_run")
        req = schemas.parse(rs.FileCreate, body)
        if req.content_length > self.max_file_bytes:
            raise PayloadTooLarge(f"content_length {req.content_length} exceeds the limit of "
                                  f"{self.max_file_bytes} bytes", field="content_length")
        if req.content_md5 is not None:
            try:
                if len(base64.b64decode(req.content_md5, validate=True)) != 16:
                    raise ValueError
            except ValueError:
                raise InvalidRequest("content_md5 must be the base64 MD5 digest of the content",
                                     field="content_md5") from None
        token = secrets.token_urlsafe(24)
        with self.store.write() as s:
            runs_repo.get_run(s, rid, client_id=client_id, lock=True)
            f = runs_repo.insert_file(s, client_id=client_id, run_id=rid, name=req.name,
                                      filename=safe_filename(req.filename), content_type=req.content_type,
                                      content_length=req.content_length, content_md5=req.content_md5,
                                      sha256=req.content_sha256.lower() if req.content_sha256 else None,
                                      upload_token_hash=_token_hash(token))
            record(s, actor, "file.create", "file", f.id, {"training_run": str(rid), "name": req.name,
                                                           "content_length": req.content_length},
                   client_id=client_id)
        return f, token

    def open_upload(self, file_id: Any, token: str | None) -> UploadSink:
        fid = _int_id(file_id, "file")
        with self.store.read() as s:
            # The token is checked first, and a missing file answers like a wrong token: without the
            # token nobody learns whether a file id exists (other teams' files included).
            try:
                f = runs_repo.get_file(s, fid)
                expected = runs_repo.file_token_hash(s, fid)
            except NotFound:
                f, expected = None, None
            if f is None or not token or expected is None or not secrets.compare_digest(expected, _token_hash(token)):
                raise Forbidden(f"the upload token for file {fid} is missing or wrong", field="token")
            if f.uploaded:
                raise Conflict(f"file {fid} is already uploaded", field="file")
        tmp = self.artifact_dir / "tmp" / f"{fid}-{uuid.uuid4().hex}.part"
        return UploadSink(f, token, tmp, min(f.content_length, self.max_file_bytes))

    def finish_upload(self, sink: UploadSink) -> StoredFile:
        """Check length and hashes, move the bytes into place, mark the file uploaded."""
        sink.close()
        f = sink.file
        try:
            if sink.length != f.content_length:
                raise InvalidRequest(f"file {f.id}: received {sink.length} bytes, content_length says "
                                     f"{f.content_length}", field="content_length")
            md5 = base64.b64encode(sink.md5.digest()).decode()
            if f.content_md5 is not None and md5 != f.content_md5:
                raise InvalidRequest(f"file {f.id}: content MD5 mismatch (got {md5}, expected {f.content_md5})",
                                     field="content_md5")
            sha = sink.sha256.hexdigest()
            if f.sha256 is not None and sha != f.sha256:
                raise InvalidRequest(f"file {f.id}: content SHA-256 mismatch", field="content_sha256")
            with self.store.write() as s:
                current = runs_repo.get_file(s, f.id, lock=True)
                if current.uploaded or runs_repo.file_token_hash(s, f.id) != _token_hash(sink.token):
                    raise Conflict(f"file {f.id} is already uploaded", field="file")
                final = self.file_path(f.id)
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(sink.path, final)
                out = runs_repo.mark_file_uploaded(s, f.id, sha)
                if f.content_md5 is None:
                    out = runs_repo.set_file_md5(s, f.id, md5)
            return out
        finally:
            sink.discard()

    def get_file(self, file_id: Any, *, client_id: int = 1) -> StoredFile:
        fid = _int_id(file_id, "file")
        with self.store.read() as s:
            return runs_repo.get_file(s, fid, client_id=client_id)

    def file_content(self, file_id: Any, *, client_id: int = 1) -> tuple[StoredFile, Path]:
        f = self.get_file(file_id, client_id=client_id)
        path = self.file_path(f.id)
        if not f.uploaded or not path.exists():
            raise NotFound(f"file {f.id} has no content yet", field="file")
        return f, path

    # -- tags --------------------------------------------------------------------------
    def _tag_ids(self, s: Session, client_id: int, refs: list[str]) -> list[int]:
        """Tag ids for a run's ``tags``: each entry is a tag id or a tag name (a new name makes the tag)."""
        out = []
        for ref in dict.fromkeys(refs):
            tag = _find_tag(s, client_id, ref)
            if tag is None:
                tag = runs_repo.insert_tag(s, client_id, ref, _palette_color(ref))
            out.append(tag.id)
        return out

    def create_tag(self, body: Any, *, client_id: int = 1, actor: Principal | None = None) -> Tag:
        req = schemas.parse(rs.TagCreate, body)
        color = _color(req.color) if req.color is not None else _palette_color(req.name)
        try:
            with self.store.write() as s:
                repo.ensure_client(s, client_id)
                if runs_repo.find_tag(s, client_id, name=req.name) is not None:
                    raise Conflict(f"tag {req.name!r} already exists", field="name")
                tag = runs_repo.insert_tag(s, client_id, req.name, color)
                record(s, actor, "tag.create", "tag", tag.id, {"name": tag.name}, client_id=client_id)
                return tag
        except IntegrityError:
            raise Conflict(f"tag {req.name!r} already exists", field="name") from None

    def list_tags(self, *, client_id: int = 1, limit: int | None = None, before: Any = None,
                  after: Any = None) -> Page:
        lim, b, a = _page_args(limit, before, after)
        with self.store.read() as s:
            items, total = runs_repo.list_tags(s, client_id, limit=lim, before=b, after=a)
        return _page(items, total, lim)

    def get_tag(self, tag_id: Any, *, client_id: int = 1) -> Tag:
        tid = _int_id(tag_id, "tag")
        with self.store.read() as s:
            return runs_repo.get_tag(s, client_id, tid)

    def delete_tag(self, tag_id: Any, *, client_id: int = 1, actor: Principal | None = None) -> Tag:
        """Delete a tag; it leaves every run it was on."""
        tid = _int_id(tag_id, "tag")
        with self.store.write() as s:
            tag = runs_repo.get_tag(s, client_id, tid)
            runs_repo.delete_tag(s, tid)
            record(s, actor, "tag.delete", "tag", tid, {"name": tag.name}, client_id=client_id)
        return tag

    def add_run_tag(self, run_id: Any, body: Any, *, client_id: int = 1) -> Tag:
        """SigOpt's ``POST /training_runs/{id}/tags {"id": tag}``: attach one of the team's tags (422 if none)."""
        rid = _int_id(run_id, "training_run")
        req = schemas.parse(rs.RunTagAdd, body)
        tid = _int_id(req.id, "tag")
        with self.store.write() as s:
            runs_repo.get_run(s, rid, client_id=client_id, lock=True)
            tag = runs_repo.find_tag(s, client_id, tag_id=tid)
            if tag is None:
                raise Unprocessable(f"tag {tid} does not exist, so it cannot be added to training run {rid}",
                                    field="id")
            runs_repo.set_run_tags(s, rid, add=[tid])
        return tag

    def remove_run_tag(self, run_id: Any, tag_id: Any, *, client_id: int = 1) -> Tag:
        rid = _int_id(run_id, "training_run")
        tid = _int_id(tag_id, "tag")
        with self.store.write() as s:
            runs_repo.get_run(s, rid, client_id=client_id, lock=True)
            tag = runs_repo.get_tag(s, client_id, tid)
            runs_repo.set_run_tags(s, rid, remove=[tid])
        return tag

    # -- AI experiments ----------------------------------------------------------------
    def _ai(self, s: Session, exp: Experiment) -> dict[str, Any]:
        active, finished, total = runs_repo.runs_progress(s, exp.id)
        return aiexperiment_json(self.svc._with_progress(s, exp), active, finished, total)

    def _ai_experiment(self, s: Session, experiment_id: Any, client_id: int, lock: bool = False) -> Experiment:
        eid = _int_id(experiment_id, "aiexperiment")
        try:
            exp, _, _ = repo.get_experiment(s, eid, client_id=client_id, lock=lock)
        except NotFound:
            raise NotFound(f"aiexperiment {eid} does not exist", field="aiexperiment") from None
        if not exp.runs_only:
            raise NotFound(f"aiexperiment {eid} does not exist (experiment {eid} is not an AI experiment)",
                           field="aiexperiment")
        return exp

    def create_aiexperiment(self, project: str, body: Any, *, client_id: int = 1,
                            development: bool = False, actor: Principal | None = None) -> dict[str, Any]:
        if not isinstance(body, Mapping):
            raise InvalidRequest("The request body must be a JSON object")
        if body.get("project") not in (None, project):
            raise InvalidRequest("project is given by the URL", field="project")
        with self.store.read() as s:
            runs_repo.get_project(s, client_id, project)
        exp = self.svc.create_experiment({**body, "project": project, "runs_only": True}, client_id=client_id,
                                         development=development, actor=actor)
        with self.store.read() as s:
            return self._ai(s, exp)

    def get_aiexperiment(self, experiment_id: Any, *, client_id: int = 1) -> dict[str, Any]:
        with self.store.read() as s:
            return self._ai(s, self._ai_experiment(s, experiment_id, client_id))

    def list_aiexperiments(self, *, client_id: int = 1, project: str | None = None, state: str | None = None,
                           limit: int | None = None, before: Any = None, after: Any = None) -> Page:
        if project is not None:
            self.get_project(project, client_id=client_id)
        page = self.svc.list_experiments(client_id=client_id, state=state, project=project, limit=limit,
                                         before=before, after=after)
        with self.store.read() as s:
            data = [self._ai(s, e) for e in page.data if e.runs_only]
        return Page(data, len(data) if len(data) != len(page.data) else page.count, before=page.before)

    def update_aiexperiment(self, experiment_id: Any, body: Any, *, client_id: int = 1,
                            actor: Principal | None = None) -> dict[str, Any]:
        with self.store.read() as s:
            exp = self._ai_experiment(s, experiment_id, client_id)
        if isinstance(body, Mapping) and body.get("project") not in (None, exp.project):
            raise InvalidRequest("an AI experiment cannot move to another project", field="project")
        self.svc.update_experiment(exp.id, body, client_id=client_id, actor=actor)
        return self.get_aiexperiment(exp.id, client_id=client_id)

    def delete_aiexperiment(self, experiment_id: Any, *, client_id: int = 1, include_runs: bool = False,
                            actor: Principal | None = None) -> None:
        with self.store.write() as s:
            exp = self._ai_experiment(s, experiment_id, client_id, lock=True)
            repo.update_experiment(s, exp.id, state="deleted")
            if include_runs:
                runs_repo.archive_experiment_runs(s, exp.id)
            record(s, actor, "experiment.delete", "experiment", exp.id, {"include_runs": include_runs},
                   client_id=client_id)
        self.svc._changed(exp.id)

    def create_aiexperiment_run(self, experiment_id: Any, body: Any = None, *, client_id: int = 1,
                                random_only: bool = False) -> TrainingRun:
        """A run with the experiment's next suggestion as its assignments."""
        req = schemas.parse(rs.TrainingRunIn, body)
        if req.assignments:
            raise InvalidRequest("an AI experiment's run gets its assignments from a suggestion",
                                 field="assignments")
        _, data = self._new_run_fields(req)
        with self.store.read() as s:
            exp = self._ai_experiment(s, experiment_id, client_id)
            proj = runs_repo.get_project(s, client_id, exp.project or "")
        sug = self.svc.create_suggestion(exp.id, None, client_id=client_id, random_only=random_only,
                                         for_run=True)
        data["assignments_sources"] = {"assay": {"sort": 1, "default_show": True}}
        data["assignments_meta"] = {k: {"source": "assay"} for k in sug.assignments}
        with self.store.write() as s:
            run = runs_repo.insert_run(s, client_id=client_id, project=proj, name=req.name or f"Run {sug.id}",
                                       assignments=dict(sug.assignments), data=data, experiment_id=exp.id,
                                       suggestion_id=sug.id)
            return self._finish_new(s, run, req, client_id)

    def best_training_runs(self, experiment_id: Any, *, client_id: int = 1) -> Page:
        with self.store.read() as s:
            exp = self._ai_experiment(s, experiment_id, client_id)
            best = best_observations(repo.all_observations(s, exp.id), exp.metrics, exp.tasks)
            runs = runs_repo.runs_by_observation(s, exp.id, [o.id for o in best])
        return Page(runs, len(runs))
