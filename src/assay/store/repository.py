"""Queries. Every function takes a :class:`~sqlalchemy.orm.Session` (the caller owns the
transaction) and returns domain objects, never rows."""

from __future__ import annotations

import hashlib
import json
import time
import typing
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, Text, bindparam, case, cast, delete, func, insert, select, text, update
from sqlalchemy.orm import Session

from assay.domain import (
    Conditional,
    Experiment,
    LinearConstraint,
    Metric,
    MetricValue,
    Observation,
    ObservationColumns,
    Parameter,
    Progress,
    QueuedSuggestion,
    Suggestion,
    Task,
    total_cost,
)
from assay.errors import NotFound
from assay.store.models import (
    CandidateRow,
    ClientRow,
    ExperimentRow,
    ObservationRow,
    QueuedSuggestionRow,
    SuggestionRow,
)

__all__ = [
    "now",
    "ensure_client",
    "observation_columns",
    "insert_experiment",
    "experiment_row",
    "get_experiment",
    "experiment_for_suggestion",
    "list_experiments",
    "update_experiment",
    "bump_suggested",
    "insert_suggestion",
    "get_suggestion",
    "find_suggestion_by_key",
    "list_suggestions",
    "count_open_suggestions",
    "update_suggestion",
    "delete_suggestions",
    "insert_observation",
    "get_observation",
    "find_observation_by_key",
    "list_observations",
    "all_observations",
    "update_observation",
    "delete_observations",
    "observation_stats",
    "insert_queued",
    "list_queued",
    "get_queued",
    "pop_queued",
    "experiment_marker",
    "delete_queued",
    "has_queued",
    "close_suggestion",
    "observation_marker",
    "observations_after",
    "observation_ids_after",
    "observations_by_id",
    "bump_observations_version",
    "insert_candidates",
    "claim_candidate",
    "count_candidates",
    "delete_candidates",
    "take_supply_lease",
    "release_supply_lease",
    "get_experiment_digest",
    "hot_suggest",
    "hot_observe",
    "hot_read_experiment",
]


def now() -> int:
    return int(time.time())


def _task(d: dict[str, Any] | None) -> Task | None:
    return Task.from_json(d) if d else None


# -- clients -------------------------------------------------------------------------------
def ensure_client(session: Session, client_id: int = 1, name: str = "default") -> int:
    """Create the client row if missing; safe when several server processes start at once."""
    if session.get(ClientRow, client_id) is not None:
        return client_id
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt = pg_insert(ClientRow).values(id=client_id, name=name, created=now()).on_conflict_do_nothing()
        if session.execute(stmt).rowcount:  # type: ignore[attr-defined]
            # An explicit id does not move the SERIAL sequence: keep it ahead of the largest id.
            session.execute(text("SELECT setval(pg_get_serial_sequence('clients', 'id'), "
                                 "(SELECT max(id) FROM clients))"))
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        session.execute(sqlite_insert(ClientRow).values(id=client_id, name=name, created=now())
                        .on_conflict_do_nothing())
    else:
        session.add(ClientRow(id=client_id, name=name, created=now()))
        session.flush()
    return client_id


# -- experiments ---------------------------------------------------------------------------
def _definition(d: dict[str, Any]) -> dict[str, Any]:
    """The Experiment fields stored in the ``definition`` JSON."""
    return dict(
        parameters=tuple(Parameter.from_json(p) for p in d.get("parameters", [])),
        metrics=tuple(Metric.from_json(m) for m in d.get("metrics", [])),
        conditionals=tuple(Conditional.from_json(c) for c in d.get("conditionals", [])),
        linear_constraints=tuple(LinearConstraint.from_json(c) for c in d.get("linear_constraints", [])),
        tasks=tuple(Task.from_json(t) for t in d.get("tasks", [])),
        num_solutions=d.get("num_solutions"),
        training_monitor=d.get("training_monitor"),
    )


#: definition JSON text -> (parsed fields (immutable domain objects), MD5 of the text)
_DEFINITIONS: dict[str, tuple[dict[str, Any], str]] = {}


def _parsed_definition(raw: str) -> tuple[dict[str, Any], str]:
    """Parsed once per process per distinct definition text (the hot request path reads it every time),
    with its digest (what :func:`hot_observe` checks the stored definition against)."""
    got = _DEFINITIONS.get(raw)
    if got is None:
        got = (_definition(json.loads(raw)), hashlib.md5(raw.encode("utf-8")).hexdigest())
        if len(_DEFINITIONS) > 256:
            _DEFINITIONS.clear()
        _DEFINITIONS[raw] = got
    return got


def _definition_of_text(raw: str) -> dict[str, Any]:
    return _parsed_definition(raw)[0]


def _experiment(row: ExperimentRow, progress: Progress | None = None) -> Experiment:
    return Experiment(
        id=row.id,
        name=row.name,
        type=row.type,
        state=row.state,
        observation_budget=row.observation_budget,
        parallel_bandwidth=row.parallel_bandwidth,
        **_definition(row.definition),
        metadata=row.metadata_,
        project=row.project,
        client_id=row.client_id,
        development=row.development,
        runs_only=row.runs_only,
        created=row.created,
        updated=row.updated,
        progress=progress,
    )


