"""records

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23

Shared results (issue 4): orders, diagnostic reports, observations, imaging studies; each unique on the
sender's identifier per issuing organization. Batch mode, SQLite and PostgreSQL.
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import onetrip.db.base

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('rec_service_request',
    sa.Column('intent', sa.String(length=24), nullable=False),
    sa.Column('authored_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('person_id', sa.String(length=32), nullable=False),
    sa.Column('patient_record_id', sa.String(length=32), nullable=False),
    sa.Column('organization_id', sa.String(length=32), nullable=False),
    sa.Column('identifier_system', sa.String(length=200), nullable=False),
    sa.Column('identifier_value', sa.String(length=100), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('code_local', sa.String(length=64), nullable=True),
    sa.Column('code_system', sa.String(length=100), nullable=True),
    sa.Column('code', sa.String(length=64), nullable=True),
    sa.Column('display', sa.String(length=200), nullable=True),
    sa.Column('resource', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('created_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_rec_service_request_organization_id_organization')),
    sa.ForeignKeyConstraint(['patient_record_id'], ['patient_record.id'], name=op.f('fk_rec_service_request_patient_record_id_patient_record')),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_rec_service_request_person_id_person')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rec_service_request')),
    sa.UniqueConstraint('organization_id', 'identifier_system', 'identifier_value', name=op.f('uq_rec_service_request_organization_id_identifier_system_identifier_value'))
    )
    with op.batch_alter_table('rec_service_request', schema=None) as batch_op:
        batch_op.create_index('ix_rec_service_request_person', ['person_id', 'authored_at'], unique=False)

    op.create_table('rec_diagnostic_report',
    sa.Column('category', sa.String(length=16), nullable=False),
    sa.Column('section', sa.String(length=16), nullable=True),
    sa.Column('effective_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('issued', onetrip.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('conclusion', sa.Text(), nullable=True),
    sa.Column('recognition_mark', sa.String(length=16), nullable=True),
    sa.Column('service_request_id', sa.String(length=32), nullable=True),
    sa.Column('person_id', sa.String(length=32), nullable=False),
    sa.Column('patient_record_id', sa.String(length=32), nullable=False),
    sa.Column('organization_id', sa.String(length=32), nullable=False),
    sa.Column('identifier_system', sa.String(length=200), nullable=False),
    sa.Column('identifier_value', sa.String(length=100), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('code_local', sa.String(length=64), nullable=True),
    sa.Column('code_system', sa.String(length=100), nullable=True),
    sa.Column('code', sa.String(length=64), nullable=True),
    sa.Column('display', sa.String(length=200), nullable=True),
    sa.Column('resource', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('created_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_rec_diagnostic_report_organization_id_organization')),
    sa.ForeignKeyConstraint(['patient_record_id'], ['patient_record.id'], name=op.f('fk_rec_diagnostic_report_patient_record_id_patient_record')),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_rec_diagnostic_report_person_id_person')),
    sa.ForeignKeyConstraint(['service_request_id'], ['rec_service_request.id'], name=op.f('fk_rec_diagnostic_report_service_request_id_rec_service_request')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rec_diagnostic_report')),
    sa.UniqueConstraint('organization_id', 'identifier_system', 'identifier_value', name=op.f('uq_rec_diagnostic_report_organization_id_identifier_system_identifier_value'))
    )
    with op.batch_alter_table('rec_diagnostic_report', schema=None) as batch_op:
        batch_op.create_index('ix_rec_diagnostic_report_person', ['person_id', 'effective_at'], unique=False)

    op.create_table('rec_imaging_study',
    sa.Column('modality', sa.String(length=8), nullable=True),
    sa.Column('series_count', sa.Integer(), nullable=True),
    sa.Column('instance_count', sa.Integer(), nullable=True),
    sa.Column('started_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('accession', sa.String(length=64), nullable=True),
    sa.Column('report_id', sa.String(length=32), nullable=True),
    sa.Column('person_id', sa.String(length=32), nullable=False),
    sa.Column('patient_record_id', sa.String(length=32), nullable=False),
    sa.Column('organization_id', sa.String(length=32), nullable=False),
    sa.Column('identifier_system', sa.String(length=200), nullable=False),
    sa.Column('identifier_value', sa.String(length=100), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('code_local', sa.String(length=64), nullable=True),
    sa.Column('code_system', sa.String(length=100), nullable=True),
    sa.Column('code', sa.String(length=64), nullable=True),
    sa.Column('display', sa.String(length=200), nullable=True),
    sa.Column('resource', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('created_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_rec_imaging_study_organization_id_organization')),
    sa.ForeignKeyConstraint(['patient_record_id'], ['patient_record.id'], name=op.f('fk_rec_imaging_study_patient_record_id_patient_record')),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_rec_imaging_study_person_id_person')),
    sa.ForeignKeyConstraint(['report_id'], ['rec_diagnostic_report.id'], name=op.f('fk_rec_imaging_study_report_id_rec_diagnostic_report')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rec_imaging_study')),
    sa.UniqueConstraint('organization_id', 'identifier_system', 'identifier_value', name=op.f('uq_rec_imaging_study_organization_id_identifier_system_identifier_value'))
    )
    with op.batch_alter_table('rec_imaging_study', schema=None) as batch_op:
        batch_op.create_index('ix_rec_imaging_study_person', ['person_id', 'started_at'], unique=False)

    op.create_table('rec_observation',
    sa.Column('report_id', sa.String(length=32), nullable=True),
    sa.Column('effective_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('value_quantity', sa.Float(), nullable=True),
    sa.Column('value_string', sa.String(length=500), nullable=True),
    sa.Column('unit', sa.String(length=32), nullable=True),
    sa.Column('reference_low', sa.Float(), nullable=True),
    sa.Column('reference_high', sa.Float(), nullable=True),
    sa.Column('reference_text', sa.String(length=100), nullable=True),
    sa.Column('interpretation', sa.String(length=8), nullable=True),
    sa.Column('person_id', sa.String(length=32), nullable=False),
    sa.Column('patient_record_id', sa.String(length=32), nullable=False),
    sa.Column('organization_id', sa.String(length=32), nullable=False),
    sa.Column('identifier_system', sa.String(length=200), nullable=False),
    sa.Column('identifier_value', sa.String(length=100), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('code_local', sa.String(length=64), nullable=True),
    sa.Column('code_system', sa.String(length=100), nullable=True),
    sa.Column('code', sa.String(length=64), nullable=True),
    sa.Column('display', sa.String(length=200), nullable=True),
    sa.Column('resource', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('created_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_rec_observation_organization_id_organization')),
    sa.ForeignKeyConstraint(['patient_record_id'], ['patient_record.id'], name=op.f('fk_rec_observation_patient_record_id_patient_record')),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_rec_observation_person_id_person')),
    sa.ForeignKeyConstraint(['report_id'], ['rec_diagnostic_report.id'], name=op.f('fk_rec_observation_report_id_rec_diagnostic_report')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rec_observation')),
    sa.UniqueConstraint('organization_id', 'identifier_system', 'identifier_value', name=op.f('uq_rec_observation_organization_id_identifier_system_identifier_value'))
    )
    with op.batch_alter_table('rec_observation', schema=None) as batch_op:
        batch_op.create_index('ix_rec_observation_person_code', ['person_id', 'code', 'effective_at'], unique=False)
        batch_op.create_index('ix_rec_observation_report', ['report_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('rec_observation', schema=None) as batch_op:
        batch_op.drop_index('ix_rec_observation_report')
        batch_op.drop_index('ix_rec_observation_person_code')

    op.drop_table('rec_observation')
    with op.batch_alter_table('rec_imaging_study', schema=None) as batch_op:
        batch_op.drop_index('ix_rec_imaging_study_person')

    op.drop_table('rec_imaging_study')
    with op.batch_alter_table('rec_diagnostic_report', schema=None) as batch_op:
        batch_op.drop_index('ix_rec_diagnostic_report_person')

    op.drop_table('rec_diagnostic_report')
    with op.batch_alter_table('rec_service_request', schema=None) as batch_op:
        batch_op.drop_index('ix_rec_service_request_person')

    op.drop_table('rec_service_request')
