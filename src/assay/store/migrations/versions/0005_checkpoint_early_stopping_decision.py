"""checkpoint early stopping decision

Revision ID: 0005
Revises: 0002
Create Date: 2026-11-25 05:23:17.649877
"""

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('checkpoints', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stopping', sa.JSON(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('checkpoints', schema=None) as batch_op:
        batch_op.drop_column('stopping')

