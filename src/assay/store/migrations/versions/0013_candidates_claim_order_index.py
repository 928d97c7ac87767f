"""candidates: an index in claim order (experiment, basis descending, id)

Revision ID: 0013
Revises: 0011
Create Date: 2026-11-25 11:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('candidates', schema=None) as batch_op:
        batch_op.drop_index('ix_candidates_experiment_basis')
        batch_op.create_index('ix_candidates_claim', ['experiment_id', sa.text('basis DESC'), 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('candidates', schema=None) as batch_op:
        batch_op.drop_index('ix_candidates_claim')
        batch_op.create_index('ix_candidates_experiment_basis', ['experiment_id', 'basis'], unique=False)
