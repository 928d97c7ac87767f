"""Queries for organizations, team memberships and the token lookup of every request."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, delete, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from assay.store.models import (
    ApiTokenRow,
    ClientRow,
    MembershipRow,
    OrganizationMemberRow,
    OrganizationRow,
    UserRow,
)

__all__ = ["token_for_auth", "create_organization", "get_organization", "list_organizations",
           "update_organization", "client_organization", "organization_clients", "create_client_in",
           "update_client", "membership_role", "set_membership", "delete_membership", "team_members",
           "user_teams", "organization_role", "set_organization_member", "organization_members",
           "user_organizations", "user_by_id", "user_by_email", "update_user", "revoke_user_tokens",
           "shares_team"]

_T, _C = ApiTokenRow.__table__, ClientRow.__table__
_M, _OM = MembershipRow.__table__, OrganizationMemberRow.__table__

# One indexed lookup per request: the token by its hash (unique index), its team's organization,
# and, for a user's token, the user's role in that team and in the organization.
_AUTH = (
    select(_T.c.id, _T.c.client_id, _T.c.user_id, _T.c.token_hash, _T.c.kind, _T.c.role, _T.c.name,
           _T.c.experiment_id, _T.c.training_run_id, _T.c.expires, _T.c.revoked,
           _C.c.organization_id, _M.c.role.label("member_role"), _OM.c.role.label("org_role"))
    .select_from(_T.join(_C, _C.c.id == _T.c.client_id)
                 .outerjoin(_M, and_(_M.c.user_id == _T.c.user_id, _M.c.client_id == _T.c.client_id))
                 .outerjoin(_OM, and_(_OM.c.user_id == _T.c.user_id,
                                      _OM.c.organization_id == _C.c.organization_id)))
)


def token_for_auth(conn: Connection, token_hash: str) -> dict[str, Any] | None:
    row = conn.execute(_AUTH.where(_T.c.token_hash == token_hash)).mappings().first()
    return dict(row) if row is not None else None


# -- organizations ---------------------------------------------------------------------------
def _org(row: OrganizationRow) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "created": row.created}


def create_organization(session: Session, name: str, now: int) -> dict[str, Any]:
    row = OrganizationRow(name=name, created=now)
    session.add(row)
    session.flush()
    return _org(row)


def get_organization(session: Session, org_id: int) -> dict[str, Any] | None:
    row = session.get(OrganizationRow, org_id)
    return _org(row) if row is not None else None


def list_organizations(session: Session) -> list[dict[str, Any]]:
    return [_org(r) for r in session.execute(select(OrganizationRow).order_by(OrganizationRow.id)).scalars()]


def update_organization(session: Session, org_id: int, **fields: Any) -> None:
    session.execute(update(OrganizationRow).where(OrganizationRow.id == org_id).values(**fields))


# -- teams in organizations ------------------------------------------------------------------
def _client(row: ClientRow) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "created": row.created, "organization_id": row.organization_id}


def client_organization(session: Session, client_id: int) -> int | None:
    """The organization of a team (``None`` if the team does not exist)."""
    return session.execute(select(ClientRow.organization_id).where(ClientRow.id == client_id)).scalar_one_or_none()


def get_client(session: Session, client_id: int) -> dict[str, Any] | None:
    row = session.get(ClientRow, client_id)
    return _client(row) if row is not None else None


def organization_clients(session: Session, org_id: int) -> list[dict[str, Any]]:
    rows = session.execute(select(ClientRow).where(ClientRow.organization_id == org_id).order_by(ClientRow.id))
    return [_client(r) for r in rows.scalars()]


def create_client_in(session: Session, org_id: int, name: str, now: int) -> dict[str, Any]:
    row = ClientRow(name=name, created=now, organization_id=org_id)
    session.add(row)
    session.flush()
    return _client(row)


def update_client(session: Session, client_id: int, **fields: Any) -> None:
    session.execute(update(ClientRow).where(ClientRow.id == client_id).values(**fields))


# -- users and team memberships --------------------------------------------------------------
def _user(row: UserRow) -> dict[str, Any]:
    return {"id": row.id, "email": row.email, "name": row.name, "created": row.created}


def user_by_id(session: Session, user_id: int) -> dict[str, Any] | None:
    row = session.get(UserRow, user_id)
    return _user(row) if row is not None and not row.deleted else None


def user_by_email(session: Session, email: str) -> dict[str, Any] | None:
    row = session.execute(select(UserRow).where(UserRow.email == email)).scalar_one_or_none()
    return _user(row) if row is not None and not row.deleted else None


def update_user(session: Session, user_id: int, **fields: Any) -> None:
    session.execute(update(UserRow).where(UserRow.id == user_id).values(**fields))


def membership_role(session: Session, user_id: int, client_id: int) -> str | None:
    return session.execute(select(MembershipRow.role).where(MembershipRow.user_id == user_id,
                                                            MembershipRow.client_id == client_id)
                           ).scalar_one_or_none()


def set_membership(session: Session, user_id: int, client_id: int, role: str, now: int) -> None:
    found = session.execute(select(MembershipRow).where(MembershipRow.user_id == user_id,
                                                        MembershipRow.client_id == client_id)).scalar_one_or_none()
    if found is None:
        session.add(MembershipRow(user_id=user_id, client_id=client_id, role=role, created=now))
    else:
        found.role = role
    session.flush()


def delete_membership(session: Session, user_id: int, client_id: int) -> bool:
    res = session.execute(delete(MembershipRow).where(MembershipRow.user_id == user_id,
                                                      MembershipRow.client_id == client_id))
    return bool(res.rowcount)  # type: ignore[attr-defined]


def team_members(session: Session, client_id: int) -> list[tuple[dict[str, Any], str]]:
    rows = session.execute(select(UserRow, MembershipRow.role).join(MembershipRow, MembershipRow.user_id == UserRow.id)
                           .where(MembershipRow.client_id == client_id, UserRow.deleted.is_(False))
                           .order_by(UserRow.id)).all()
    return [(_user(u), role) for u, role in rows]


def user_teams(session: Session, user_id: int) -> list[tuple[dict[str, Any], str]]:
    """(team, role) for every team the user belongs to."""
    rows = session.execute(select(ClientRow, MembershipRow.role).join(MembershipRow,
                                                                      MembershipRow.client_id == ClientRow.id)
                           .where(MembershipRow.user_id == user_id).order_by(ClientRow.id)).all()
    return [(_client(c), role) for c, role in rows]


def shares_team(session: Session, user_id: int, client_id: int) -> bool:
    return membership_role(session, user_id, client_id) is not None


# -- organization members --------------------------------------------------------------------
def organization_role(session: Session, user_id: int, org_id: int) -> str | None:
    return session.execute(select(OrganizationMemberRow.role).where(
        OrganizationMemberRow.user_id == user_id, OrganizationMemberRow.organization_id == org_id)
    ).scalar_one_or_none()


def set_organization_member(session: Session, user_id: int, org_id: int, role: str, now: int) -> None:
    found = session.execute(select(OrganizationMemberRow).where(
        OrganizationMemberRow.user_id == user_id, OrganizationMemberRow.organization_id == org_id)
    ).scalar_one_or_none()
    if found is None:
        session.add(OrganizationMemberRow(user_id=user_id, organization_id=org_id, role=role, created=now))
    else:
        found.role = role
    session.flush()


def organization_members(session: Session, org_id: int) -> list[tuple[dict[str, Any], str]]:
    rows = session.execute(select(UserRow, OrganizationMemberRow.role)
                           .join(OrganizationMemberRow, OrganizationMemberRow.user_id == UserRow.id)
                           .where(OrganizationMemberRow.organization_id == org_id, UserRow.deleted.is_(False))
                           .order_by(UserRow.id)).all()
    return [(_user(u), role) for u, role in rows]


def user_organizations(session: Session, user_id: int) -> list[tuple[dict[str, Any], str]]:
    rows = session.execute(select(OrganizationRow, OrganizationMemberRow.role)
                           .join(OrganizationMemberRow, OrganizationMemberRow.organization_id == OrganizationRow.id)
                           .where(OrganizationMemberRow.user_id == user_id).order_by(OrganizationRow.id)).all()
    return [(_org(o), role) for o, role in rows]


def revoke_user_tokens(session: Session, user_id: int, client_id: int | None, now: int) -> int:
    """Revoke a user's tokens (in one team, or everywhere); returns how many."""
    stmt = update(ApiTokenRow).where(ApiTokenRow.user_id == user_id, ApiTokenRow.revoked.is_(None))
    if client_id is not None:
        stmt = stmt.where(ApiTokenRow.client_id == client_id)
    return session.execute(stmt.values(revoked=now)).rowcount  # type: ignore[attr-defined]
