"""scale: candidates, observation summary version, supply lease, queued count

Revision ID: 0011
Revises: 0008
Create Date: 2026-11-25 07:27:55.079823
"""

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('candidates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('experiment_id', sa.Integer(), nullable=False),
    sa.Column('assignments', sa.JSON(), nullable=False),
    sa.Column('task', sa.JSON(), nullable=True),
    sa.Column('source', sa.Text(), nullable=True),
    sa.Column('basis', sa.Integer(), nullable=False),
    sa.Column('refill', sa.Boolean(), nullable=False),
    sa.Column('created', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['experiment_id'], ['experiments.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('candidates', schema=None) as batch_op:
        batch_op.create_index('ix_candidates_experiment_basis', ['experiment_id', 'basis'], unique=False)

    with op.batch_alter_table('experiments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('observations_version', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('supply_owner', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('supply_until', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('n_queued', sa.Integer(), server_default='0', nullable=False))
    op.execute("UPDATE experiments SET n_queued = (SELECT count(*) FROM queued_suggestions q "
               "WHERE q.experiment_id = experiments.id)")

    with op.batch_alter_table('observations', schema=None) as batch_op:
        batch_op.create_index('ix_observations_experiment_id_id', ['experiment_id', 'id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('observations', schema=None) as batch_op:
        batch_op.drop_index('ix_observations_experiment_id_id')

    with op.batch_alter_table('experiments', schema=None) as batch_op:
        batch_op.drop_column('n_queued')
        batch_op.drop_column('supply_until')
        batch_op.drop_column('supply_owner')
        batch_op.drop_column('observations_version')

    with op.batch_alter_table('candidates', schema=None) as batch_op:
        batch_op.drop_index('ix_candidates_experiment_basis')

    op.drop_table('candidates')
