"""mch screening

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07

Issue 21 point 5: the 两癌 screening campaign (cervical and breast), results and follow-up. Batch mode for SQLite.
"""
import sqlalchemy as sa
from alembic import op

import onetrip.db.base

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def _stamps() -> list[sa.Column]:
    return [sa.Column('id', sa.String(length=32), nullable=False),
            sa.Column('created_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
            sa.Column('updated_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False)]


def upgrade() -> None:
    op.create_table('mch_screening_campaign',
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('organization_id', sa.String(length=32), nullable=False),
    sa.Column('township', sa.String(length=64), nullable=True),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('end_date', sa.Date(), nullable=False),
    sa.Column('reference_date', sa.Date(), nullable=False),
    sa.Column('min_age', sa.Integer(), nullable=False),
    sa.Column('max_age', sa.Integer(), nullable=False),
    sa.Column('sex', sa.String(length=8), nullable=False),
    sa.Column('interval_years', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    *_stamps(),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'],
                            name=op.f('fk_mch_screening_campaign_organization_id_organization')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mch_screening_campaign')),
    sa.UniqueConstraint('code', name=op.f('uq_mch_screening_campaign_code'))
    )
    with op.batch_alter_table('mch_screening_campaign', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mch_screening_campaign_organization_id'), ['organization_id'],
                              unique=False)

    op.create_table('mch_screening',
    sa.Column('campaign_id', sa.String(length=32), nullable=False),
    sa.Column('person_id', sa.String(length=32), nullable=False),
    sa.Column('patient_record_id', sa.String(length=32), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('invited_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('contact', sa.String(length=8), nullable=True),
    sa.Column('notification_ref', sa.String(length=32), nullable=True),
    sa.Column('cervical_method', sa.String(length=16), nullable=True),
    sa.Column('cervical_result', sa.String(length=16), nullable=True),
    sa.Column('cervical_date', sa.Date(), nullable=True),
    sa.Column('breast_method', sa.String(length=16), nullable=True),
    sa.Column('breast_result', sa.String(length=16), nullable=True),
    sa.Column('breast_birads', sa.Integer(), nullable=True),
    sa.Column('breast_date', sa.Date(), nullable=True),
    sa.Column('positive', sa.Boolean(), nullable=False),
    sa.Column('positive_on', sa.Date(), nullable=True),
    sa.Column('diagnosis_deadline', sa.Date(), nullable=True),
    sa.Column('treatment_deadline', sa.Date(), nullable=True),
    sa.Column('diagnosis_date', sa.Date(), nullable=True),
    sa.Column('diagnosis_result', sa.String(length=16), nullable=True),
    sa.Column('treatment_date', sa.Date(), nullable=True),
    sa.Column('followup_status', sa.String(length=16), nullable=False),
    sa.Column('followup_note', sa.Text(), nullable=True),
    sa.Column('recorded_by', sa.String(length=64), nullable=True),
    *_stamps(),
    sa.ForeignKeyConstraint(['campaign_id'], ['mch_screening_campaign.id'],
                            name=op.f('fk_mch_screening_campaign_id_mch_screening_campaign')),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_mch_screening_person_id_person')),
    sa.ForeignKeyConstraint(['patient_record_id'], ['patient_record.id'],
                            name=op.f('fk_mch_screening_patient_record_id_patient_record')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mch_screening')),
    sa.UniqueConstraint('campaign_id', 'person_id', name=op.f('uq_mch_screening_campaign_id_person_id'))
    )
    with op.batch_alter_table('mch_screening', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mch_screening_campaign_id'), ['campaign_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_mch_screening_person_id'), ['person_id'], unique=False)


def downgrade() -> None:
    for table in ('mch_screening', 'mch_screening_campaign'):
        op.drop_table(table)
