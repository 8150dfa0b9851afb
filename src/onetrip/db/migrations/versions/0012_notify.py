"""notify

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-23

Issue 6 §6: outgoing notifications — webhook / FHIR Subscription (rest-hook) endpoints, the fan-out position
in the outbox, deliveries and the delivery log (docs/notifications.md). Batch mode for SQLite.
"""
import sqlalchemy as sa
from alembic import op

import onetrip.db.base

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def _dt(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, onetrip.db.base.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    feed = op.create_table('notify_feed',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('floor_id', sa.BigInteger(), nullable=False),
    sa.Column('gaps', onetrip.db.base.JSONVariant, nullable=False),
    _dt('updated_at'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notify_feed'))
    )
    op.create_table('notify_subscription',
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('endpoint', sa.String(length=2000), nullable=False),
    sa.Column('event_types', onetrip.db.base.JSONVariant, nullable=False),
    sa.Column('aggregate_type', sa.String(length=32), nullable=True),
    sa.Column('criteria', sa.String(length=500), nullable=True),
    sa.Column('payload', sa.String(length=8), nullable=False),
    sa.Column('headers', onetrip.db.base.JSONVariant, nullable=False),
    sa.Column('secret', sa.String(length=128), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    _dt('ends_at', True),
    _dt('deleted_at', True),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('id', sa.String(length=32), nullable=False),
    _dt('created_at'),
    _dt('updated_at'),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notify_subscription'))
    )
    op.create_table('notify_delivery',
    sa.Column('subscription_id', sa.String(length=32), nullable=False),
    sa.Column('outbox_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('event_id', sa.String(length=32), nullable=False),
    sa.Column('event_type', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    _dt('next_attempt_at'),
    _dt('locked_until', True),
    sa.Column('locked_by', sa.String(length=80), nullable=True),
    sa.Column('last_status_code', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    _dt('delivered_at', True),
    sa.Column('id', sa.String(length=32), nullable=False),
    _dt('created_at'),
    _dt('updated_at'),
    sa.ForeignKeyConstraint(['outbox_id'], ['outbox_event.id'],
                            name=op.f('fk_notify_delivery_outbox_id_outbox_event')),
    sa.ForeignKeyConstraint(['subscription_id'], ['notify_subscription.id'],
                            name=op.f('fk_notify_delivery_subscription_id_notify_subscription')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notify_delivery')),
    sa.UniqueConstraint('subscription_id', 'outbox_id', name=op.f('uq_notify_delivery_subscription_id_outbox_id'))
    )
    with op.batch_alter_table('notify_delivery', schema=None) as batch_op:
        batch_op.create_index('ix_notify_delivery_due', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_notify_delivery_event', ['event_id'], unique=False)
    op.create_table('notify_attempt',
    sa.Column('delivery_id', sa.String(length=32), nullable=False),
    sa.Column('attempt_no', sa.Integer(), nullable=False),
    _dt('started_at'),
    sa.Column('duration_ms', sa.Integer(), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('worker', sa.String(length=80), nullable=False),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['delivery_id'], ['notify_delivery.id'],
                            name=op.f('fk_notify_attempt_delivery_id_notify_delivery')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notify_attempt'))
    )
    with op.batch_alter_table('notify_attempt', schema=None) as batch_op:
        batch_op.create_index('ix_notify_attempt_delivery', ['delivery_id', 'started_at'], unique=False)
    # The single fan-out position row. Floor 0: events already in the outbox are read once, but only events
    # that occur after a subscription is created are ever delivered to it.
    import datetime as dt
    op.bulk_insert(feed, [{'id': 1, 'floor_id': 0, 'gaps': {}, 'updated_at': dt.datetime.now(dt.UTC)}])


def downgrade() -> None:
    with op.batch_alter_table('notify_attempt', schema=None) as batch_op:
        batch_op.drop_index('ix_notify_attempt_delivery')
    op.drop_table('notify_attempt')
    with op.batch_alter_table('notify_delivery', schema=None) as batch_op:
        batch_op.drop_index('ix_notify_delivery_event')
        batch_op.drop_index('ix_notify_delivery_due')
    op.drop_table('notify_delivery')
    op.drop_table('notify_subscription')
    op.drop_table('notify_feed')
