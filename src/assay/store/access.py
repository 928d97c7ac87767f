"""Queries for teams, users, API tokens and the audit log (rows never leave this module)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, inspect, select, text, update
from sqlalchemy.orm import Session

from assay.errors import NotFound
from assay.store.models import ApiTokenRow, AuditRow, ClientRow, ExperimentRow, UserRow

__all__ = [
    "TOKEN_FIELDS",
    "token_dict",
    "create_client",
    "get_client",
    "list_clients",
    "insert_token",
    "token_by_hash",
    "token_row",
    "token_client",
    "list_tokens",
    "count_tokens",
    "update_token",
    "insert_user",
    "audit",
    "list_audit",
    "experiment_client",
    "training_run_client",
]

TOKEN_FIELDS = ("id", "client_id", "user_id", "prefix", "kind", "role", "name", "experiment_id",
                "training_run_id", "created", "expires", "lifetime", "revoked", "last_used")


def token_dict(row: ApiTokenRow) -> dict[str, Any]:
    return {f: getattr(row, f) for f in TOKEN_FIELDS}


# -- teams ("clients") and users --------------------------------------------------------------
def create_client(session: Session, name: str, now: int) -> int:
    row = ClientRow(name=name, created=now)
    session.add(row)
    session.flush()
    return row.id


def get_client(session: Session, client_id: int) -> dict[str, Any]:
    row = session.get(ClientRow, client_id)
    if row is None:
        raise NotFound(f"client {client_id} does not exist", field="client")
    return {"id": row.id, "name": row.name, "created": row.created}


def list_clients(session: Session) -> list[dict[str, Any]]:
    rows = session.execute(select(ClientRow).order_by(ClientRow.id)).scalars().all()
    return [{"id": r.id, "name": r.name, "created": r.created, "organization_id": r.organization_id} for r in rows]


def insert_user(session: Session, client_id: int, email: str, name: str | None, role: str, now: int
                ) -> dict[str, Any]:
    row = UserRow(client_id=client_id, email=email, name=name, role=role, created=now, deleted=False)
    session.add(row)
    session.flush()
    return _user(row)


def user_email_exists(session: Session, email: str) -> bool:
    return session.execute(select(UserRow.id).where(UserRow.email == email)).first() is not None


def _user(row: UserRow) -> dict[str, Any]:
    return {"id": row.id, "client_id": row.client_id, "email": row.email, "name": row.name, "role": row.role,
            "created": row.created}


# -- tokens --------------------------------------------------------------------------------
def insert_token(session: Session, **fields: Any) -> dict[str, Any]:
    row = ApiTokenRow(**fields)
    session.add(row)
    session.flush()
    return token_dict(row)


def token_by_hash(session: Session, token_hash: str) -> tuple[dict[str, Any], str] | None:
    row = session.execute(select(ApiTokenRow).where(ApiTokenRow.token_hash == token_hash)).scalar_one_or_none()
    return (token_dict(row), row.token_hash) if row is not None else None


def token_row(session: Session, client_id: int, token_id: int, *, lock: bool = False) -> dict[str, Any]:
    stmt = select(ApiTokenRow).where(ApiTokenRow.id == token_id, ApiTokenRow.client_id == client_id)
    if lock:
        stmt = stmt.with_for_update()
    row = session.execute(stmt).scalar_one_or_none()
    if row is None:
        raise NotFound(f"token {token_id} does not exist", field="token")
    return token_dict(row)


def token_client(session: Session, token_id: int) -> int | None:
    return session.execute(select(ApiTokenRow.client_id).where(ApiTokenRow.id == token_id)).scalar_one_or_none()


def list_tokens(session: Session, client_id: int | None, *, include_revoked: bool = False) -> list[dict[str, Any]]:
    stmt = select(ApiTokenRow).order_by(ApiTokenRow.id)
    if client_id is not None:
        stmt = stmt.where(ApiTokenRow.client_id == client_id)
    if not include_revoked:
        stmt = stmt.where(ApiTokenRow.revoked.is_(None))
    return [token_dict(r) for r in session.execute(stmt).scalars().all()]


def count_tokens(session: Session) -> int:
    return session.execute(select(func.count(ApiTokenRow.id))).scalar_one()


def update_token(session: Session, token_id: int, **fields: Any) -> None:
    session.execute(update(ApiTokenRow).where(ApiTokenRow.id == token_id).values(**fields))


# -- objects a share token may point at ------------------------------------------------------
def experiment_client(session: Session, experiment_id: int) -> int | None:
    return session.execute(select(ExperimentRow.client_id).where(ExperimentRow.id == experiment_id)
                           ).scalar_one_or_none()


def training_run_client(session: Session, run_id: int) -> int | None:
    """The team owning a training run (``None`` if it or the runs table does not exist)."""
    bind = session.get_bind()
    if "training_runs" not in inspect(bind).get_table_names():
        return None
    cols = {c["name"] for c in inspect(bind).get_columns("training_runs")}
    if "client_id" not in cols:
        return None
    out = session.execute(text("SELECT client_id FROM training_runs WHERE id = :i"), {"i": run_id}).first()
    return int(out[0]) if out is not None and out[0] is not None else None


# -- audit log -----------------------------------------------------------------------------
def audit(session: Session, *, client_id: int, now: int, actor: str, action: str, object_type: str,
          object_id: Any = None, token_id: int | None = None, user_id: int | None = None,
          details: dict[str, Any] | None = None) -> None:
    session.add(AuditRow(client_id=client_id, created=now, token_id=token_id, user_id=user_id, actor=actor[:200],
                         action=action, object_type=object_type,
                         object_id=None if object_id is None else str(object_id)[:50], details=details))
    session.flush()


def list_audit(session: Session, client_id: int, *, limit: int = 100, before: int | None = None,
               action: str | None = None, object_type: str | None = None, object_id: str | None = None
               ) -> tuple[list[dict[str, Any]], int]:
    where = [AuditRow.client_id == client_id]
    if action is not None:  # "experiment.delete", or a prefix ending in "." ("token.")
        where.append(AuditRow.action.startswith(action, autoescape=True) if action.endswith(".")
                     else AuditRow.action == action)
    if object_type is not None:
        where.append(AuditRow.object_type == object_type)
    if object_id is not None:
        where.append(AuditRow.object_id == object_id)
    stmt = select(AuditRow).where(*where)
    if before is not None:
        stmt = stmt.where(AuditRow.id < before)
    rows = session.execute(stmt.order_by(AuditRow.id.desc()).limit(limit)).scalars().all()
    total = session.execute(select(func.count(AuditRow.id)).where(*where)).scalar_one()
    return [{"object": "audit_entry", "id": str(r.id), "created": r.created, "actor": r.actor,
             "token": None if r.token_id is None else str(r.token_id),
             "user": None if r.user_id is None else str(r.user_id), "action": r.action,
             "object_type": r.object_type, "object_id": r.object_id, "details": r.details} for r in rows], total
