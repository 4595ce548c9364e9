"""sync schedules: interval, next run, pause, failure count, reconcile sweep; due and active-job indexes

Revision ID: 5c2e7a9d41b3
Revises: 5c1e2a9d7f40
Create Date: 2026-12-02 16:10:00.000000

"""
import random
from datetime import UTC, datetime, timedelta

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5c2e7a9d41b3'
down_revision = '5c1e2a9d7f40'
branch_labels = None
depends_on = None

SCHEDULABLE = "is_active AND sync_enabled AND paused_reason IS NULL AND sync_interval_minutes IS NOT NULL"
ACTIVE_JOBS = "status IN ('queued', 'running')"
DEFAULT_INTERVAL_MINUTES = 15
RECONCILE_INTERVAL_MINUTES = 24 * 60


def upgrade():
    with op.batch_alter_table('site_integrations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sync_interval_minutes', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('next_sync_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('paused_reason', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('sync_failure_count', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('last_scheduled_sync_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('next_reconcile_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            'ix_site_integrations_due', ['next_sync_at'], unique=False,
            postgresql_where=sa.text(SCHEDULABLE), sqlite_where=sa.text(SCHEDULABLE),
        )

    with op.batch_alter_table('sync_events', schema=None) as batch_op:
        batch_op.create_index(
            'ix_sync_events_active_status', ['status', 'event_type'], unique=False,
            postgresql_where=sa.text(ACTIVE_JOBS), sqlite_where=sa.text(ACTIVE_JOBS),
        )

    # Existing integrations get the default interval and join the schedule spread over one interval (and their reconcile over
    # a day), so the first ticks after the deploy do not dispatch every site at once.
    integrations = sa.table(
        'site_integrations',
        sa.column('id', sa.Integer),
        sa.column('sync_interval_minutes', sa.Integer),
        sa.column('next_sync_at', sa.DateTime(timezone=True)),
        sa.column('next_reconcile_at', sa.DateTime(timezone=True)),
    )
    bind = op.get_bind()
    ids = [row[0] for row in bind.execute(sa.select(integrations.c.id))]
    now = datetime.now(UTC)
    if bind.dialect.name == 'sqlite':
        now = now.replace(tzinfo=None)  # stored naive UTC there, as the models' UTCDateTime does
    if ids:
        bind.execute(
            integrations.update().where(integrations.c.id == sa.bindparam('row_id')),
            [
                {
                    'row_id': row_id,
                    'sync_interval_minutes': DEFAULT_INTERVAL_MINUTES,
                    'next_sync_at': now + timedelta(minutes=random.uniform(0, DEFAULT_INTERVAL_MINUTES)),
                    'next_reconcile_at': now + timedelta(minutes=random.uniform(0, RECONCILE_INTERVAL_MINUTES)),
                }
                for row_id in ids
            ],
        )


def downgrade():
    with op.batch_alter_table('sync_events', schema=None) as batch_op:
        batch_op.drop_index('ix_sync_events_active_status')

    with op.batch_alter_table('site_integrations', schema=None) as batch_op:
        batch_op.drop_index('ix_site_integrations_due')
        batch_op.drop_column('next_reconcile_at')
        batch_op.drop_column('last_scheduled_sync_at')
        batch_op.drop_column('sync_failure_count')
        batch_op.drop_column('paused_reason')
        batch_op.drop_column('next_sync_at')
        batch_op.drop_column('sync_interval_minutes')
