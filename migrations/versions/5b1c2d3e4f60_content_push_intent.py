"""Content push intent (no duplicate WordPress post when a push is redelivered)

Revision ID: 5b1c2d3e4f60
Revises: 5c2e7a9d41b3
Create Date: 2026-12-02 16:55:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5b1c2d3e4f60'
down_revision = '5c2e7a9d41b3'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('contents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('push_intent', sa.JSON(none_as_null=True), nullable=True))


def downgrade():
    with op.batch_alter_table('contents', schema=None) as batch_op:
        batch_op.drop_column('push_intent')
