"""ORM tables. Rows never leave the store: :mod:`assay.store.repository` turns them into domain objects."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["Base", "ClientRow", "ExperimentRow", "SuggestionRow", "ObservationRow", "QueuedSuggestionRow",
           "UserRow", "ApiTokenRow", "AuditRow",
           "ProjectRow", "TrainingRunRow", "CheckpointRow", "FileRow",
           "OrganizationRow", "MembershipRow", "OrganizationMemberRow", "TagRow", "TrainingRunTagRow",
           "CandidateRow"]


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class ClientRow(Base):
    """A team ("client" in SigOpt's API); every experiment belongs to one."""

    __tablename__ = "clients"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(500))
    created: Mapped[int] = mapped_column(BigInteger)
    # The organization above the team (1: the default organization every database has).
    # (No foreign key: SQLite cannot add one to an existing table in place; organizations are never deleted.)
    organization_id: Mapped[int] = mapped_column(Integer, server_default="1", index=True)


class ExperimentRow(Base):
    __tablename__ = "experiments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    name: Mapped[str] = mapped_column(String(500))
    type: Mapped[str] = mapped_column(String(20), default="offline")
    state: Mapped[str] = mapped_column(String(20), default="active", index=True)
    created: Mapped[int] = mapped_column(BigInteger)
    updated: Mapped[int] = mapped_column(BigInteger)
    project: Mapped[str | None] = mapped_column(String(200), nullable=True)
    observation_budget: Mapped[int | None] = mapped_column(Integer, nullable=True)
    parallel_bandwidth: Mapped[int | None] = mapped_column(Integer, nullable=True)
    development: Mapped[bool] = mapped_column(Boolean, default=False)
    runs_only: Mapped[bool] = mapped_column(Boolean, default=False)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, nullable=True)
    # Position in the initial design's quasi-random sequence (suggestions ever made).
    n_suggested: Mapped[int] = mapped_column(Integer, default=0)
    seed: Mapped[int] = mapped_column(BigInteger, default=0)
    # Bumped whenever stored observations change other than by insertion (update, delete): with the
    # count and newest id it tells a cached summary (progress, best) that it must be recomputed.
    observations_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Which server process computes this experiment's candidates, until when (see assay.supply).
    supply_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    supply_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Queued suggestions waiting (so a suggestion request looks for one only when there are some).
    n_queued: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class SuggestionRow(Base):
    __tablename__ = "suggestions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    assignments: Mapped[dict[str, Any]] = mapped_column(JSON)
    task: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, nullable=True)
    state: Mapped[str] = mapped_column(String(10), default="open")
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Client-chosen key (``Idempotency-Key`` header) that makes a retried create return the same suggestion.
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    __table_args__ = (Index("ix_suggestions_experiment_state", "experiment_id", "deleted", "state"),
                      UniqueConstraint("experiment_id", "idempotency_key", name="uq_suggestion_idempotency"))


class ObservationRow(Base):
    __tablename__ = "observations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"), index=True)
    suggestion_id: Mapped[int | None] = mapped_column(ForeignKey("suggestions.id"), nullable=True, unique=True)
    assignments: Mapped[dict[str, Any]] = mapped_column(JSON)
    values: Mapped[list[Any]] = mapped_column(JSON)
    failed: Mapped[bool] = mapped_column(Boolean, default=False)
    task: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, nullable=True)
    created: Mapped[int] = mapped_column(BigInteger)
    # Budget consumed by this observation (the task's cost; 1 without tasks).
    cost: Mapped[float] = mapped_column(Float, default=1.0)
    # Client-chosen key that makes a retried create idempotent.
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    __table_args__ = (UniqueConstraint("experiment_id", "idempotency_key", name="uq_observation_idempotency"),
                      Index("ix_observations_experiment_id_id", "experiment_id", "id"))


class QueuedSuggestionRow(Base):
    __tablename__ = "queued_suggestions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"), index=True)
    assignments: Mapped[dict[str, Any]] = mapped_column(JSON)
    task: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created: Mapped[int] = mapped_column(BigInteger)


