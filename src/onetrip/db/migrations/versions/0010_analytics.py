"""analytics

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23

Issue 8: visits (encounter), daily facts with the consumer cursor, family-doctor projections, catchment
denominators and the report archive. Batch mode for SQLite.
"""
import sqlalchemy as sa
from alembic import op

import onetrip.db.base

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

UTC = onetrip.db.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('encounter',
    sa.Column('person_id', sa.String(length=32), nullable=False),
    sa.Column('patient_record_id', sa.String(length=32), nullable=True),
    sa.Column('organization_id', sa.String(length=32), nullable=True),
    sa.Column('department_id', sa.String(length=32), nullable=True),
    sa.Column('community_id', sa.String(length=32), nullable=True),
    sa.Column('organization_level', sa.String(length=8), nullable=False),
    sa.Column('in_county', sa.Boolean(), nullable=False),
    sa.Column('encounter_class', sa.String(length=8), nullable=False),
    sa.Column('visit_date', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('outside_institution', sa.String(length=128), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.Column('updated_at', UTC, nullable=False),
    sa.ForeignKeyConstraint(['community_id'], ['medical_community.id'],
                            name=op.f('fk_encounter_community_id_medical_community')),
    sa.ForeignKeyConstraint(['department_id'], ['department.id'], name=op.f('fk_encounter_department_id_department')),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'],
                            name=op.f('fk_encounter_organization_id_organization')),
    sa.ForeignKeyConstraint(['patient_record_id'], ['patient_record.id'],
                            name=op.f('fk_encounter_patient_record_id_patient_record')),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_encounter_person_id_person')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_encounter'))
    )
    with op.batch_alter_table('encounter', schema=None) as batch_op:
        batch_op.create_index('ix_encounter_visit_date_org', ['visit_date', 'organization_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_encounter_person_id'), ['person_id'], unique=False)
    op.create_table('analytics_fact',
    sa.Column('measure', sa.String(length=32), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('community_id', sa.String(length=32), nullable=False),
    sa.Column('organization_id', sa.String(length=32), nullable=False),
    sa.Column('department_id', sa.String(length=32), nullable=False),
    sa.Column('bucket', sa.Integer(), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('measure', 'day', 'community_id', 'organization_id', 'department_id', 'bucket',
                            name=op.f('pk_analytics_fact'))
    )
    with op.batch_alter_table('analytics_fact', schema=None) as batch_op:
        batch_op.create_index('ix_analytics_fact_day', ['day'], unique=False)
    op.create_table('analytics_fact_month',
    sa.Column('measure', sa.String(length=32), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('community_id', sa.String(length=32), nullable=False),
    sa.Column('organization_id', sa.String(length=32), nullable=False),
    sa.Column('department_id', sa.String(length=32), nullable=False),
    sa.Column('bucket', sa.Integer(), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('measure', 'month', 'community_id', 'organization_id', 'department_id', 'bucket',
                            name=op.f('pk_analytics_fact_month'))
    )
    op.create_table('analytics_cursor',
    sa.Column('consumer', sa.String(length=32), nullable=False),
    sa.Column('last_id', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', UTC, nullable=False),
    sa.PrimaryKeyConstraint('consumer', name=op.f('pk_analytics_cursor'))
    )
    op.create_table('analytics_referral',
    sa.Column('referral_id', sa.String(length=32), nullable=False),
    sa.Column('direction', sa.String(length=4), nullable=False),
    sa.Column('from_organization_id', sa.String(length=32), nullable=False),
    sa.Column('to_department_id', sa.String(length=32), nullable=True),
    sa.Column('submitted_on', sa.Date(), nullable=True),
    sa.PrimaryKeyConstraint('referral_id', name=op.f('pk_analytics_referral'))
    )
    with op.batch_alter_table('analytics_referral', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_analytics_referral_submitted_on'), ['submitted_on'], unique=False)
    op.create_table('analytics_contract',
    sa.Column('contract_id', sa.String(length=32), nullable=False),
    sa.Column('person_id', sa.String(length=32), nullable=True),
    sa.Column('organization_id', sa.String(length=32), nullable=False),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('end_date', sa.Date(), nullable=True),
    sa.Column('key_group', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('contract_id', name=op.f('pk_analytics_contract'))
    )
    with op.batch_alter_table('analytics_contract', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_analytics_contract_organization_id'), ['organization_id'], unique=False)
    op.create_table('analytics_enrolment',
    sa.Column('programme', sa.String(length=16), nullable=False),
    sa.Column('person_id', sa.String(length=32), nullable=False),
    sa.Column('organization_id', sa.String(length=32), nullable=False),
    sa.Column('enrolled_on', sa.Date(), nullable=False),
    sa.Column('closed_on', sa.Date(), nullable=True),
    sa.PrimaryKeyConstraint('programme', 'person_id', name=op.f('pk_analytics_enrolment'))
    )
    with op.batch_alter_table('analytics_enrolment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_analytics_enrolment_organization_id'), ['organization_id'], unique=False)
    op.create_table('analytics_followup',
    sa.Column('followup_id', sa.String(length=32), nullable=False),
    sa.Column('programme', sa.String(length=16), nullable=False),
    sa.Column('person_id', sa.String(length=32), nullable=True),
    sa.Column('organization_id', sa.String(length=32), nullable=False),
    sa.Column('visit_date', sa.Date(), nullable=False),
    sa.Column('controlled', sa.Boolean(), nullable=False),
    sa.Column('on_schedule', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('followup_id', name=op.f('pk_analytics_followup'))
    )
    with op.batch_alter_table('analytics_followup', schema=None) as batch_op:
        batch_op.create_index('ix_analytics_followup_person', ['programme', 'person_id', 'visit_date'], unique=False)
    op.create_table('analytics_catchment',
    sa.Column('organization_id', sa.String(length=32), nullable=False),
    sa.Column('residents', sa.BigInteger(), nullable=False),
    sa.Column('hypertension_estimated', sa.BigInteger(), nullable=True),
    sa.Column('diabetes_estimated', sa.BigInteger(), nullable=True),
    sa.Column('created_at', UTC, nullable=False),
    sa.Column('updated_at', UTC, nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'],
                            name=op.f('fk_analytics_catchment_organization_id_organization')),
    sa.PrimaryKeyConstraint('organization_id', name=op.f('pk_analytics_catchment'))
    )
    op.create_table('analytics_report',
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('period', sa.String(length=8), nullable=False),
    sa.Column('scope', sa.String(length=32), nullable=False),
    sa.Column('fmt', sa.String(length=4), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('generated_at', UTC, nullable=False),
    sa.Column('generated_by', sa.String(length=64), nullable=False),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_analytics_report')),
    sa.UniqueConstraint('kind', 'period', 'scope', 'fmt', name=op.f('uq_analytics_report_kind_period_scope_fmt'))
    )


def downgrade() -> None:
    for table in ('analytics_report', 'analytics_catchment', 'analytics_followup', 'analytics_enrolment',
                  'analytics_contract', 'analytics_referral', 'analytics_cursor', 'analytics_fact_month', 'analytics_fact', 'encounter'):
        op.drop_table(table)