def insert_experiment(session: Session, exp: Experiment, seed: int) -> Experiment:
    t = now()
    row = ExperimentRow(
        client_id=exp.client_id, name=exp.name, type=exp.type, state="active", created=t, updated=t,
        project=exp.project, observation_budget=exp.observation_budget,
        parallel_bandwidth=exp.parallel_bandwidth, development=exp.development, runs_only=exp.runs_only,
        definition=exp.definition(), metadata_=exp.metadata, n_suggested=0, seed=seed,
    )
    session.add(row)
    session.flush()
    return _experiment(row)


def scoped_row(session: Session, model: Any, row_id: int, what: str, *, client_id: int | None = None,
               lock: bool = False) -> Any:
    """The ``model`` row with ``row_id`` owned by ``client_id`` (any owner when None), locked
    ``FOR UPDATE`` when ``lock``; :class:`NotFound` naming ``what`` otherwise (another team's row
    answers exactly like a missing one)."""
    stmt = select(model).where(model.id == row_id)
    if client_id is not None:
        stmt = stmt.where(model.client_id == client_id)
    if lock:
        stmt = stmt.with_for_update()
    row = session.execute(stmt).scalar_one_or_none()
    if row is None:
        raise NotFound(f"{what.replace('_', ' ')} {row_id} does not exist", field=what)
    return row


def experiment_row(session: Session, experiment_id: int, *, lock: bool = False,
                   client_id: int | None = None) -> ExperimentRow:
    """The row, locked ``FOR UPDATE`` when ``lock`` (serializes writers on PostgreSQL)."""
    return scoped_row(session, ExperimentRow, experiment_id, "experiment", client_id=client_id, lock=lock)


# The hot request path reads experiments with prebuilt Core statements (no ORM objects, statement
# cache keys computed once) and parses each distinct definition once per process.
_E = typing.cast(Table, ExperimentRow.__table__)
_EXP_SELECT = select(
    _E.c.id, _E.c.name, _E.c.type, _E.c.state, _E.c.observation_budget, _E.c.parallel_bandwidth,
    cast(_E.c.definition, Text).label("definition"), _E.c.metadata, _E.c.project, _E.c.client_id,
    _E.c.development, _E.c.runs_only, _E.c.created, _E.c.updated, _E.c.seed, _E.c.n_suggested, _E.c.n_queued,
).where(_E.c.id == bindparam("eid"))
_EXP_BY_CLIENT = _EXP_SELECT.where(_E.c.client_id == bindparam("cid"))
_EXP_STATEMENTS = {(False, False): _EXP_SELECT, (True, False): _EXP_BY_CLIENT,
                   (False, True): _EXP_SELECT.with_for_update(), (True, True): _EXP_BY_CLIENT.with_for_update()}


def _experiment_core(session: Session, experiment_id: int, lock: bool, client_id: int | None) -> Any:
    params: dict[str, Any] = {"eid": experiment_id}
    if client_id is not None:
        params["cid"] = client_id
    row = session.connection().execute(_EXP_STATEMENTS[client_id is not None, lock], params).one_or_none()
    if row is None:
        raise NotFound(f"experiment {experiment_id} does not exist", field="experiment")
    return _experiment_of_row(row), row


def _experiment_of_row(row: Any) -> Experiment:
    """An Experiment from a row with :data:`_EXP_SELECT`'s columns (the definition as JSON text)."""
    return Experiment(
        id=row.id, name=row.name, type=row.type, state=row.state, observation_budget=row.observation_budget,
        parallel_bandwidth=row.parallel_bandwidth, **_definition_of_text(row.definition), metadata=row.metadata,
        project=row.project, client_id=row.client_id, development=bool(row.development),
        runs_only=bool(row.runs_only), created=row.created, updated=row.updated)


def get_experiment(session: Session, experiment_id: int, *, lock: bool = False,
                   client_id: int | None = None) -> tuple[Experiment, int, int]:
    """The experiment, its seed and the count of suggestions ever made (locked ``FOR UPDATE`` when ``lock``)."""
    exp, row = _experiment_core(session, experiment_id, lock, client_id)
    return exp, row.seed, row.n_suggested


def get_experiment_digest(session: Session, experiment_id: int, *, client_id: int | None = None
                          ) -> tuple[Experiment, str]:
    """The experiment and the digest of its stored definition (see :func:`hot_observe`)."""
    exp, row = _experiment_core(session, experiment_id, False, client_id)
    return exp, _parsed_definition(row.definition)[1]


def experiment_for_suggestion(session: Session, experiment_id: int, *, client_id: int | None = None
                              ) -> tuple[Experiment, int]:
    """The experiment and how many queued suggestions wait, in one read."""
    exp, row = _experiment_core(session, experiment_id, False, client_id)
    return exp, row.n_queued