# -- trust: users, API tokens, audit log ---------------------------------------------------
class UserRow(Base):
    """A person. Teams and roles are in ``memberships``; ``client_id``/``role`` record the team that
    added the user and the role it gave (kept for history; access is decided by memberships)."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    role: Mapped[str] = mapped_column(String(10), default="write")
    created: Mapped[int] = mapped_column(BigInteger)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)


class ApiTokenRow(Base):
    """An API token. Only the SHA-256 of its secret is stored; ``prefix`` identifies it in listings."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    # "client" (a team's API token), "development" (random suggestions), "share" (read-only, one object)
    kind: Mapped[str] = mapped_column(String(20), default="client")
    role: Mapped[str] = mapped_column(String(10), default="write")
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    experiment_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    training_run_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created: Mapped[int] = mapped_column(BigInteger)
    expires: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Seconds a renewal extends ``expires`` by (set when the token was made with a lifetime).
    lifetime: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    revoked: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_used: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class AuditRow(Base):
    """Who changed what: written in the same transaction as the change."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(Integer, index=True)
    created: Mapped[int] = mapped_column(BigInteger)
    token_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    object_type: Mapped[str] = mapped_column(String(50))
    object_id: Mapped[str | None] = mapped_column(String(50), nullable=True)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
# -- run tracking (projects, training runs, checkpoints, files) --------------------------------
class ProjectRow(Base):
    """A project: the folder runs and AI experiments live in; ``reference`` is its user-chosen id."""

    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    reference: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(500))
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, nullable=True)
    created: Mapped[int] = mapped_column(BigInteger)
    updated: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (UniqueConstraint("client_id", "reference", name="uq_project_reference"),)


class TrainingRunRow(Base):
    __tablename__ = "training_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    experiment_id: Mapped[int | None] = mapped_column(ForeignKey("experiments.id"), nullable=True, index=True)
    suggestion_id: Mapped[int | None] = mapped_column(ForeignKey("suggestions.id"), nullable=True)
    observation_id: Mapped[int | None] = mapped_column(ForeignKey("observations.id", ondelete="SET NULL"),
                                                       nullable=True)
    name: Mapped[str] = mapped_column(String(500))
    state: Mapped[str] = mapped_column(String(20), default="active", index=True)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    favorite: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[int] = mapped_column(BigInteger)
    updated: Mapped[int] = mapped_column(BigInteger)
    completed: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    assignments: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Everything else a run records (values, logs, metadata, model, source code, datasets, tags ...).
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    checkpoint_count: Mapped[int] = mapped_column(Integer, default=0)


class CheckpointRow(Base):
    __tablename__ = "checkpoints"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    training_run_id: Mapped[int] = mapped_column(ForeignKey("training_runs.id", ondelete="CASCADE"), index=True)
    step: Mapped[int] = mapped_column(Integer)
    values: Mapped[list[Any]] = mapped_column(JSON)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, nullable=True)
    created: Mapped[int] = mapped_column(BigInteger)
    # early-stopping decision when it was reported: {"should_stop": bool, "stopping_reasons": {name: bool}}
    stopping: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class FileRow(Base):
    """An artifact; its bytes live in the artifact directory under a name derived from the id only."""

    __tablename__ = "files"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    training_run_id: Mapped[int | None] = mapped_column(ForeignKey("training_runs.id", ondelete="SET NULL"),
                                                        nullable=True, index=True)
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    filename: Mapped[str | None] = mapped_column(String(200), nullable=True)
    content_type: Mapped[str] = mapped_column(String(200))
    content_length: Mapped[int] = mapped_column(BigInteger)
    content_md5: Mapped[str | None] = mapped_column(String(64), nullable=True)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    uploaded: Mapped[bool] = mapped_column(Boolean, default=False)
    upload_token_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created: Mapped[int] = mapped_column(BigInteger)


# -- trust: organizations above teams, team memberships ----------------------------------------
class OrganizationRow(Base):
    """An organization: owns teams (``clients``); its owners manage all of them."""

    __tablename__ = "organizations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(500))
    created: Mapped[int] = mapped_column(BigInteger)


class MembershipRow(Base):
    """A user's role in one team: ``admin``, ``write`` or ``read``."""

    __tablename__ = "memberships"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    role: Mapped[str] = mapped_column(String(10))
    created: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (UniqueConstraint("user_id", "client_id", name="uq_membership_user_client"),)


class OrganizationMemberRow(Base):
    """A user's place in an organization: ``owner`` (admin of every team in it) or ``member``."""

    __tablename__ = "organization_members"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    role: Mapped[str] = mapped_column(String(10))
    created: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (UniqueConstraint("user_id", "organization_id", name="uq_org_member_user_org"),)


class TagRow(Base):
    """A team's run tag (SigOpt's client-level tags: a name and a colour)."""

    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("client_id", "name", name="uq_tag_client_name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    color: Mapped[str] = mapped_column(String(7))
    created: Mapped[int] = mapped_column(BigInteger)


class TrainingRunTagRow(Base):
    __tablename__ = "training_run_tags"
    training_run_id: Mapped[int] = mapped_column(ForeignKey("training_runs.id", ondelete="CASCADE"), primary_key=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True, index=True)


# -- scale: precomputed suggestions ------------------------------------------------------------
class CandidateRow(Base):
    """A precomputed suggestion waiting to be handed out. A request claims one by deleting it in
    its own transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so each is served exactly once
    whichever server process serves it."""

    __tablename__ = "candidates"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    assignments: Mapped[dict[str, Any]] = mapped_column(JSON)
    task: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    source: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Observations stored when it was computed (-1: valid whatever is observed, e.g. random points).
    basis: Mapped[int] = mapped_column(Integer, default=-1)
    # Claiming this one means the stock runs low: wake the supplier.
    refill: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[float] = mapped_column(Float)


# In claim order (freshest basis first, then oldest): a claim reads one index entry instead of
# sorting the experiment's whole stock; counts by basis use its prefix.
Index("ix_candidates_claim", CandidateRow.experiment_id, CandidateRow.basis.desc(), CandidateRow.id)
