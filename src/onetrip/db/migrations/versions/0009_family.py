"""family

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23

Issue 7: family-doctor teams, contracts (one active contract per resident: a partial unique index),
chronic-disease registries and follow-ups, self-check devices, readings and alerts, long prescriptions and
their delivery orders. Batch mode for SQLite.
"""
import sqlalchemy as sa
from alembic import op

import onetrip.db.base

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

TABLES = ('fam_delivery', 'fam_long_rx', 'fam_followup', 'fam_registry', 'fam_contract', 'fam_alert', 'fam_team',
          'fam_reading', 'fam_device')


def upgrade() -> None:
    op.create_table('fam_device',
    sa.Column('person_id', sa.String(length=32), nullable=True),
    sa.Column('organization_id', sa.String(length=32), nullable=True),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('serial', sa.String(length=64), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('last_seen_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('registered_by', sa.String(length=64), nullable=True),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('created_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_fam_device_organization_id_organization')),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_fam_device_person_id_person')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fam_device')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_fam_device_token_hash'))
    )
    with op.batch_alter_table('fam_device', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fam_device_person_id'), ['person_id'], unique=False)

    op.create_table('fam_reading',
    sa.Column('person_id', sa.String(length=32), nullable=False),
    sa.Column('measured_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sbp', sa.Float(), nullable=True),
    sa.Column('dbp', sa.Float(), nullable=True),
    sa.Column('pulse', sa.Float(), nullable=True),
    sa.Column('glucose', sa.Float(), nullable=True),
    sa.Column('glucose_context', sa.String(length=12), nullable=True),
    sa.Column('source', sa.String(length=8), nullable=False),
    sa.Column('device_id', sa.String(length=32), nullable=True),
    sa.Column('source_system', sa.String(length=200), nullable=True),
    sa.Column('source_id', sa.String(length=100), nullable=True),
    sa.Column('alerts', onetrip.db.base.JSONVariant, nullable=False),
    sa.Column('resource', onetrip.db.base.JSONVariant, nullable=True),
    sa.Column('created_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['fam_device.id'], name=op.f('fk_fam_reading_device_id_fam_device')),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_fam_reading_person_id_person')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fam_reading')),
    sa.UniqueConstraint('source_system', 'source_id', name=op.f('uq_fam_reading_source_system_source_id'))
    )
    with op.batch_alter_table('fam_reading', schema=None) as batch_op:
        batch_op.create_index('ix_fam_reading_person_time', ['person_id', 'measured_at'], unique=False)

    op.create_table('fam_team',
    sa.Column('organization_id', sa.String(length=32), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('doctor_id', sa.String(length=32), nullable=False),
    sa.Column('nurse_id', sa.String(length=32), nullable=False),
    sa.Column('public_health_id', sa.String(length=32), nullable=False),
    sa.Column('specialist_id', sa.String(length=32), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('created_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['doctor_id'], ['practitioner.id'], name=op.f('fk_fam_team_doctor_id_practitioner')),
    sa.ForeignKeyConstraint(['nurse_id'], ['practitioner.id'], name=op.f('fk_fam_team_nurse_id_practitioner')),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_fam_team_organization_id_organization')),
    sa.ForeignKeyConstraint(['public_health_id'], ['practitioner.id'], name=op.f('fk_fam_team_public_health_id_practitioner')),
    sa.ForeignKeyConstraint(['specialist_id'], ['practitioner.id'], name=op.f('fk_fam_team_specialist_id_practitioner')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fam_team')),
    sa.UniqueConstraint('organization_id', 'code', name=op.f('uq_fam_team_organization_id_code'))
    )
    with op.batch_alter_table('fam_team', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fam_team_doctor_id'), ['doctor_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_fam_team_organization_id'), ['organization_id'], unique=False)

    op.create_table('fam_alert',
    sa.Column('person_id', sa.String(length=32), nullable=False),
    sa.Column('team_id', sa.String(length=32), nullable=True),
    sa.Column('reading_id', sa.String(length=32), nullable=True),
    sa.Column('codes', onetrip.db.base.JSONVariant, nullable=False),
    sa.Column('summary', sa.String(length=200), nullable=False),
    sa.Column('acknowledged_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_by', sa.String(length=64), nullable=True),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('created_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_fam_alert_person_id_person')),
    sa.ForeignKeyConstraint(['reading_id'], ['fam_reading.id'], name=op.f('fk_fam_alert_reading_id_fam_reading')),
    sa.ForeignKeyConstraint(['team_id'], ['fam_team.id'], name=op.f('fk_fam_alert_team_id_fam_team')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fam_alert'))
    )
    with op.batch_alter_table('fam_alert', schema=None) as batch_op:
        batch_op.create_index('ix_fam_alert_person', ['person_id', 'created_at'], unique=False)
        batch_op.create_index('ix_fam_alert_team_open', ['team_id', 'acknowledged_at'], unique=False)

    op.create_table('fam_contract',
    sa.Column('person_id', sa.String(length=32), nullable=False),
    sa.Column('organization_id', sa.String(length=32), nullable=False),
    sa.Column('team_id', sa.String(length=32), nullable=False),
    sa.Column('doctor_id', sa.String(length=32), nullable=False),
    sa.Column('package', sa.String(length=16), nullable=False),
    sa.Column('addons', onetrip.db.base.JSONVariant, nullable=False),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('end_date', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('declared_groups', onetrip.db.base.JSONVariant, nullable=False),
    sa.Column('key_groups', onetrip.db.base.JSONVariant, nullable=False),
    sa.Column('signed_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('signed_by', sa.String(length=64), nullable=True),
    sa.Column('ended_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('end_reason', sa.String(length=16), nullable=True),
    sa.Column('previous_id', sa.String(length=32), nullable=True),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('created_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['doctor_id'], ['practitioner.id'], name=op.f('fk_fam_contract_doctor_id_practitioner')),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_fam_contract_organization_id_organization')),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_fam_contract_person_id_person')),
    sa.ForeignKeyConstraint(['team_id'], ['fam_team.id'], name=op.f('fk_fam_contract_team_id_fam_team')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fam_contract'))
    )
    with op.batch_alter_table('fam_contract', schema=None) as batch_op:
        batch_op.create_index('ix_fam_contract_doctor_status', ['doctor_id', 'status'], unique=False)
        batch_op.create_index('ix_fam_contract_org_status', ['organization_id', 'status'], unique=False)
        batch_op.create_index('ix_fam_contract_person', ['person_id', 'start_date'], unique=False)
        batch_op.create_index('ix_fam_contract_team_status', ['team_id', 'status'], unique=False)
        batch_op.create_index('uq_fam_contract_active_person', ['person_id'], unique=True, sqlite_where=sa.text("status = 'active'"), postgresql_where=sa.text("status = 'active'"))

    op.create_table('fam_registry',
    sa.Column('person_id', sa.String(length=32), nullable=False),
    sa.Column('programme', sa.String(length=16), nullable=False),
    sa.Column('organization_id', sa.String(length=32), nullable=False),
    sa.Column('team_id', sa.String(length=32), nullable=True),
    sa.Column('doctor_id', sa.String(length=32), nullable=True),
    sa.Column('diagnosis_code', sa.String(length=16), nullable=True),
    sa.Column('enrolled_on', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('closed_on', sa.Date(), nullable=True),
    sa.Column('close_reason', sa.String(length=32), nullable=True),
    sa.Column('last_visit_date', sa.Date(), nullable=True),
    sa.Column('next_due_date', sa.Date(), nullable=True),
    sa.Column('last_classification', sa.String(length=24), nullable=True),
    sa.Column('controlled', sa.Boolean(), nullable=True),
    sa.Column('consecutive_uncontrolled', sa.Integer(), nullable=False),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('created_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['doctor_id'], ['practitioner.id'], name=op.f('fk_fam_registry_doctor_id_practitioner')),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_fam_registry_organization_id_organization')),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_fam_registry_person_id_person')),
    sa.ForeignKeyConstraint(['team_id'], ['fam_team.id'], name=op.f('fk_fam_registry_team_id_fam_team')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fam_registry')),
    sa.UniqueConstraint('person_id', 'programme', name=op.f('uq_fam_registry_person_id_programme'))
    )
    with op.batch_alter_table('fam_registry', schema=None) as batch_op:
        batch_op.create_index('ix_fam_registry_doctor_due', ['doctor_id', 'status', 'next_due_date'], unique=False)
        batch_op.create_index('ix_fam_registry_org', ['organization_id', 'programme'], unique=False)
        batch_op.create_index('ix_fam_registry_team_due', ['team_id', 'status', 'next_due_date'], unique=False)

    op.create_table('fam_followup',
    sa.Column('registry_id', sa.String(length=32), nullable=False),
    sa.Column('person_id', sa.String(length=32), nullable=False),
    sa.Column('programme', sa.String(length=16), nullable=False),
    sa.Column('organization_id', sa.String(length=32), nullable=False),
    sa.Column('team_id', sa.String(length=32), nullable=True),
    sa.Column('doctor_id', sa.String(length=32), nullable=True),
    sa.Column('visit_date', sa.Date(), nullable=False),
    sa.Column('method', sa.String(length=8), nullable=False),
    sa.Column('sbp', sa.Float(), nullable=True),
    sa.Column('dbp', sa.Float(), nullable=True),
    sa.Column('heart_rate', sa.Float(), nullable=True),
    sa.Column('fasting_glucose', sa.Float(), nullable=True),
    sa.Column('random_glucose', sa.Float(), nullable=True),
    sa.Column('weight_kg', sa.Float(), nullable=True),
    sa.Column('symptoms', onetrip.db.base.JSONVariant, nullable=False),
    sa.Column('adverse_reaction', sa.Boolean(), nullable=False),
    sa.Column('complication', sa.Boolean(), nullable=False),
    sa.Column('medication', onetrip.db.base.JSONVariant, nullable=False),
    sa.Column('adherence', sa.String(length=16), nullable=True),
    sa.Column('lifestyle', onetrip.db.base.JSONVariant, nullable=False),
    sa.Column('classification', sa.String(length=24), nullable=False),
    sa.Column('controlled', sa.Boolean(), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('on_schedule', sa.Boolean(), nullable=False),
    sa.Column('next_due_date', sa.Date(), nullable=False),
    sa.Column('urgent_reasons', onetrip.db.base.JSONVariant, nullable=False),
    sa.Column('referral_id', sa.String(length=32), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('recorded_by', sa.String(length=64), nullable=True),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('created_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_fam_followup_organization_id_organization')),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_fam_followup_person_id_person')),
    sa.ForeignKeyConstraint(['registry_id'], ['fam_registry.id'], name=op.f('fk_fam_followup_registry_id_fam_registry')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fam_followup'))
    )
    with op.batch_alter_table('fam_followup', schema=None) as batch_op:
        batch_op.create_index('ix_fam_followup_org_date', ['organization_id', 'visit_date'], unique=False)
        batch_op.create_index('ix_fam_followup_person_date', ['person_id', 'visit_date'], unique=False)
        batch_op.create_index('ix_fam_followup_registry_date', ['registry_id', 'visit_date'], unique=False)

    op.create_table('fam_long_rx',
    sa.Column('person_id', sa.String(length=32), nullable=False),
    sa.Column('registry_id', sa.String(length=32), nullable=True),
    sa.Column('organization_id', sa.String(length=32), nullable=False),
    sa.Column('prescriber', sa.String(length=64), nullable=False),
    sa.Column('items', onetrip.db.base.JSONVariant, nullable=False),
    sa.Column('weeks', sa.Integer(), nullable=False),
    sa.Column('assessment', sa.Text(), nullable=True),
    sa.Column('patient_confirmed', sa.Boolean(), nullable=False),
    sa.Column('confirmed_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('issued_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('collected_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('collected_by_proxy', sa.Boolean(), nullable=True),
    sa.Column('collector_name', sa.String(length=64), nullable=True),
    sa.Column('collector_id_number', sa.String(length=18), nullable=True),
    sa.Column('patient_id_number', sa.String(length=18), nullable=True),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('created_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_fam_long_rx_organization_id_organization')),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_fam_long_rx_person_id_person')),
    sa.ForeignKeyConstraint(['registry_id'], ['fam_registry.id'], name=op.f('fk_fam_long_rx_registry_id_fam_registry')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fam_long_rx'))
    )
    with op.batch_alter_table('fam_long_rx', schema=None) as batch_op:
        batch_op.create_index('ix_fam_long_rx_person', ['person_id', 'issued_at'], unique=False)

    op.create_table('fam_delivery',
    sa.Column('prescription_id', sa.String(length=32), nullable=False),
    sa.Column('person_id', sa.String(length=32), nullable=False),
    sa.Column('address', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('packed_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('sent_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('delivered_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('carrier', sa.String(length=64), nullable=True),
    sa.Column('tracking_no', sa.String(length=64), nullable=True),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('created_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_fam_delivery_person_id_person')),
    sa.ForeignKeyConstraint(['prescription_id'], ['fam_long_rx.id'], name=op.f('fk_fam_delivery_prescription_id_fam_long_rx')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fam_delivery'))
    )
    with op.batch_alter_table('fam_delivery', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fam_delivery_prescription_id'), ['prescription_id'], unique=False)
        batch_op.create_index('ix_fam_delivery_status', ['status', 'created_at'], unique=False)


def downgrade() -> None:
    for name in TABLES:  # children before parents; dropping a table drops its indexes
        op.drop_table(name)