def list_experiments(session: Session, *, client_id: int | None = None, state: str | None = None,
                     project: str | None = None, limit: int = 100, before: int | None = None,
                     after: int | None = None) -> tuple[list[Experiment], int]:
    """Newest first; ``before``/``after`` are id cursors."""
    stmt = select(ExperimentRow)
    count = select(func.count(ExperimentRow.id))
    conds = []
    if client_id is not None:
        conds.append(ExperimentRow.client_id == client_id)
    if state is not None:
        conds.append(ExperimentRow.state == state)
    if project is not None:
        conds.append(ExperimentRow.project == project)
    for c in conds:
        stmt, count = stmt.where(c), count.where(c)
    if before is not None:
        stmt = stmt.where(ExperimentRow.id < before)
    if after is not None:
        stmt = stmt.where(ExperimentRow.id > after).order_by(ExperimentRow.id.asc())
    else:
        stmt = stmt.order_by(ExperimentRow.id.desc())
    rows = session.execute(stmt.limit(limit)).scalars().all()
    if after is not None:
        rows = list(reversed(rows))
    total = session.execute(count).scalar_one()
    return [_experiment(r) for r in rows], total


def update_experiment(session: Session, experiment_id: int, **fields: Any) -> None:
    if "metadata" in fields:
        fields["metadata_"] = fields.pop("metadata")
    fields["updated"] = now()
    session.execute(update(ExperimentRow).where(ExperimentRow.id == experiment_id).values(**fields))


def bump_suggested(session: Session, experiment_id: int, n: int = 1) -> None:
    session.execute(update(ExperimentRow).where(ExperimentRow.id == experiment_id)
                    .values(n_suggested=ExperimentRow.n_suggested + n))


# -- suggestions ---------------------------------------------------------------------------
def _suggestion(row: SuggestionRow) -> Suggestion:
    return Suggestion(id=row.id, experiment_id=row.experiment_id, assignments=row.assignments,
                      state=row.state, task=_task(row.task), metadata=row.metadata_, created=row.created,
                      deleted=row.deleted, source=row.source)


_S = typing.cast(Table, SuggestionRow.__table__)
_INSERT_SUGGESTION = insert(_S).returning(_S.c.id)


def insert_suggestion(session: Session, experiment_id: int, assignments: dict[str, Any], *,
                      task: Task | None = None, metadata: dict[str, Any] | None = None,
                      source: str | None = None, idempotency_key: str | None = None) -> Suggestion:
    t = now()
    tj = task.to_json() if task else None
    sid = session.connection().execute(_INSERT_SUGGESTION, {
        "experiment_id": experiment_id, "assignments": assignments, "task": tj, "metadata": metadata,
        "state": "open", "deleted": False, "created": t, "source": source, "idempotency_key": idempotency_key,
    }).scalar_one()
    return Suggestion(id=sid, experiment_id=experiment_id, assignments=assignments, state="open", task=task,
                      metadata=metadata, created=t, deleted=False, source=source)


def get_suggestion(session: Session, experiment_id: int, suggestion_id: int, *,
                   include_deleted: bool = False, lock: bool = False) -> Suggestion:
    stmt = select(SuggestionRow).where(SuggestionRow.id == suggestion_id,
                                       SuggestionRow.experiment_id == experiment_id)
    if not include_deleted:
        stmt = stmt.where(SuggestionRow.deleted.is_(False))
    if lock:
        stmt = stmt.with_for_update()
    row = session.execute(stmt).scalar_one_or_none()
    if row is None:
        raise NotFound(f"suggestion {suggestion_id} does not exist in experiment {experiment_id}",
                       field="suggestion")
    return _suggestion(row)


_CLOSE_SUGGESTION = (update(_S).where(_S.c.id == bindparam("sid"), _S.c.experiment_id == bindparam("eid"),
                                      _S.c.state == "open", _S.c.deleted.is_(False))
                     .values(state="closed").returning(_S.c.assignments, _S.c.task))


def close_suggestion(session: Session, experiment_id: int, suggestion_id: int
                     ) -> tuple[dict[str, Any], Task | None] | None:
    """Mark an open, undeleted suggestion closed (locking its row) and return its (assignments, task);
    None when it is not open (then :func:`get_suggestion` tells why)."""
    row = session.connection().execute(_CLOSE_SUGGESTION, {"sid": suggestion_id, "eid": experiment_id}
                                       ).one_or_none()
    return None if row is None else (row.assignments, _task(row.task))


def find_suggestion_by_key(session: Session, experiment_id: int, key: str) -> Suggestion | None:
    """The suggestion an earlier create with this ``Idempotency-Key`` made (deleted ones too)."""
    row = session.execute(select(SuggestionRow).where(
        SuggestionRow.experiment_id == experiment_id, SuggestionRow.idempotency_key == key)
    ).scalar_one_or_none()
    return _suggestion(row) if row else None


def list_suggestions(session: Session, experiment_id: int, *, state: str | None = None,
                     limit: int | None = None, before: int | None = None,
                     after: int | None = None) -> tuple[list[Suggestion], int]:
    base = [SuggestionRow.experiment_id == experiment_id, SuggestionRow.deleted.is_(False)]
    if state is not None:
        base.append(SuggestionRow.state == state)
    stmt = select(SuggestionRow).where(*base)
    if before is not None:
        stmt = stmt.where(SuggestionRow.id < before)
    if after is not None:
        stmt = stmt.where(SuggestionRow.id > after).order_by(SuggestionRow.id.asc())
    else:
        stmt = stmt.order_by(SuggestionRow.id.desc())
    if limit is not None:
        stmt = stmt.limit(limit)
    rows = list(session.execute(stmt).scalars().all())
    if after is not None:
        rows.reverse()
    total = session.execute(select(func.count(SuggestionRow.id)).where(*base)).scalar_one()
    return [_suggestion(r) for r in rows], total


