"""Queries for run tracking: projects, training runs, checkpoints and file records.

Like :mod:`assay.store.repository`, every function takes a session (the caller owns the
transaction), scopes by client where the caller names one, and returns domain objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from assay.domain import Checkpoint, MetricValue, Project, StoredFile, TrainingRun
from assay.errors import NotFound
from assay.store.models import CheckpointRow, ExperimentRow, FileRow, ProjectRow, TrainingRunRow
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
def _run(row: TrainingRunRow, reference: str, files: Sequence[int] = ()) -> TrainingRun:
    return TrainingRun(
        id=row.id, name=row.name, project=reference, client_id=row.client_id, state=row.state,
        deleted=row.deleted, favorite=row.favorite, assignments=dict(row.assignments or {}),
        data=dict(row.data or {}), experiment_id=row.experiment_id, suggestion_id=row.suggestion_id,
        observation_id=row.observation_id, checkpoint_count=row.checkpoint_count, files=tuple(files),
        created=row.created, updated=row.updated, completed=row.completed,
    )


def _files_of(session: Session, run_ids: Sequence[int]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {r: [] for r in run_ids}
    if not run_ids:
        return out
    rows = session.execute(select(FileRow.training_run_id, FileRow.id).where(
        FileRow.training_run_id.in_(run_ids), FileRow.uploaded.is_(True)).order_by(FileRow.id)).all()
    for rid, fid in rows:
        out[rid].append(fid)
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
    return _run(row, ref, _files_of(session, [row.id])[row.id])


_FILTER_COLUMNS = {
    "experiment": TrainingRunRow.experiment_id,
    "state": TrainingRunRow.state,
    "name": TrainingRunRow.name,
    "deleted": TrainingRunRow.deleted,
    "favorite": TrainingRunRow.favorite,
    "id": TrainingRunRow.id,
    "created": TrainingRunRow.created,
    "updated": TrainingRunRow.updated,
}


def list_runs(session: Session, client_id: int, *, project_id: int | None = None,
              experiment_id: int | None = None, filters: Sequence[tuple[str, str, Any]] = (),
              include_deleted: bool = False, limit: int = 100, before: int | None = None,
              after: int | None = None) -> tuple[list[TrainingRun], int]:
    """Newest first. ``filters`` are ``(field, op, value)`` over the columns in ``_FILTER_COLUMNS``."""
    conds: list[Any] = [TrainingRunRow.client_id == client_id]
    if project_id is not None:
        conds.append(TrainingRunRow.project_id == project_id)
    if experiment_id is not None:
        conds.append(TrainingRunRow.experiment_id == experiment_id)
    if not include_deleted:
        conds.append(TrainingRunRow.deleted.is_(False))
    for name, op, value in filters:
        col = _FILTER_COLUMNS[name]
        conds.append({"==": col == value, "!=": col != value, "<": col < value, "<=": col <= value,
                      ">": col > value, ">=": col >= value}[op])
    stmt = select(TrainingRunRow, ProjectRow.reference).join(ProjectRow, ProjectRow.id == TrainingRunRow.project_id)
    stmt = stmt.where(*conds)
    if before is not None:
        stmt = stmt.where(TrainingRunRow.id < before)
    if after is not None:
        stmt = stmt.where(TrainingRunRow.id > after).order_by(TrainingRunRow.id.asc())
    else:
        stmt = stmt.order_by(TrainingRunRow.id.desc())
    rows = list(session.execute(stmt.limit(limit)).all())
    if after is not None:
        rows.reverse()
    total = session.execute(select(func.count(TrainingRunRow.id)).where(*conds)).scalar_one()
    files = _files_of(session, [r.id for r, _ in rows])
    return [_run(r, ref, files[r.id]) for r, ref in rows], total


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
    files = _files_of(session, [r.id for r, _ in rows])
    return [_run(by_obs[o][0], by_obs[o][1], files[by_obs[o][0].id]) for o in observation_ids if o in by_obs]


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
