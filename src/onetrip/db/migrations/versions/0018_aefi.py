"""aefi

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07

Issue 20 point 5: AEFI reports (adverse events following immunization) with their 48 h / 2 h deadlines (RULES R6.7). Batch mode for SQLite.
"""
import sqlalchemy as sa
from alembic import op

import onetrip.db.base

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    stamp = onetrip.db.base.UTCDateTime(timezone=True)
    op.create_table('imm_aefi_report',
    sa.Column('person_id', sa.String(length=32), nullable=False),
    sa.Column('patient_record_id', sa.String(length=32), nullable=False),
    sa.Column('organization_id', sa.String(length=32), nullable=False),
    sa.Column('vaccination_id', sa.String(length=32), nullable=True),
    sa.Column('vaccine_code', sa.String(length=16), nullable=False),
    sa.Column('onset_at', stamp, nullable=False),
    sa.Column('discovered_at', stamp, nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('cluster', sa.Boolean(), nullable=False),
    sa.Column('symptoms', onetrip.db.base.JSONVariant, nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('deadline_at', stamp, nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_by', sa.String(length=128), nullable=False),
    sa.Column('reported_at', stamp, nullable=True),
    sa.Column('reported_by', sa.String(length=128), nullable=True),
    sa.Column('late', sa.Boolean(), nullable=False),
    sa.Column('closed_at', stamp, nullable=True),
    sa.Column('closed_by', sa.String(length=128), nullable=True),
    sa.Column('outcome', sa.Text(), nullable=True),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('created_at', stamp, nullable=False),
    sa.Column('updated_at', stamp, nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'],
                            name=op.f('fk_imm_aefi_report_organization_id_organization')),
    sa.ForeignKeyConstraint(['patient_record_id'], ['patient_record.id'],
                            name=op.f('fk_imm_aefi_report_patient_record_id_patient_record')),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_imm_aefi_report_person_id_person')),
    sa.ForeignKeyConstraint(['vaccination_id'], ['imm_vaccination.id'],
                            name=op.f('fk_imm_aefi_report_vaccination_id_imm_vaccination')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_imm_aefi_report'))
    )
    with op.batch_alter_table('imm_aefi_report', schema=None) as batch_op:
        for col in ('person_id', 'patient_record_id', 'organization_id', 'vaccination_id', 'deadline_at', 'status'):
            batch_op.create_index(batch_op.f(f'ix_imm_aefi_report_{col}'), [col], unique=False)


def downgrade() -> None:
    op.drop_table('imm_aefi_report')