_COUNT_OPEN = select(func.count(_S.c.id)).where(_S.c.experiment_id == bindparam("eid"), _S.c.deleted.is_(False),
                                                _S.c.state == "open")


def count_open_suggestions(session: Session, experiment_id: int) -> int:
    return session.connection().execute(_COUNT_OPEN, {"eid": experiment_id}).scalar_one()


def update_suggestion(session: Session, suggestion_id: int, **fields: Any) -> None:
    if "metadata" in fields:
        fields["metadata_"] = fields.pop("metadata")
    session.execute(update(SuggestionRow).where(SuggestionRow.id == suggestion_id).values(**fields))


def delete_suggestions(session: Session, experiment_id: int, *, suggestion_id: int | None = None,
                       state: str | None = None) -> int:
    """Soft delete; returns how many rows changed."""
    stmt = update(SuggestionRow).where(SuggestionRow.experiment_id == experiment_id,
                                       SuggestionRow.deleted.is_(False))
    if suggestion_id is not None:
        stmt = stmt.where(SuggestionRow.id == suggestion_id)
    if state is not None:
        stmt = stmt.where(SuggestionRow.state == state)
    return session.execute(stmt.values(deleted=True)).rowcount  # type: ignore[attr-defined]


# -- observations --------------------------------------------------------------------------
def _observation(row: ObservationRow) -> Observation:
    return Observation(
        id=row.id, experiment_id=row.experiment_id, assignments=row.assignments,
        values=tuple(MetricValue.from_json(v) for v in row.values), failed=row.failed,
        suggestion_id=row.suggestion_id, task=_task(row.task), metadata=row.metadata_, created=row.created,
    )


_O = typing.cast(Table, ObservationRow.__table__)
_INSERT_OBSERVATION = insert(_O).returning(_O.c.id)


def insert_observation(session: Session, experiment_id: int, *, assignments: dict[str, Any],
                       values: Sequence[MetricValue], failed: bool, suggestion_id: int | None,
                       task: Task | None, metadata: dict[str, Any] | None,
                       idempotency_key: str | None = None) -> Observation:
    t = now()
    oid = session.connection().execute(_INSERT_OBSERVATION, {
        "experiment_id": experiment_id, "suggestion_id": suggestion_id, "assignments": assignments,
        "values": [v.to_json() for v in values], "failed": failed, "task": task.to_json() if task else None,
        "metadata": metadata, "created": t, "cost": task.cost if task else 1.0, "idempotency_key": idempotency_key,
    }).scalar_one()
    return Observation(id=oid, experiment_id=experiment_id, assignments=assignments, values=tuple(values),
                       failed=failed, suggestion_id=suggestion_id, task=task, metadata=metadata, created=t)


def get_observation(session: Session, experiment_id: int, observation_id: int) -> Observation:
    row = session.execute(select(ObservationRow).where(
        ObservationRow.id == observation_id, ObservationRow.experiment_id == experiment_id)).scalar_one_or_none()
    if row is None:
        raise NotFound(f"observation {observation_id} does not exist in experiment {experiment_id}",
                       field="observation")
    return _observation(row)


def find_observation_by_key(session: Session, experiment_id: int, key: str) -> Observation | None:
    row = session.execute(select(ObservationRow).where(
        ObservationRow.experiment_id == experiment_id, ObservationRow.idempotency_key == key)
    ).scalar_one_or_none()
    return _observation(row) if row else None


def list_observations(session: Session, experiment_id: int, *, limit: int | None = None,
                      before: int | None = None, after: int | None = None) -> tuple[list[Observation], int]:
    stmt = select(ObservationRow).where(ObservationRow.experiment_id == experiment_id)
    if before is not None:
        stmt = stmt.where(ObservationRow.id < before)
    if after is not None:
        stmt = stmt.where(ObservationRow.id > after).order_by(ObservationRow.id.asc())
    else:
        stmt = stmt.order_by(ObservationRow.id.desc())
    if limit is not None:
        stmt = stmt.limit(limit)
    rows = list(session.execute(stmt).scalars().all())
    if after is not None:
        rows.reverse()
    total = session.execute(select(func.count(ObservationRow.id)).where(
        ObservationRow.experiment_id == experiment_id)).scalar_one()
    return [_observation(r) for r in rows], total


def all_observations(session: Session, experiment_id: int) -> list[Observation]:
    """Every observation, oldest first."""
    rows = session.execute(select(ObservationRow).where(ObservationRow.experiment_id == experiment_id)
                           .order_by(ObservationRow.id.asc())).scalars().all()
    return [_observation(r) for r in rows]


def observation_columns(session: Session, experiment_id: int) -> ObservationColumns:
    """Every observation as columns, oldest first: one query, JSON decoded in a single pass."""
    rows = session.execute(select(
        ObservationRow.id, ObservationRow.created, ObservationRow.failed, ObservationRow.suggestion_id,
        ObservationRow.cost, cast(ObservationRow.task, Text), cast(ObservationRow.assignments, Text),
        cast(ObservationRow.values, Text)).where(ObservationRow.experiment_id == experiment_id)
        .order_by(ObservationRow.id.asc())).all()
    # one json.loads over the whole result is several times faster than one per cell
    decoded = json.loads("[" + ",".join(f"[{r[5] or 'null'},{r[6] or '{}'},{r[7] or '[]'}]" for r in rows) + "]")
    return ObservationColumns(
        id=[r[0] for r in rows], created=[r[1] for r in rows], failed=[bool(r[2]) for r in rows],
        suggestion_id=[r[3] for r in rows], cost=[float(r[4]) for r in rows],
        task=[t["name"] if t else None for t, _, _ in decoded], assignments=[a for _, a, _ in decoded],
        values=[{v["name"]: v["value"] for v in vs} for _, _, vs in decoded])


