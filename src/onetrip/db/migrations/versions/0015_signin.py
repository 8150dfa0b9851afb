"""signin

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07

Issue 26 point 3 (sign-in): the second factor of a user (TOTP secret, enrolment time, last accepted step), their
single-use recovery codes (hashed), and the sign-in failure counters per address, per (account, address) and
per account, in a table so that every server process shares them. Batch mode for SQLite.
"""
import sqlalchemy as sa
from alembic import op

import onetrip.db.base

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('app_user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('totp_secret', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('totp_enrolled_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('totp_last_step', sa.BigInteger(), nullable=True))
    op.create_table('auth_recovery_code',
    sa.Column('user_id', sa.String(length=32), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_auth_recovery_code_user_id_app_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_auth_recovery_code')),
    sa.UniqueConstraint('code_hash', name=op.f('uq_auth_recovery_code_code_hash'))
    )
    with op.batch_alter_table('auth_recovery_code', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_auth_recovery_code_user_id'), ['user_id'], unique=False)
    op.create_table('auth_throttle',
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('window_start', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('next_allowed_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('locked_until', onetrip.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('addresses', onetrip.db.base.JSONVariant, nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_auth_throttle'))
    )


def downgrade() -> None:
    op.drop_table('auth_throttle')
    with op.batch_alter_table('auth_recovery_code', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_auth_recovery_code_user_id'))
    op.drop_table('auth_recovery_code')
    with op.batch_alter_table('app_user', schema=None) as batch_op:
        batch_op.drop_column('totp_last_step')
        batch_op.drop_column('totp_enrolled_at')
        batch_op.drop_column('totp_secret')
