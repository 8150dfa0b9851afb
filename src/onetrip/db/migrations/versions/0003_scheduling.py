"""scheduling

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

Scheduling (issue 5): exam catalogue, resources, weekly templates, closures, slots (capacity enforced
by CHECK constraints), exam orders, appointments. The lead re-chains down_revision after the MPI (0002).
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import onetrip.db.base

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('exam_type',
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('name_en', sa.String(length=128), nullable=False),
    sa.Column('modality', sa.String(length=16), nullable=False),
    sa.Column('duration_minutes', sa.Integer(), nullable=False),
    sa.Column('tags', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('prep_zh', sa.String(length=1000), nullable=True),
    sa.Column('prep_en', sa.String(length=1000), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('created_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exam_type')),
    sa.UniqueConstraint('code', name=op.f('uq_exam_type_code'))
    )
    op.create_table('sched_exam_order',
    sa.Column('person_id', sa.String(length=32), nullable=False),
    sa.Column('patient_record_id', sa.String(length=32), nullable=False),
    sa.Column('organization_id', sa.String(length=32), nullable=False),
    sa.Column('exam_code', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('appointment_id', sa.String(length=32), nullable=True),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('created_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_sched_exam_order_organization_id_organization')),
    sa.ForeignKeyConstraint(['patient_record_id'], ['patient_record.id'], name=op.f('fk_sched_exam_order_patient_record_id_patient_record')),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_sched_exam_order_person_id_person')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sched_exam_order'))
    )
    with op.batch_alter_table('sched_exam_order', schema=None) as batch_op:
        batch_op.create_index('ix_sched_exam_order_person_status', ['person_id', 'status'], unique=False)

    op.create_table('sched_resource',
    sa.Column('organization_id', sa.String(length=32), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('modality', sa.String(length=16), nullable=False),
    sa.Column('exam_codes', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('practitioner_id', sa.String(length=32), nullable=True),
    sa.Column('department_id', sa.String(length=32), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('created_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['department_id'], ['department.id'], name=op.f('fk_sched_resource_department_id_department')),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_sched_resource_organization_id_organization')),
    sa.ForeignKeyConstraint(['practitioner_id'], ['practitioner.id'], name=op.f('fk_sched_resource_practitioner_id_practitioner')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sched_resource')),
    sa.UniqueConstraint('organization_id', 'code', name=op.f('uq_sched_resource_organization_id_code'))
    )
    with op.batch_alter_table('sched_resource', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sched_resource_organization_id'), ['organization_id'], unique=False)

    op.create_table('sched_closure',
    sa.Column('organization_id', sa.String(length=32), nullable=False),
    sa.Column('resource_id', sa.String(length=32), nullable=True),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=False),
    sa.Column('reason', sa.String(length=255), nullable=True),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('created_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_sched_closure_organization_id_organization')),
    sa.ForeignKeyConstraint(['resource_id'], ['sched_resource.id'], name=op.f('fk_sched_closure_resource_id_sched_resource')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sched_closure'))
    )
    with op.batch_alter_table('sched_closure', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sched_closure_organization_id'), ['organization_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sched_closure_resource_id'), ['resource_id'], unique=False)

    op.create_table('sched_slot',
    sa.Column('resource_id', sa.String(length=32), nullable=False),
    sa.Column('organization_id', sa.String(length=32), nullable=False),
    sa.Column('start', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('end', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.Column('booked', sa.Integer(), nullable=False),
    sa.Column('reserved', sa.Integer(), nullable=False),
    sa.Column('reserved_booked', sa.Integer(), nullable=False),
    sa.Column('reserved_purpose', sa.String(length=32), nullable=True),
    sa.Column('release_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('blocked', sa.Boolean(), nullable=False),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('created_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('booked >= 0 AND booked <= capacity', name=op.f('ck_sched_slot_booked_within_capacity')),
    sa.CheckConstraint('reserved >= 0 AND reserved <= capacity', name=op.f('ck_sched_slot_reserved_within_capacity')),
    sa.CheckConstraint('reserved_booked >= 0 AND reserved_booked <= reserved AND reserved_booked <= booked', name=op.f('ck_sched_slot_reserved_booked_within')),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_sched_slot_organization_id_organization')),
    sa.ForeignKeyConstraint(['resource_id'], ['sched_resource.id'], name=op.f('fk_sched_slot_resource_id_sched_resource')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sched_slot')),
    sa.UniqueConstraint('resource_id', 'start', name=op.f('uq_sched_slot_resource_id_start'))
    )
    with op.batch_alter_table('sched_slot', schema=None) as batch_op:
        batch_op.create_index('ix_sched_slot_org_start', ['organization_id', 'start'], unique=False)
        batch_op.create_index('ix_sched_slot_release', ['release_at'], unique=False)

    op.create_table('sched_template',
    sa.Column('resource_id', sa.String(length=32), nullable=False),
    sa.Column('weekday', sa.Integer(), nullable=False),
    sa.Column('start_time', sa.String(length=5), nullable=False),
    sa.Column('end_time', sa.String(length=5), nullable=False),
    sa.Column('slot_minutes', sa.Integer(), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.Column('reserved_share', sa.Double(), nullable=True),
    sa.Column('reserved_purpose', sa.String(length=32), nullable=True),
    sa.Column('valid_from', sa.Date(), nullable=True),
    sa.Column('valid_to', sa.Date(), nullable=True),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('created_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('slot_minutes > 0 AND capacity > 0', name=op.f('ck_sched_template_positive')),
    sa.CheckConstraint('weekday >= 0 AND weekday <= 6', name=op.f('ck_sched_template_weekday_range')),
    sa.ForeignKeyConstraint(['resource_id'], ['sched_resource.id'], name=op.f('fk_sched_template_resource_id_sched_resource')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sched_template'))
    )
    with op.batch_alter_table('sched_template', schema=None) as batch_op:
        batch_op.create_index('ix_sched_template_resource_weekday', ['resource_id', 'weekday'], unique=False)

    op.create_table('sched_appointment',
    sa.Column('person_id', sa.String(length=32), nullable=False),
    sa.Column('patient_record_id', sa.String(length=32), nullable=False),
    sa.Column('organization_id', sa.String(length=32), nullable=False),
    sa.Column('booking_organization_id', sa.String(length=32), nullable=True),
    sa.Column('slot_id', sa.String(length=32), nullable=False),
    sa.Column('resource_id', sa.String(length=32), nullable=False),
    sa.Column('exam_code', sa.String(length=32), nullable=False),
    sa.Column('start', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('end', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('precise', sa.Boolean(), nullable=False),
    sa.Column('used_reserved', sa.Boolean(), nullable=False),
    sa.Column('purpose', sa.String(length=32), nullable=True),
    sa.Column('hold_expires_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('booked_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('checked_in_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('cancelled_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('cancel_reason', sa.String(length=64), nullable=True),
    sa.Column('rescheduled_from_id', sa.String(length=32), nullable=True),
    sa.Column('order_id', sa.String(length=32), nullable=True),
    sa.Column('booked_by', sa.String(length=64), nullable=True),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('created_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['booking_organization_id'], ['organization.id'], name=op.f('fk_sched_appointment_booking_organization_id_organization')),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_sched_appointment_organization_id_organization')),
    sa.ForeignKeyConstraint(['patient_record_id'], ['patient_record.id'], name=op.f('fk_sched_appointment_patient_record_id_patient_record')),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_sched_appointment_person_id_person')),
    sa.ForeignKeyConstraint(['resource_id'], ['sched_resource.id'], name=op.f('fk_sched_appointment_resource_id_sched_resource')),
    sa.ForeignKeyConstraint(['slot_id'], ['sched_slot.id'], name=op.f('fk_sched_appointment_slot_id_sched_slot')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sched_appointment'))
    )
    with op.batch_alter_table('sched_appointment', schema=None) as batch_op:
        batch_op.create_index('ix_sched_appointment_org_start', ['organization_id', 'start'], unique=False)
        batch_op.create_index('ix_sched_appointment_person', ['person_id', 'start'], unique=False)
        batch_op.create_index('ix_sched_appointment_slot', ['slot_id'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('sched_appointment', schema=None) as batch_op:
        batch_op.drop_index('ix_sched_appointment_slot')
        batch_op.drop_index('ix_sched_appointment_person')
        batch_op.drop_index('ix_sched_appointment_org_start')

    op.drop_table('sched_appointment')
    with op.batch_alter_table('sched_template', schema=None) as batch_op:
        batch_op.drop_index('ix_sched_template_resource_weekday')

    op.drop_table('sched_template')
    with op.batch_alter_table('sched_slot', schema=None) as batch_op:
        batch_op.drop_index('ix_sched_slot_release')
        batch_op.drop_index('ix_sched_slot_org_start')

    op.drop_table('sched_slot')
    with op.batch_alter_table('sched_closure', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sched_closure_resource_id'))
        batch_op.drop_index(batch_op.f('ix_sched_closure_organization_id'))

    op.drop_table('sched_closure')
    with op.batch_alter_table('sched_resource', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sched_resource_organization_id'))

    op.drop_table('sched_resource')
    with op.batch_alter_table('sched_exam_order', schema=None) as batch_op:
        batch_op.drop_index('ix_sched_exam_order_person_status')

    op.drop_table('sched_exam_order')
    op.drop_table('exam_type')