def update_observation(session: Session, observation_id: int, **fields: Any) -> None:
    if "metadata" in fields:
        fields["metadata_"] = fields.pop("metadata")
    if "values" in fields:
        fields["values"] = [v.to_json() for v in fields["values"]]
    if "task" in fields:
        task = fields["task"]
        fields["task"] = task.to_json() if task else None
        fields["cost"] = task.cost if task else 1.0
    session.execute(update(ObservationRow).where(ObservationRow.id == observation_id).values(**fields))


def delete_observations(session: Session, experiment_id: int, observation_id: int | None = None) -> int:
    stmt = delete(ObservationRow).where(ObservationRow.experiment_id == experiment_id)
    if observation_id is not None:
        stmt = stmt.where(ObservationRow.id == observation_id)
    return session.execute(stmt).rowcount  # type: ignore[attr-defined]


def observation_stats(session: Session, experiment_id: int) -> tuple[int, int, float]:
    """(count, failed count, budget consumed)."""
    count, failed, cost = session.execute(select(
        func.count(ObservationRow.id),
        func.coalesce(func.sum(case((ObservationRow.failed.is_(True), 1), else_=0)), 0),
        func.coalesce(func.sum(ObservationRow.cost), 0.0),
    ).where(ObservationRow.experiment_id == experiment_id)).one()
    return int(count), int(failed), total_cost([cost])


# -- queued suggestions --------------------------------------------------------------------
def _queued(row: QueuedSuggestionRow) -> QueuedSuggestion:
    return QueuedSuggestion(id=row.id, experiment_id=row.experiment_id, assignments=row.assignments,
                            task=_task(row.task), created=row.created)


def insert_queued(session: Session, experiment_id: int, assignments: dict[str, Any],
                  task: Task | None = None) -> QueuedSuggestion:
    row = QueuedSuggestionRow(experiment_id=experiment_id, assignments=assignments,
                              task=task.to_json() if task else None, created=now())
    session.add(row)
    session.flush()
    _count_queued(session, experiment_id, 1)
    return _queued(row)


def _count_queued(session: Session, experiment_id: int, n: int) -> None:
    session.execute(update(ExperimentRow).where(ExperimentRow.id == experiment_id)
                    .values(n_queued=ExperimentRow.n_queued + n))


def list_queued(session: Session, experiment_id: int) -> list[QueuedSuggestion]:
    rows = session.execute(select(QueuedSuggestionRow).where(QueuedSuggestionRow.experiment_id == experiment_id)
                           .order_by(QueuedSuggestionRow.id.asc())).scalars().all()
    return [_queued(r) for r in rows]


def get_queued(session: Session, experiment_id: int, queued_id: int) -> QueuedSuggestion:
    row = session.execute(select(QueuedSuggestionRow).where(
        QueuedSuggestionRow.id == queued_id, QueuedSuggestionRow.experiment_id == experiment_id)
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"queued suggestion {queued_id} does not exist in experiment {experiment_id}",
                       field="queued_suggestion")
    return _queued(row)


def pop_queued(session: Session, experiment_id: int) -> QueuedSuggestion | None:
    """Remove and return the oldest queued suggestion no concurrent transaction is taking
    (``SKIP LOCKED`` on PostgreSQL; SQLite serializes writers)."""
    row = session.execute(select(QueuedSuggestionRow).where(QueuedSuggestionRow.experiment_id == experiment_id)
                          .order_by(QueuedSuggestionRow.id.asc()).limit(1)
                          .with_for_update(skip_locked=True)).scalar_one_or_none()
    if row is None:
        return None
    q = _queued(row)
    session.delete(row)
    session.flush()
    _count_queued(session, experiment_id, -1)
    return q


def delete_queued(session: Session, experiment_id: int, queued_id: int) -> int:
    n = session.execute(delete(QueuedSuggestionRow).where(
        QueuedSuggestionRow.experiment_id == experiment_id, QueuedSuggestionRow.id == queued_id)
    ).rowcount  # type: ignore[attr-defined]
    if n:
        _count_queued(session, experiment_id, -n)
    return n


def has_queued(session: Session, experiment_id: int) -> bool:
    """Whether queued suggestions wait (from the experiment's counter, no scan)."""
    return bool(session.execute(select(ExperimentRow.n_queued).where(ExperimentRow.id == experiment_id))
                .scalar_one_or_none())


