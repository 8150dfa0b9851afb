"""mch child health

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07

Issue 21 point 2: child health checks and measurements with WHO growth z-scores (RULES R11.3). Batch mode for SQLite.
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import onetrip.db.base

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('mch_child_check',
    sa.Column('person_id', sa.String(length=32), nullable=False),
    sa.Column('patient_record_id', sa.String(length=32), nullable=False),
    sa.Column('organization_id', sa.String(length=32), nullable=False),
    sa.Column('check_key', sa.String(length=16), nullable=False),
    sa.Column('check_date', sa.Date(), nullable=False),
    sa.Column('age_days', sa.Integer(), nullable=False),
    sa.Column('weight_kg', sa.Float(), nullable=True),
    sa.Column('length_cm', sa.Float(), nullable=True),
    sa.Column('position', sa.String(length=12), nullable=True),
    sa.Column('head_cm', sa.Float(), nullable=True),
    sa.Column('hb_g_l', sa.Float(), nullable=True),
    sa.Column('hearing', sa.String(length=12), nullable=True),
    sa.Column('milestones', _json(), nullable=True),
    sa.Column('zscores', _json(), nullable=False),
    sa.Column('flags', _json(), nullable=False),
    sa.Column('recorded_by', sa.String(length=64), nullable=True),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('created_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'],
                            name=op.f('fk_mch_child_check_organization_id_organization')),
    sa.ForeignKeyConstraint(['patient_record_id'], ['patient_record.id'],
                            name=op.f('fk_mch_child_check_patient_record_id_patient_record')),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_mch_child_check_person_id_person')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mch_child_check'))
    )
    with op.batch_alter_table('mch_child_check', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mch_child_check_person_id'), ['person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_mch_child_check_patient_record_id'), ['patient_record_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_mch_child_check_organization_id'), ['organization_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_mch_child_check_check_date'), ['check_date'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('mch_child_check', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mch_child_check_check_date'))
        batch_op.drop_index(batch_op.f('ix_mch_child_check_organization_id'))
        batch_op.drop_index(batch_op.f('ix_mch_child_check_patient_record_id'))
        batch_op.drop_index(batch_op.f('ix_mch_child_check_person_id'))
    op.drop_table('mch_child_check')
