"""Queries for run tracking: projects, training runs, checkpoints and file records.

Like :mod:`assay.store.repository`, every function takes a session (the caller owns the
transaction), scopes by client where the caller names one, and returns domain objects.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Float, case, cast, delete, exists, func, select, true, update
from sqlalchemy.orm import Session

from assay.domain import Checkpoint, MetricValue, Project, StoredFile, Tag, TrainingRun
from assay.errors import NotFound
from assay.store.models import (
    CheckpointRow,
    ExperimentRow,
    FileRow,
    ProjectRow,
    TagRow,
    TrainingRunRow,
    TrainingRunTagRow,
)
from assay.store.repository import now, scoped_row

__all__ = [
    "insert_project",
    "find_project",
    "get_project",
    "list_projects",
    "update_project",
    "insert_run",
    "run_row",
    "get_run",
    "list_runs",
    "run_keys",
    "RunFilter",
    "RunSort",
    "RUN_COLUMNS",
    "RUN_JSON_FIELDS",
    "update_run",
    "runs_progress",
    "runs_by_observation",
    "insert_checkpoint",
    "list_checkpoints",
    "get_checkpoint",
    "learning_curves",
    "insert_file",
    "file_row",
    "get_file",
    "mark_file_uploaded",
    "set_file_md5",
    "file_token_hash",
    "archive_experiment_runs",
    "insert_tag",
    "find_tag",
    "get_tag",
    "list_tags",
    "delete_tag",
    "run_tags",
    "set_run_tags",
]


# -- projects ------------------------------------------------------------------------------
def _project(row: ProjectRow) -> Project:
    return Project(id=row.id, reference=row.reference, name=row.name, client_id=row.client_id,
                   metadata=row.metadata_, created=row.created, updated=row.updated)


def insert_project(session: Session, client_id: int, reference: str, name: str,
                   metadata: dict[str, Any] | None = None) -> Project:
    t = now()
    row = ProjectRow(client_id=client_id, reference=reference, name=name, metadata_=metadata, created=t, updated=t)
    session.add(row)
    session.flush()
    return _project(row)


def find_project(session: Session, client_id: int, reference: str) -> Project | None:
    row = session.execute(select(ProjectRow).where(ProjectRow.client_id == client_id,
                                                   ProjectRow.reference == reference)).scalar_one_or_none()
    return _project(row) if row else None


def get_project(session: Session, client_id: int, reference: str) -> Project:
    p = find_project(session, client_id, reference)
    if p is None:
        raise NotFound(f"project {reference!r} does not exist", field="project")
    return p


def list_projects(session: Session, client_id: int, *, limit: int = 100, before: int | None = None,
                  after: int | None = None) -> tuple[list[Project], int]:
    base = select(ProjectRow).where(ProjectRow.client_id == client_id)
    stmt = base
    if before is not None:
        stmt = stmt.where(ProjectRow.id < before)
    if after is not None:
        stmt = stmt.where(ProjectRow.id > after).order_by(ProjectRow.id.asc())
    else:
        stmt = stmt.order_by(ProjectRow.id.desc())
    rows = list(session.execute(stmt.limit(limit)).scalars().all())
    if after is not None:
        rows.reverse()
    total = session.execute(select(func.count(ProjectRow.id)).where(ProjectRow.client_id == client_id)).scalar_one()
    return [_project(r) for r in rows], total


def update_project(session: Session, project_id: int, **fields: Any) -> None:
    if "metadata" in fields:
        fields["metadata_"] = fields.pop("metadata")
    fields["updated"] = now()
    session.execute(update(ProjectRow).where(ProjectRow.id == project_id).values(**fields))


# -- training runs -------------------------------------------------------------------------
def _run(row: TrainingRunRow, reference: str, files: Sequence[int] = (), tags: Sequence[int] = ()) -> TrainingRun:
    return TrainingRun(
        id=row.id, name=row.name, project=reference, client_id=row.client_id, state=row.state,
        deleted=row.deleted, favorite=row.favorite, assignments=dict(row.assignments or {}),
        data=dict(row.data or {}), experiment_id=row.experiment_id, suggestion_id=row.suggestion_id,
        observation_id=row.observation_id, checkpoint_count=row.checkpoint_count, files=tuple(files),
        created=row.created, updated=row.updated, completed=row.completed, tags=tuple(tags),
    )


def _files_of(session: Session, run_ids: Sequence[int]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {r: [] for r in run_ids}
    if not run_ids:
        return out
    rows = session.execute(select(FileRow.training_run_id, FileRow.id).where(
        FileRow.training_run_id.in_(run_ids), FileRow.uploaded.is_(True)).order_by(FileRow.id)).all()
    for rid, fid in rows:
        if rid is not None:
            out[rid].append(fid)
    return out


def _tags_of(session: Session, run_ids: Sequence[int]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {r: [] for r in run_ids}
    if not run_ids:
        return out
    rows = session.execute(select(TrainingRunTagRow.training_run_id, TrainingRunTagRow.tag_id).where(
        TrainingRunTagRow.training_run_id.in_(run_ids)).order_by(TrainingRunTagRow.tag_id)).all()
    for rid, tid in rows:
        out[rid].append(tid)
    return out


def insert_run(session: Session, *, client_id: int, project: Project, name: str, assignments: dict[str, Any],
               data: dict[str, Any], experiment_id: int | None = None, suggestion_id: int | None = None,
               state: str = "active") -> TrainingRun:
    t = now()
    row = TrainingRunRow(client_id=client_id, project_id=project.id, experiment_id=experiment_id,
                         suggestion_id=suggestion_id, name=name, state=state, deleted=False, favorite=False,
                         created=t, updated=t, completed=t if state != "active" else None,
                         assignments=assignments, data=data, checkpoint_count=0)
    session.add(row)
    session.flush()
    return _run(row, project.reference)


def run_row(session: Session, run_id: int, *, client_id: int | None = None, lock: bool = False) -> TrainingRunRow:
    return scoped_row(session, TrainingRunRow, run_id, "training_run", client_id=client_id, lock=lock)


def get_run(session: Session, run_id: int, *, client_id: int | None = None, lock: bool = False) -> TrainingRun:
    row = run_row(session, run_id, client_id=client_id, lock=lock)
    ref = session.execute(select(ProjectRow.reference).where(ProjectRow.id == row.project_id)).scalar_one()
    return _run(row, ref, _files_of(session, [row.id])[row.id], _tags_of(session, [row.id])[row.id])


RUN_COLUMNS = {
    "experiment": TrainingRunRow.experiment_id,
    "state": TrainingRunRow.state,
    "name": TrainingRunRow.name,
    "deleted": TrainingRunRow.deleted,
    "favorite": TrainingRunRow.favorite,
    "id": TrainingRunRow.id,
    "created": TrainingRunRow.created,
    "updated": TrainingRunRow.updated,
    "completed": TrainingRunRow.completed,
}
_FILTER_COLUMNS = RUN_COLUMNS  # the name other modules used
# ``<field>.<key>`` filters and sorts read inside the JSON columns: (column, path before key, path after key).
RUN_JSON_FIELDS: dict[str, tuple[Any, tuple[str, ...], tuple[str, ...]]] = {
    "values": (TrainingRunRow.data, ("values",), ("value",)),
    "assignments": (TrainingRunRow.assignments, (), ()),
    "metadata": (TrainingRunRow.data, ("metadata",), ()),
}


@dataclass(frozen=True)
class RunFilter:
    """``field`` (a column name, or values/assignments/metadata with ``key``) ``op`` ``value``.

    ``op`` is one of ``== != < <= > >=``, ``contains`` (case-insensitive substring) or ``exists``.
    """

    field: str
    op: str
    value: Any
    key: str | None = None


@dataclass(frozen=True)
class RunSort:
    field: str
    key: str | None = None
    ascending: bool = False


def _json_parts(session: Session, field: str, key: str) -> tuple[Any, Any, Any]:
    """(number, text, present) SQL expressions for a key inside a run's JSON, on SQLite or PostgreSQL.

    A value of the other type reads as NULL (no cast error on PostgreSQL); ``present`` is true when the key
    exists at all.
    """
    col, before, after = RUN_JSON_FIELDS[field]
    path = (*before, key, *after)
    if session.get_bind().dialect.name == "postgresql":
        kind = func.json_typeof(func.json_extract_path(col, *path))
        raw = func.json_extract_path_text(col, *path)
        return (case((kind == "number", cast(raw, Float))), case((kind == "string", raw)), kind.is_not(None))
    jpath = "$" + "".join('."' + part + '"' for part in path)  # keys never hold '"' (checked by the service)
    kind = func.json_type(col, jpath)
    raw = func.json_extract(col, jpath)
    return (case((kind.in_(("integer", "real")), raw)), case((kind == "text", raw)), kind.is_not(None))


_OPS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
        ">=": operator.ge}


def _compare(expr: Any, op: str, value: Any) -> Any:
    if isinstance(value, bool):  # true/false columns only compare for (in)equality
        return expr.is_(value) if op == "==" else expr.is_not(value)
    return _OPS[op](expr, value)


def _condition(session: Session, f: RunFilter) -> Any:
    if f.field == "tags":  # value: a tag id (the service resolves names)
        has = exists().where(TrainingRunTagRow.training_run_id == TrainingRunRow.id,
                             TrainingRunTagRow.tag_id == f.value)
        return has if f.op == "==" else ~has
    if f.key is None:
        col = RUN_COLUMNS[f.field]
        if f.op == "contains":
            return func.lower(col).contains(str(f.value).lower(), autoescape=True)
        if f.op == "exists":
            return col.is_not(None) if f.value else col.is_(None)
        if f.op == "!=" and f.field == "completed":
            return (col != f.value) | col.is_(None)
        return _compare(col, f.op, f.value)
    number, text, present = _json_parts(session, f.field, f.key)
    if f.op == "exists":
        return present if f.value else ~present
    if f.op == "contains":
        return func.lower(text).contains(str(f.value).lower(), autoescape=True)
    expr = number if isinstance(f.value, (int, float)) and not isinstance(f.value, bool) else text
    if f.op == "!=":  # a run without the key differs from any value
        return (expr != f.value) | expr.is_(None)
    return _compare(expr, f.op, f.value)


def _order(session: Session, sort: RunSort) -> list[Any]:
    """ORDER BY for a sort: runs missing the sort key come last either way; ties by id."""
    tie = TrainingRunRow.id.asc() if sort.ascending else TrainingRunRow.id.desc()
    if sort.key is None:
        col = RUN_COLUMNS[sort.field]
        return [(col.asc() if sort.ascending else col.desc()).nulls_last(), tie]
    number, text, _ = _json_parts(session, sort.field, sort.key)
    return [*((e.asc() if sort.ascending else e.desc()).nulls_last() for e in (number, text)), tie]


def list_runs(session: Session, client_id: int, *, project_id: int | None = None,
              experiment_id: int | None = None, filters: Sequence[RunFilter] = (),
              include_deleted: bool = False, limit: int = 100, before: int | None = None,
              after: int | None = None, sort: RunSort | None = None,
              offset: int = 0) -> tuple[list[TrainingRun], int]:
    """Runs matching every filter. Without ``sort``: newest first, paged by id (``before``/``after``);
    with one: in that order, paged by ``offset``."""
    conds: list[Any] = [TrainingRunRow.client_id == client_id]
    if project_id is not None:
        conds.append(TrainingRunRow.project_id == project_id)
    if experiment_id is not None:
        conds.append(TrainingRunRow.experiment_id == experiment_id)
    if not include_deleted:
        conds.append(TrainingRunRow.deleted.is_(False))
    conds.extend(_condition(session, f) for f in filters)
    stmt = select(TrainingRunRow, ProjectRow.reference).join(ProjectRow, ProjectRow.id == TrainingRunRow.project_id)
    stmt = stmt.where(*conds)
    if sort is not None:
        stmt = stmt.order_by(*_order(session, sort)).offset(offset)
    else:
        if before is not None:
            stmt = stmt.where(TrainingRunRow.id < before)
        if after is not None:
            stmt = stmt.where(TrainingRunRow.id > after).order_by(TrainingRunRow.id.asc())
        else:
            stmt = stmt.order_by(TrainingRunRow.id.desc())
    rows = list(session.execute(stmt.limit(limit)).all())
    if sort is None and after is not None:
        rows.reverse()
    total = session.execute(select(func.count(TrainingRunRow.id)).where(*conds)).scalar_one()
    ids = [r.id for r, _ in rows]
    files, tags = _files_of(session, ids), _tags_of(session, ids)
    return [_run(r, ref, files[r.id], tags[r.id]) for r, ref in rows], total


def update_run(session: Session, run_id: int, **fields: Any) -> None:
    fields["updated"] = now()
    session.execute(update(TrainingRunRow).where(TrainingRunRow.id == run_id).values(**fields))


def runs_progress(session: Session, experiment_id: int) -> tuple[int, int, int]:
    """(active, finished, total) non-deleted runs of an AI experiment."""
    rows = session.execute(select(TrainingRunRow.state, func.count(TrainingRunRow.id)).where(
        TrainingRunRow.experiment_id == experiment_id, TrainingRunRow.deleted.is_(False))
        .group_by(TrainingRunRow.state)).all()
    counts = {state: n for state, n in rows}
    active = counts.get("active", 0)
    total = sum(counts.values())
    return active, total - active, total


def runs_by_observation(session: Session, experiment_id: int, observation_ids: Sequence[int]) -> list[TrainingRun]:
    if not observation_ids:
        return []
    rows = session.execute(select(TrainingRunRow, ProjectRow.reference)
                           .join(ProjectRow, ProjectRow.id == TrainingRunRow.project_id)
                           .where(TrainingRunRow.experiment_id == experiment_id,
                                  TrainingRunRow.observation_id.in_(observation_ids))).all()
    by_obs = {r.observation_id: (r, ref) for r, ref in rows}
    ids = [r.id for r, _ in rows]
    files, tags = _files_of(session, ids), _tags_of(session, ids)
    return [_run(by_obs[o][0], by_obs[o][1], files[by_obs[o][0].id], tags[by_obs[o][0].id])
            for o in observation_ids if o in by_obs]


def experiment_is_runs_only(session: Session, experiment_id: int) -> bool:
    return bool(session.execute(select(ExperimentRow.runs_only).where(ExperimentRow.id == experiment_id))
                .scalar_one_or_none())


# -- checkpoints ---------------------------------------------------------------------------
def _checkpoint(row: CheckpointRow) -> Checkpoint:
    stop = row.stopping or {}
    return Checkpoint(id=row.id, training_run_id=row.training_run_id, step=row.step,
                      values=tuple(MetricValue.from_json(v) for v in row.values), metadata=row.metadata_,
                      created=row.created, should_stop=bool(stop.get("should_stop")),
                      stopping_reasons=stop.get("stopping_reasons") or {})


def insert_checkpoint(session: Session, run_id: int, step: int, values: Sequence[MetricValue],
                      metadata: dict[str, Any] | None, stopping: dict[str, Any] | None = None) -> Checkpoint:
    row = CheckpointRow(training_run_id=run_id, step=step, values=[v.to_json() for v in values],
                        metadata_=metadata, created=now(), stopping=stopping)
    session.add(row)
    session.execute(update(TrainingRunRow).where(TrainingRunRow.id == run_id)
                    .values(checkpoint_count=TrainingRunRow.checkpoint_count + 1, updated=now()))
    session.flush()
    return _checkpoint(row)


def list_checkpoints(session: Session, run_id: int, *, limit: int = 100, before: int | None = None,
                     after: int | None = None) -> tuple[list[Checkpoint], int]:
    stmt = select(CheckpointRow).where(CheckpointRow.training_run_id == run_id)
    if before is not None:
        stmt = stmt.where(CheckpointRow.id < before)
    if after is not None:
        stmt = stmt.where(CheckpointRow.id > after).order_by(CheckpointRow.id.asc())
    else:
        stmt = stmt.order_by(CheckpointRow.id.desc())
    rows = list(session.execute(stmt.limit(limit)).scalars().all())
    if after is not None:
        rows.reverse()
    total = session.execute(select(func.count(CheckpointRow.id)).where(
        CheckpointRow.training_run_id == run_id)).scalar_one()
    return [_checkpoint(r) for r in rows], total


def get_checkpoint(session: Session, run_id: int, checkpoint_id: int) -> Checkpoint:
    row = session.execute(select(CheckpointRow).where(CheckpointRow.id == checkpoint_id,
                                                      CheckpointRow.training_run_id == run_id)).scalar_one_or_none()
    if row is None:
        raise NotFound(f"checkpoint {checkpoint_id} does not exist in training run {run_id}", field="checkpoint")
    return _checkpoint(row)


# -- files ---------------------------------------------------------------------------------
def _file(row: FileRow) -> StoredFile:
    return StoredFile(id=row.id, client_id=row.client_id, content_type=row.content_type,
                      content_length=row.content_length, training_run_id=row.training_run_id, name=row.name,
                      filename=row.filename, content_md5=row.content_md5, sha256=row.sha256,
                      uploaded=row.uploaded, created=row.created)


def insert_file(session: Session, *, client_id: int, run_id: int | None, name: str | None, filename: str | None,
                content_type: str, content_length: int, content_md5: str | None, sha256: str | None,
                upload_token_hash: str) -> StoredFile:
    row = FileRow(client_id=client_id, training_run_id=run_id, name=name, filename=filename,
                  content_type=content_type, content_length=content_length, content_md5=content_md5,
                  sha256=sha256, uploaded=False, upload_token_hash=upload_token_hash, created=now())
    session.add(row)
    session.flush()
    return _file(row)


def file_row(session: Session, file_id: int, *, client_id: int | None = None, lock: bool = False) -> FileRow:
    return scoped_row(session, FileRow, file_id, "file", client_id=client_id, lock=lock)


def get_file(session: Session, file_id: int, *, client_id: int | None = None, lock: bool = False) -> StoredFile:
    return _file(file_row(session, file_id, client_id=client_id, lock=lock))


def file_token_hash(session: Session, file_id: int) -> str | None:
    return file_row(session, file_id).upload_token_hash


def mark_file_uploaded(session: Session, file_id: int, sha256: str) -> StoredFile:
    session.execute(update(FileRow).where(FileRow.id == file_id)
                    .values(uploaded=True, sha256=sha256))  # the token hash stays: reuse answers 409
    return _file(file_row(session, file_id))


def set_file_md5(session: Session, file_id: int, content_md5: str) -> StoredFile:
    session.execute(update(FileRow).where(FileRow.id == file_id).values(content_md5=content_md5))
    return _file(file_row(session, file_id))


def archive_experiment_runs(session: Session, experiment_id: int) -> int:
    return session.execute(update(TrainingRunRow).where(TrainingRunRow.experiment_id == experiment_id)
                           .values(deleted=True, updated=now())).rowcount  # type: ignore[attr-defined]



def learning_curves(session: Session, experiment_id: int) -> dict[int, dict[str, list[float]]]:
    """``{run id: {metric: values in checkpoint order}}`` for the live runs of an experiment."""
    rows = session.execute(
        select(CheckpointRow.training_run_id, CheckpointRow.values)
        .join(TrainingRunRow, TrainingRunRow.id == CheckpointRow.training_run_id)
        .where(TrainingRunRow.experiment_id == experiment_id, TrainingRunRow.deleted.is_(False))
        .order_by(CheckpointRow.id)).all()
    out: dict[int, dict[str, list[float]]] = {}
    for run_id, values in rows:
        curves = out.setdefault(run_id, {})
        for v in values:
            if v.get("value") is not None:
                curves.setdefault(v["name"], []).append(float(v["value"]))
    return out


# -- tags ----------------------------------------------------------------------------------
def _tag(row: TagRow) -> Tag:
    return Tag(id=row.id, client_id=row.client_id, name=row.name, color=row.color, created=row.created)


def insert_tag(session: Session, client_id: int, name: str, color: str) -> Tag:
    row = TagRow(client_id=client_id, name=name, color=color, created=now())
    session.add(row)
    session.flush()
    return _tag(row)


def find_tag(session: Session, client_id: int, *, tag_id: int | None = None, name: str | None = None) -> Tag | None:
    """The team's tag with this id or name, or None (another team's tag is never found)."""
    stmt = select(TagRow).where(TagRow.client_id == client_id)
    stmt = stmt.where(TagRow.id == tag_id) if tag_id is not None else stmt.where(TagRow.name == name)
    row = session.execute(stmt).scalar_one_or_none()
    return _tag(row) if row else None


def get_tag(session: Session, client_id: int, tag_id: int) -> Tag:
    t = find_tag(session, client_id, tag_id=tag_id)
    if t is None:
        raise NotFound(f"tag {tag_id} does not exist", field="tag")
    return t


def list_tags(session: Session, client_id: int, *, limit: int = 100, before: int | None = None,
              after: int | None = None) -> tuple[list[Tag], int]:
    stmt = select(TagRow).where(TagRow.client_id == client_id)
    if before is not None:
        stmt = stmt.where(TagRow.id < before)
    if after is not None:
        stmt = stmt.where(TagRow.id > after).order_by(TagRow.id.asc())
    else:
        stmt = stmt.order_by(TagRow.id.desc())
    rows = list(session.execute(stmt.limit(limit)).scalars().all())
    if after is not None:
        rows.reverse()
    total = session.execute(select(func.count(TagRow.id)).where(TagRow.client_id == client_id)).scalar_one()
    return [_tag(r) for r in rows], total


def delete_tag(session: Session, tag_id: int) -> None:
    """Delete a tag and detach it from every run."""
    session.execute(delete(TrainingRunTagRow).where(TrainingRunTagRow.tag_id == tag_id))
    session.execute(delete(TagRow).where(TagRow.id == tag_id))


def run_tags(session: Session, run_id: int) -> list[int]:
    return _tags_of(session, [run_id])[run_id]


def set_run_tags(session: Session, run_id: int, add: Sequence[int] = (), remove: Sequence[int] = (),
                 replace: bool = False) -> None:
    """Attach ``add`` and detach ``remove`` (``replace``: the run keeps exactly ``add``)."""
    current = set(run_tags(session, run_id))
    drop = current - set(add) if replace else current & set(remove)
    if drop:
        session.execute(delete(TrainingRunTagRow).where(TrainingRunTagRow.training_run_id == run_id,
                                                        TrainingRunTagRow.tag_id.in_(drop)))
    for tid in dict.fromkeys(add):
        if tid not in current:
            session.add(TrainingRunTagRow(training_run_id=run_id, tag_id=tid))
    session.flush()
    session.execute(update(TrainingRunRow).where(TrainingRunRow.id == run_id).values(updated=now()))


def run_keys(session: Session, client_id: int, project_id: int) -> tuple[list[str], list[str]]:
    """The parameter names (assignment keys) and metric names (value keys) the project's runs use, sorted: the
    runs table's columns, read inside the JSON by the database (no run is loaded)."""
    where = (TrainingRunRow.client_id == client_id, TrainingRunRow.project_id == project_id,
             TrainingRunRow.deleted.is_(False))
    out: list[list[str]] = []
    for col, path in ((TrainingRunRow.assignments, ()), (TrainingRunRow.data, ("values",))):
        if session.get_bind().dialect.name == "postgresql":
            obj = func.json_extract_path(col, *path) if path else col
            keys = (select(func.json_object_keys(obj).label("key"))
                    .where(*where, func.json_typeof(obj) == "object").subquery())
            q = select(keys.c.key).distinct()
        else:
            each = (func.json_each(col, "$." + ".".join(path)) if path else func.json_each(col)).table_valued("key")
            q = (select(each.c.key).select_from(TrainingRunRow).join(each, true())
                 .where(*where, each.c.key.is_not(None)).distinct())
        out.append(sorted(str(k) for k in session.execute(q).scalars()))
    return out[0], out[1]