# -- dashboard -----------------------------------------------------------------------------
def experiment_marker(session: Session, experiment_id: int) -> tuple[int, ...]:
    """Cheap change marker: (observation count, newest observation id, observations version (bumped by edits
    and deletions), open suggestion rows, newest open suggestion id, queued rows, newest queued id)."""
    n_sug, last_sug = session.execute(
        select(func.count(SuggestionRow.id), func.coalesce(func.max(SuggestionRow.id), 0))
        .where(SuggestionRow.experiment_id == experiment_id, SuggestionRow.deleted.is_(False),
               SuggestionRow.state == "open")).one()
    n_queued, last_queued = session.execute(
        select(func.count(QueuedSuggestionRow.id), func.coalesce(func.max(QueuedSuggestionRow.id), 0))
        .where(QueuedSuggestionRow.experiment_id == experiment_id)).one()
    return (*observation_marker(session, experiment_id), int(n_sug), int(last_sug), int(n_queued), int(last_queued))


# -- observation summaries -----------------------------------------------------------------
_OBS_MARKER = select(
    func.count(_O.c.id), func.coalesce(func.max(_O.c.id), 0),
    select(_E.c.observations_version).where(_E.c.id == bindparam("eid")).scalar_subquery(),
).where(_O.c.experiment_id == bindparam("eid"))


def observation_marker(session: Session, experiment_id: int) -> tuple[int, int, int]:
    """(count, newest id, version): what a cached summary of the observations must match."""
    count, last, v = session.connection().execute(_OBS_MARKER, {"eid": experiment_id}).one()
    return int(count), int(last), int(v or 0)


_OBS_AFTER = (select(_O.c.id, _O.c.experiment_id, _O.c.assignments, _O.c["values"], _O.c.failed, _O.c.suggestion_id,
                     _O.c.task, _O.c.metadata, _O.c.created)
              .where(_O.c.experiment_id == bindparam("eid"), _O.c.id > bindparam("after"))
              .order_by(_O.c.id.asc()))


def _observations_core(rows: Sequence[Any]) -> list[Observation]:
    return [Observation(id=r.id, experiment_id=r.experiment_id, assignments=r.assignments,
                        values=tuple(MetricValue.from_json(v) for v in r[3]), failed=r.failed,
                        suggestion_id=r.suggestion_id, task=_task(r.task), metadata=r.metadata, created=r.created)
            for r in rows]


def observations_after(session: Session, experiment_id: int, after_id: int) -> list[Observation]:
    """Observations with an id above ``after_id``, oldest first."""
    return _observations_core(session.connection().execute(
        _OBS_AFTER, {"eid": experiment_id, "after": after_id}).all())


_OBS_IDS_AFTER = select(_O.c.id).where(_O.c.experiment_id == bindparam("eid"), _O.c.id > bindparam("after"))


def observation_ids_after(session: Session, experiment_id: int, after_id: int) -> list[int]:
    """Ids of the observations above ``after_id`` (from the index alone)."""
    return list(session.connection().execute(_OBS_IDS_AFTER, {"eid": experiment_id, "after": after_id}).scalars())


def observations_by_id(session: Session, experiment_id: int, ids: Sequence[int]) -> list[Observation]:
    """These observations of the experiment, oldest first."""
    if not ids:
        return []
    stmt = _OBS_AFTER.where(_O.c.id.in_(list(ids)))
    return _observations_core(session.connection().execute(stmt, {"eid": experiment_id, "after": 0}).all())


def bump_observations_version(session: Session, experiment_id: int) -> None:
    """Stored observations changed other than by insertion: cached summaries are void."""
    session.execute(update(ExperimentRow).where(ExperimentRow.id == experiment_id)
                    .values(observations_version=ExperimentRow.observations_version + 1))


# -- precomputed candidates ----------------------------------------------------------------
def insert_candidates(session: Session, experiment_id: int,
                      candidates: Sequence[tuple[dict[str, Any], Task | None, str]], basis: int,
                      refill_at: int = 0) -> None:
    """Store ``(assignments, task, source)`` candidates computed on ``basis`` observations; claiming
    the one ``refill_at`` from the end (in claim order) says the stock runs low."""
    if not candidates:
        return
    t = time.time()
    mark = max(0, len(candidates) - 1 - refill_at)
    session.execute(insert(CandidateRow), [
        {"experiment_id": experiment_id, "assignments": a, "task": task.to_json() if task else None,
         "source": source, "basis": basis, "refill": i == mark, "created": t}
        for i, (a, task, source) in enumerate(candidates)])


def _fresh(experiment_id: int, min_basis: int | None) -> list[Any]:
    conds = [CandidateRow.experiment_id == experiment_id]
    if min_basis is not None:
        conds.append((CandidateRow.basis < 0) | (CandidateRow.basis >= min_basis))
    return conds


def _claim_statement(fresh_only: bool) -> Any:
    c = CandidateRow.__table__.c
    conds = [c.experiment_id == bindparam("eid")]
    if fresh_only:
        conds.append((c.basis < 0) | (c.basis >= bindparam("min_basis")))
    pick = (select(c.id).where(*conds).order_by(c.basis.desc(), c.id.asc()).limit(1)
            .with_for_update(skip_locked=True).scalar_subquery())
    return (delete(typing.cast(Table, CandidateRow.__table__)).where(c.id == pick)
            .returning(c.assignments, c.task, c.source, c.basis, c.refill))


_CLAIM = {False: _claim_statement(False), True: _claim_statement(True)}


