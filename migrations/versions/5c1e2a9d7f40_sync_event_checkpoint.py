"""Sync events keep a resumable checkpoint

Revision ID: 5c1e2a9d7f40
Revises: 0830eb9c3e79
Create Date: 2026-12-02 16:50:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5c1e2a9d7f40'
down_revision = '0830eb9c3e79'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('sync_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('checkpoint', sa.JSON(none_as_null=True), nullable=True))


def downgrade():
    with op.batch_alter_table('sync_events', schema=None) as batch_op:
        batch_op.drop_column('checkpoint')
