"""hl7v2 inbox

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23

HL7 v2 over MLLP (issue 4 §2): the inbox table, unique on (sender, MSH-10). Chained after 0004 (results store).
"""
import sqlalchemy as sa
from alembic import op

import onetrip.db.base

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('hl7_inbox',
    sa.Column('sender', sa.String(length=200), nullable=False),
    sa.Column('control_id', sa.String(length=64), nullable=False),
    sa.Column('message_type', sa.String(length=16), nullable=False),
    sa.Column('version', sa.String(length=8), nullable=False),
    sa.Column('charset', sa.String(length=32), nullable=False),
    sa.Column('raw', sa.LargeBinary(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('ack_code', sa.String(length=2), nullable=False),
    sa.Column('ack', sa.LargeBinary(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('received_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('processed_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('created_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hl7_inbox')),
    sa.UniqueConstraint('sender', 'control_id', name=op.f('uq_hl7_inbox_sender_control_id'))
    )
    with op.batch_alter_table('hl7_inbox', schema=None) as batch_op:
        batch_op.create_index('ix_hl7_inbox_status_received', ['status', 'received_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('hl7_inbox', schema=None) as batch_op:
        batch_op.drop_index('ix_hl7_inbox_status_received')
    op.drop_table('hl7_inbox')