def claim_candidate(session: Session, experiment_id: int, min_basis: int | None
                    ) -> tuple[dict[str, Any], Task | None, str, int, bool] | None:
    """Take (delete and return) the best unclaimed candidate computed on at least ``min_basis``
    observations (any when None): ``(assignments, task, source, basis, refill)``, in one statement.
    Concurrent transactions skip each other's rows (PostgreSQL ``FOR UPDATE SKIP LOCKED``; SQLite
    serializes writers), so each candidate is served once."""
    params: dict[str, Any] = {"eid": experiment_id}
    if min_basis is not None:
        params["min_basis"] = min_basis
    row = session.connection().execute(_CLAIM[min_basis is not None], params).one_or_none()
    if row is None:
        return None
    return row.assignments, _task(row.task), row.source or "", row.basis, bool(row.refill)


def count_candidates(session: Session, experiment_id: int, min_basis: int | None, *, limit: int = 1000) -> int:
    """Unclaimed candidates on at least ``min_basis`` observations (counted up to ``limit``)."""
    sub = select(CandidateRow.id).where(*_fresh(experiment_id, min_basis)).limit(limit).subquery()
    return int(session.execute(select(func.count()).select_from(sub)).scalar_one())


def list_candidates(session: Session, experiment_id: int, min_basis: int | None
                    ) -> list[tuple[dict[str, Any], Task | None]]:
    """Unclaimed model candidates (``basis >= 0``) on at least ``min_basis`` observations (any when
    None): ``(assignments, task)`` in claim order."""
    c = CandidateRow
    conds = [c.experiment_id == experiment_id, c.basis >= (0 if min_basis is None else max(0, min_basis))]
    rows = session.execute(select(c.assignments, c.task).where(*conds).order_by(c.basis.desc(), c.id.asc()))
    return [(r.assignments, _task(r.task)) for r in rows]


def delete_candidates(session: Session, experiment_id: int, *, below_basis: int | None = None) -> int:
    """Drop candidates (those computed on fewer than ``below_basis`` observations, or all)."""
    stmt = delete(CandidateRow).where(CandidateRow.experiment_id == experiment_id)
    if below_basis is not None:
        stmt = stmt.where(CandidateRow.basis >= 0, CandidateRow.basis < below_basis)
    return session.execute(stmt).rowcount  # type: ignore[attr-defined]


