"""referral

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23

Issue 6: two-way referral — the referral (ServiceRequest + Task) with its lifecycle timestamps, package
fields and SLA times, and the follow-ups a referral creates at the branch (RULES R2.5). Batch mode for SQLite.
(Outgoing notifications have their own revision, 0012.)
"""
import sqlalchemy as sa
from alembic import op

import onetrip.db.base

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('referral',
    sa.Column('person_id', sa.String(length=32), nullable=False),
    sa.Column('patient_record_id', sa.String(length=32), nullable=True),
    sa.Column('direction', sa.String(length=4), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('urgent', sa.Boolean(), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('from_organization_id', sa.String(length=32), nullable=False),
    sa.Column('from_department_id', sa.String(length=32), nullable=True),
    sa.Column('requester_user_id', sa.String(length=32), nullable=True),
    sa.Column('requester_name', sa.String(length=64), nullable=True),
    sa.Column('to_organization_id', sa.String(length=32), nullable=True),
    sa.Column('to_department_id', sa.String(length=32), nullable=True),
    sa.Column('receiver_user_id', sa.String(length=32), nullable=True),
    sa.Column('receiver_name', sa.String(length=64), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('criteria_codes', onetrip.db.base.JSONVariant, nullable=False),
    sa.Column('diagnoses', onetrip.db.base.JSONVariant, nullable=False),
    sa.Column('history_summary', sa.Text(), nullable=True),
    sa.Column('treatment_summary', sa.Text(), nullable=True),
    sa.Column('medications', onetrip.db.base.JSONVariant, nullable=False),
    sa.Column('discharge_summary', sa.Text(), nullable=True),
    sa.Column('rehab_plan', sa.Text(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('reject_reason', sa.String(length=500), nullable=True),
    sa.Column('cancel_reason', sa.String(length=500), nullable=True),
    sa.Column('submitted_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('due_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('escalate_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('escalated_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('accepted_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('rejected_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('scheduled_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('arrived_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('completed_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('cancelled_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('expired_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('appointment_id', sa.String(length=32), nullable=True),
    sa.Column('reserved_slot', sa.Boolean(), nullable=False),
    sa.Column('access_until', onetrip.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('created_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['appointment_id'], ['sched_appointment.id'], name=op.f('fk_referral_appointment_id_sched_appointment')),
    sa.ForeignKeyConstraint(['from_department_id'], ['department.id'], name=op.f('fk_referral_from_department_id_department')),
    sa.ForeignKeyConstraint(['from_organization_id'], ['organization.id'], name=op.f('fk_referral_from_organization_id_organization')),
    sa.ForeignKeyConstraint(['patient_record_id'], ['patient_record.id'], name=op.f('fk_referral_patient_record_id_patient_record')),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_referral_person_id_person')),
    sa.ForeignKeyConstraint(['receiver_user_id'], ['app_user.id'], name=op.f('fk_referral_receiver_user_id_app_user')),
    sa.ForeignKeyConstraint(['requester_user_id'], ['app_user.id'], name=op.f('fk_referral_requester_user_id_app_user')),
    sa.ForeignKeyConstraint(['to_department_id'], ['department.id'], name=op.f('fk_referral_to_department_id_department')),
    sa.ForeignKeyConstraint(['to_organization_id'], ['organization.id'], name=op.f('fk_referral_to_organization_id_organization')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_referral'))
    )
    with op.batch_alter_table('referral', schema=None) as batch_op:
        batch_op.create_index('ix_referral_from_status', ['from_organization_id', 'status'], unique=False)
        batch_op.create_index('ix_referral_person', ['person_id', 'created_at'], unique=False)
        batch_op.create_index('ix_referral_status_due', ['status', 'due_at'], unique=False)
        batch_op.create_index('ix_referral_submitted', ['submitted_at'], unique=False)
        batch_op.create_index('ix_referral_to_status', ['to_organization_id', 'status'], unique=False)

    op.create_table('referral_followup',
    sa.Column('referral_id', sa.String(length=32), nullable=False),
    sa.Column('person_id', sa.String(length=32), nullable=False),
    sa.Column('organization_id', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('done_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('done_by', sa.String(length=64), nullable=True),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('created_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_referral_followup_organization_id_organization')),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_referral_followup_person_id_person')),
    sa.ForeignKeyConstraint(['referral_id'], ['referral.id'], name=op.f('fk_referral_followup_referral_id_referral')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_referral_followup'))
    )
    with op.batch_alter_table('referral_followup', schema=None) as batch_op:
        batch_op.create_index('ix_referral_followup_org_status', ['organization_id', 'status', 'due_on'], unique=False)
        batch_op.create_index('ix_referral_followup_person', ['person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_referral_followup_referral_id'), ['referral_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('referral_followup', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_referral_followup_referral_id'))
        batch_op.drop_index('ix_referral_followup_person')
        batch_op.drop_index('ix_referral_followup_org_status')

    op.drop_table('referral_followup')
    with op.batch_alter_table('referral', schema=None) as batch_op:
        batch_op.drop_index('ix_referral_to_status')
        batch_op.drop_index('ix_referral_submitted')
        batch_op.drop_index('ix_referral_status_due')
        batch_op.drop_index('ix_referral_person')
        batch_op.drop_index('ix_referral_from_status')

    op.drop_table('referral')
