"""run tags: a team's tags (name, colour) and the runs they are attached to

Revision ID: 0008
Revises: 0009
Create Date: 2026-11-25 07:37:00.683277

Tags used to be names inside each run's ``data``; they become rows (one per team and name, with a
colour) and the runs keep them through ``training_run_tags``.
"""

import json
import time

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0009"
branch_labels = None
depends_on = None

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def upgrade() -> None:
    op.create_table(
        "tags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("color", sa.String(length=7), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client_id", "name", name="uq_tag_client_name"),
    )
    with op.batch_alter_table("tags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tags_client_id"), ["client_id"], unique=False)
    op.create_table(
        "training_run_tags",
        sa.Column("training_run_id", sa.Integer(), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["tag_id"], ["tags.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["training_run_id"], ["training_runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("training_run_id", "tag_id"),
    )
    with op.batch_alter_table("training_run_tags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_training_run_tags_tag_id"), ["tag_id"], unique=False)
    _move_tags_out_of_run_data()


def _move_tags_out_of_run_data() -> None:
    bind = op.get_bind()
    runs = sa.table("training_runs", sa.column("id", sa.Integer), sa.column("client_id", sa.Integer),
                    sa.column("data", sa.JSON))
    tags = sa.table("tags", sa.column("id", sa.Integer), sa.column("client_id", sa.Integer),
                    sa.column("name", sa.String), sa.column("color", sa.String), sa.column("created", sa.BigInteger))
    links = sa.table("training_run_tags", sa.column("training_run_id", sa.Integer), sa.column("tag_id", sa.Integer))
    known: dict[tuple[int, str], int] = {}
    now = int(time.time())
    for run_id, client_id, data in bind.execute(sa.select(runs.c.id, runs.c.client_id, runs.c.data)).all():
        if isinstance(data, str):
            data = json.loads(data)
        names = (data or {}).get("tags") or []
        if not names:
            continue
        for name in dict.fromkeys(str(n)[:100] for n in names):
            key = (client_id, name)
            if key not in known:
                known[key] = bind.execute(tags.insert().values(
                    client_id=client_id, name=name, color=PALETTE[len(known) % len(PALETTE)], created=now)
                    .returning(tags.c.id)).scalar_one()
            bind.execute(links.insert().values(training_run_id=run_id, tag_id=known[key]))
        rest = {k: v for k, v in data.items() if k != "tags"}
        bind.execute(runs.update().where(runs.c.id == run_id).values(data=rest))


def downgrade() -> None:
    with op.batch_alter_table("training_run_tags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_training_run_tags_tag_id"))
    op.drop_table("training_run_tags")
    with op.batch_alter_table("tags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tags_client_id"))
    op.drop_table("tags")