def take_supply_lease(session: Session, experiment_id: int, owner: str, until: float, now_: float) -> bool:
    """Become the one process computing this experiment's candidates until ``until`` (or stay it)."""
    stmt = update(ExperimentRow).where(
        ExperimentRow.id == experiment_id,
        (ExperimentRow.supply_owner.is_(None)) | (ExperimentRow.supply_owner == owner)
        | (ExperimentRow.supply_until < now_),
    ).values(supply_owner=owner, supply_until=until)
    return bool(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


def release_supply_lease(session: Session, experiment_id: int, owner: str) -> None:
    session.execute(update(ExperimentRow).where(ExperimentRow.id == experiment_id,
                                                ExperimentRow.supply_owner == owner)
                    .values(supply_owner=None, supply_until=None))


# -- hot requests in one statement (PostgreSQL) --------------------------------------------
# The worker loop's two writes as one autocommit statement each (one round trip instead of BEGIN,
# three statements and COMMIT; most of a request's CPU, the server's and PostgreSQL's, is per
# round trip). A statement is atomic and sees one snapshot, so each does exactly what the
# transaction it replaces does when everything is in order; when anything is not (another
# experiment type or state, queued suggestions, an empty stock, a closed suggestion, an edited
# definition) it changes nothing and the caller takes the general path, which says why.
# They run on the psycopg connection itself (no SQLAlchemy execution layer: most of what is left).

_HOT_EXPERIMENT = """SELECT id, name, type, state, observation_budget, parallel_bandwidth,
  definition::text AS definition, metadata, project, client_id, development, runs_only, created, updated, n_queued,
  observations_version
  FROM experiments WHERE id = %(eid)s AND (%(cid)s::integer IS NULL OR client_id = %(cid)s::integer)"""

_HOT_SUGGEST = f"""WITH e AS ({_HOT_EXPERIMENT}),
claimed AS (
  DELETE FROM candidates WHERE id = (
    SELECT c.id FROM candidates c WHERE c.experiment_id = %(eid)s
      AND EXISTS (SELECT 1 FROM e WHERE e.type = 'random' AND e.state = 'active' AND NOT e.runs_only
                  AND NOT e.development AND e.n_queued = 0)
    ORDER BY c.basis DESC, c.id ASC LIMIT 1 FOR UPDATE SKIP LOCKED)
  RETURNING assignments, task, source, refill),
made AS (
  INSERT INTO suggestions (experiment_id, assignments, task, metadata, state, deleted, created, source,
                           idempotency_key)
  SELECT %(eid)s, assignments, task, %(metadata)s::json, 'open', false, %(created)s::bigint, source,
         %(key)s::varchar FROM claimed
  RETURNING id, assignments, task, source)
SELECT e.*, made.id AS suggestion_id, made.assignments, made.task, made.source,
       (SELECT refill FROM claimed) AS refill
  FROM e LEFT JOIN made ON true"""


def _json(value: Any) -> Any:
    from psycopg.types.json import Json

    return None if value is None else Json(value)


def _execute_hot(conn: Any, sql: str, params: dict[str, Any]) -> Any:
    """One statement on a psycopg connection; its IntegrityError as SQLAlchemy's (what callers catch)."""
    import psycopg
    from psycopg.rows import namedtuple_row
    from sqlalchemy.exc import IntegrityError

    try:
        with conn.cursor(row_factory=namedtuple_row) as cur:
            return cur.execute(sql, params).fetchone()
    except psycopg.IntegrityError as exc:
        raise IntegrityError(sql, params, exc) from exc


def hot_suggest(conn: Any, experiment_id: int, *, client_id: int | None, metadata: dict[str, Any] | None,
                idempotency_key: str | None) -> tuple[Experiment | None, str, Suggestion | None, bool]:
    """Claim a stocked candidate of an active ``random`` experiment (no queued suggestions) and make
    it an open suggestion, in one statement: ``(experiment or None when not found (for this client),
    its definition digest, the suggestion or None when nothing was claimed, refill)``."""
    t = now()
    row = _execute_hot(conn, _HOT_SUGGEST, {"eid": experiment_id, "cid": client_id, "metadata": _json(metadata),
                                            "created": t, "key": idempotency_key})
    if row is None:
        return None, "", None, False
    exp = _experiment_of_row(row)
    digest = _parsed_definition(row.definition)[1]
    if row.suggestion_id is None:
        return exp, digest, None, False
    return exp, digest, Suggestion(id=row.suggestion_id, experiment_id=experiment_id, assignments=row.assignments,
                                   state="open", task=_task(row.task), metadata=metadata, created=t,
                                   deleted=False, source=row.source), bool(row.refill)


_HOT_OBSERVE = """WITH e AS (
  SELECT 1 FROM experiments WHERE id = %(eid)s AND (%(cid)s::integer IS NULL OR client_id = %(cid)s::integer)
    AND state = 'active' AND NOT runs_only AND md5(definition::text) = %(digest)s),
closed AS (
  UPDATE suggestions SET state = 'closed'
  WHERE id = %(sid)s AND experiment_id = %(eid)s AND state = 'open' AND NOT deleted AND EXISTS (SELECT 1 FROM e)
  RETURNING assignments, task)
INSERT INTO observations (experiment_id, suggestion_id, assignments, "values", failed, task, metadata, created,
                          cost, idempotency_key)
SELECT %(eid)s, %(sid)s, assignments, %(values)s::json, %(failed)s, task, %(metadata)s::json,
       %(created)s::bigint, COALESCE((task->>'cost')::float8, 1.0), %(key)s::varchar FROM closed
RETURNING id, assignments, task"""


def hot_observe(conn: Any, experiment_id: int, *, client_id: int | None, digest: str, suggestion_id: int,
                values: Sequence[MetricValue], failed: bool, metadata: dict[str, Any] | None,
                idempotency_key: str | None) -> Observation | None:
    """Close an open suggestion and store its observation in one statement, provided the experiment
    (of this client) is active, not runs-only and its definition still has ``digest`` (the values were
    checked against it); None, changing nothing, otherwise."""
    t = now()
    row = _execute_hot(conn, _HOT_OBSERVE, {
        "eid": experiment_id, "cid": client_id, "digest": digest, "sid": suggestion_id,
        "values": _json([v.to_json() for v in values]), "failed": failed, "metadata": _json(metadata),
        "created": t, "key": idempotency_key})
    if row is None:
        return None
    return Observation(id=row.id, experiment_id=experiment_id, assignments=row.assignments, values=tuple(values),
                       failed=failed, suggestion_id=suggestion_id, task=_task(row.task), metadata=metadata,
                       created=t)


_HOT_READ = f"""WITH e AS ({_HOT_EXPERIMENT})
SELECT e.*,
  (SELECT count(*) FROM observations WHERE experiment_id = %(eid)s) AS observation_count,
  (SELECT coalesce(max(id), 0) FROM observations WHERE experiment_id = %(eid)s) AS last_observation_id,
  (SELECT count(*) FROM suggestions WHERE experiment_id = %(eid)s AND NOT deleted AND state = 'open') AS open_count,
  (SELECT json_agg(json_build_array(id, assignments, "values", failed, suggestion_id, task, metadata, created)
                   ORDER BY id)
     FROM observations WHERE experiment_id = %(eid)s AND id > %(after)s) AS newer
  FROM e"""


def hot_read_experiment(conn: Any, experiment_id: int, *, client_id: int | None, after: int
                        ) -> tuple[Experiment, tuple[int, int, int], int, list[Observation]] | None:
    """In one statement (one snapshot): the experiment (None when not found for this client), what
    :func:`observation_marker` gives, the open suggestion count and the observations above ``after``."""
    row = _execute_hot(conn, _HOT_READ, {"eid": experiment_id, "cid": client_id, "after": after})
    if row is None:
        return None
    newer = [Observation(id=o[0], experiment_id=experiment_id, assignments=o[1],
                         values=tuple(MetricValue.from_json(v) for v in o[2]), failed=o[3], suggestion_id=o[4],
                         task=_task(o[5]), metadata=o[6], created=o[7]) for o in row.newer or ()]
    marker = (int(row.observation_count), int(row.last_observation_id), int(row.observations_version or 0))
    return _experiment_of_row(row), marker, int(row.open_count), newer
