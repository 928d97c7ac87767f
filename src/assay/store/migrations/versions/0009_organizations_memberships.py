"""organizations above teams; team memberships (a user in several teams, a role each)

Revision ID: 0009
Revises: 0006
Create Date: 2026-11-25 07:27:22.850138
"""

import time

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "organizations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "memberships",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=10), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "client_id", name="uq_membership_user_client"),
    )
    op.create_index("ix_memberships_client_id", "memberships", ["client_id"], unique=False)
    op.create_table(
        "organization_members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=10), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "organization_id", name="uq_org_member_user_org"),
    )
    op.create_index("ix_organization_members_organization_id", "organization_members", ["organization_id"],
                    unique=False)
    # Plain ADD COLUMN (no batch table copy: other tables reference clients).
    op.add_column("clients", sa.Column("organization_id", sa.Integer(), server_default="1", nullable=False))
    op.create_index("ix_clients_organization_id", "clients", ["organization_id"], unique=False)

    # Every existing team joins the default organization 1; every user keeps its team and role.
    now = int(time.time())
    op.execute(sa.text("INSERT INTO organizations (id, name, created) VALUES (1, 'default', :now)").bindparams(now=now))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SELECT setval(pg_get_serial_sequence('organizations', 'id'), 1)")
    op.execute("INSERT INTO memberships (user_id, client_id, role, created) "
               "SELECT id, client_id, role, created FROM users WHERE deleted = false")
    op.execute("INSERT INTO organization_members (user_id, organization_id, role, created) "
               "SELECT id, 1, 'member', created FROM users WHERE deleted = false")


def downgrade() -> None:
    op.drop_index("ix_clients_organization_id", table_name="clients")
    # Plain DROP COLUMN (SQLite >= 3.35): a batch table copy would trip the other tables' foreign keys.
    op.drop_column("clients", "organization_id")
    op.drop_index("ix_organization_members_organization_id", table_name="organization_members")
    op.drop_table("organization_members")
    op.drop_index("ix_memberships_client_id", table_name="memberships")
    op.drop_table("memberships")
    op.drop_table("organizations")
