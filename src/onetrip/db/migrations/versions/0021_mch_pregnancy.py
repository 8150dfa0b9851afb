"""mch pregnancy

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07

Issue 21 point 1: pregnancy records, visits, five-colour risk grades, case management (RULES R11.1, R11.2). Batch mode for SQLite.
"""
import sqlalchemy as sa
from alembic import op

import onetrip.db.base

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def _stamps() -> list[sa.Column]:
    return [sa.Column('id', sa.String(length=32), nullable=False),
            sa.Column('created_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
            sa.Column('updated_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False)]


def upgrade() -> None:
    op.create_table('mch_pregnancy',
    sa.Column('person_id', sa.String(length=32), nullable=False),
    sa.Column('patient_record_id', sa.String(length=32), nullable=False),
    sa.Column('organization_id', sa.String(length=32), nullable=False),
    sa.Column('lmp', sa.Date(), nullable=False),
    sa.Column('edd', sa.Date(), nullable=False),
    sa.Column('edd_source', sa.String(length=12), nullable=False),
    sa.Column('scan_date', sa.Date(), nullable=True),
    sa.Column('scan_ga_days', sa.Integer(), nullable=True),
    sa.Column('booked_on', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('facts', onetrip.db.base.JSONVariant, nullable=False),
    sa.Column('risk_colour', sa.String(length=8), nullable=False),
    sa.Column('purple', sa.Boolean(), nullable=False),
    sa.Column('risk_reasons', onetrip.db.base.JSONVariant, nullable=False),
    sa.Column('case_manager_id', sa.String(length=32), nullable=True),
    sa.Column('case_manager_name', sa.String(length=64), nullable=True),
    sa.Column('case_plan', sa.Text(), nullable=True),
    sa.Column('referral_id', sa.String(length=32), nullable=True),
    sa.Column('delivery_date', sa.Date(), nullable=True),
    sa.Column('discharge_date', sa.Date(), nullable=True),
    sa.Column('delivery_outcome', sa.String(length=16), nullable=True),
    sa.Column('delivery_mode', sa.String(length=16), nullable=True),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    *_stamps(),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_mch_pregnancy_person_id_person')),
    sa.ForeignKeyConstraint(['patient_record_id'], ['patient_record.id'],
                            name=op.f('fk_mch_pregnancy_patient_record_id_patient_record')),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'],
                            name=op.f('fk_mch_pregnancy_organization_id_organization')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mch_pregnancy'))
    )
    with op.batch_alter_table('mch_pregnancy', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mch_pregnancy_person_id'), ['person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_mch_pregnancy_patient_record_id'), ['patient_record_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_mch_pregnancy_organization_id'), ['organization_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_mch_pregnancy_status'), ['status'], unique=False)

    op.create_table('mch_pregnancy_visit',
    sa.Column('pregnancy_id', sa.String(length=32), nullable=False),
    sa.Column('person_id', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('visit_date', sa.Date(), nullable=False),
    sa.Column('ga_days', sa.Integer(), nullable=True),
    sa.Column('findings', onetrip.db.base.JSONVariant, nullable=False),
    sa.Column('facts', onetrip.db.base.JSONVariant, nullable=False),
    sa.Column('recorded_by', sa.String(length=64), nullable=True),
    *_stamps(),
    sa.ForeignKeyConstraint(['pregnancy_id'], ['mch_pregnancy.id'],
                            name=op.f('fk_mch_pregnancy_visit_pregnancy_id_mch_pregnancy')),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_mch_pregnancy_visit_person_id_person')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mch_pregnancy_visit'))
    )
    with op.batch_alter_table('mch_pregnancy_visit', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mch_pregnancy_visit_pregnancy_id'), ['pregnancy_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_mch_pregnancy_visit_person_id'), ['person_id'], unique=False)

    op.create_table('mch_risk_grade',
    sa.Column('pregnancy_id', sa.String(length=32), nullable=False),
    sa.Column('visit_id', sa.String(length=32), nullable=True),
    sa.Column('graded_on', sa.Date(), nullable=False),
    sa.Column('colour', sa.String(length=8), nullable=False),
    sa.Column('purple', sa.Boolean(), nullable=False),
    sa.Column('reasons', onetrip.db.base.JSONVariant, nullable=False),
    sa.Column('graded_by', sa.String(length=64), nullable=True),
    *_stamps(),
    sa.ForeignKeyConstraint(['pregnancy_id'], ['mch_pregnancy.id'],
                            name=op.f('fk_mch_risk_grade_pregnancy_id_mch_pregnancy')),
    sa.ForeignKeyConstraint(['visit_id'], ['mch_pregnancy_visit.id'],
                            name=op.f('fk_mch_risk_grade_visit_id_mch_pregnancy_visit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mch_risk_grade'))
    )
    with op.batch_alter_table('mch_risk_grade', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mch_risk_grade_pregnancy_id'), ['pregnancy_id'], unique=False)


def downgrade() -> None:
    for table in ('mch_risk_grade', 'mch_pregnancy_visit', 'mch_pregnancy'):
        op.drop_table(table)
