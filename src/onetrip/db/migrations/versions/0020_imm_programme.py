"""imm programme

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07

Issue 20 point 6: vaccination programmes (the free influenza campaign, HPV2), invitations, guardian reminders. Batch mode for SQLite.
"""
import sqlalchemy as sa
from alembic import op

import onetrip.db.base

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def _stamps() -> list[sa.Column]:
    return [sa.Column('id', sa.String(length=32), nullable=False),
            sa.Column('created_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
            sa.Column('updated_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False)]


def upgrade() -> None:
    op.create_table('imm_programme',
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name_zh', sa.String(length=128), nullable=False),
    sa.Column('name_en', sa.String(length=128), nullable=False),
    sa.Column('vaccine_code', sa.String(length=16), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('min_age_years', sa.Integer(), nullable=True),
    sa.Column('max_age_years', sa.Integer(), nullable=True),
    sa.Column('reference_date', sa.Date(), nullable=False),
    sa.Column('sex', sa.String(length=8), nullable=True),
    sa.Column('organization_id', sa.String(length=32), nullable=False),
    sa.Column('township', sa.String(length=64), nullable=True),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('end_date', sa.Date(), nullable=False),
    sa.Column('free', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    *_stamps(),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'],
                            name=op.f('fk_imm_programme_organization_id_organization')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_imm_programme')),
    sa.UniqueConstraint('code', name=op.f('uq_imm_programme_code'))
    )
    with op.batch_alter_table('imm_programme', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_imm_programme_organization_id'), ['organization_id'], unique=False)

    op.create_table('imm_invitation',
    sa.Column('programme_id', sa.String(length=32), nullable=False),
    sa.Column('person_id', sa.String(length=32), nullable=False),
    sa.Column('patient_record_id', sa.String(length=32), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('invited_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('contact', sa.String(length=8), nullable=False),
    sa.Column('notification_ref', sa.String(length=32), nullable=True),
    sa.Column('vaccination_id', sa.String(length=32), nullable=True),
    sa.Column('vaccinated_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=True),
    *_stamps(),
    sa.ForeignKeyConstraint(['programme_id'], ['imm_programme.id'],
                            name=op.f('fk_imm_invitation_programme_id_imm_programme')),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_imm_invitation_person_id_person')),
    sa.ForeignKeyConstraint(['patient_record_id'], ['patient_record.id'],
                            name=op.f('fk_imm_invitation_patient_record_id_patient_record')),
    sa.ForeignKeyConstraint(['vaccination_id'], ['imm_vaccination.id'],
                            name=op.f('fk_imm_invitation_vaccination_id_imm_vaccination')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_imm_invitation')),
    sa.UniqueConstraint('programme_id', 'person_id', name=op.f('uq_imm_invitation_programme_id_person_id'))
    )
    with op.batch_alter_table('imm_invitation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_imm_invitation_programme_id'), ['programme_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_imm_invitation_person_id'), ['person_id'], unique=False)

    op.create_table('imm_reminder',
    sa.Column('person_id', sa.String(length=32), nullable=False),
    sa.Column('patient_record_id', sa.String(length=32), nullable=True),
    sa.Column('series', sa.String(length=16), nullable=False),
    sa.Column('vaccine_code', sa.String(length=16), nullable=False),
    sa.Column('dose_number', sa.Integer(), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=False),
    sa.Column('sent_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('contact', sa.String(length=8), nullable=False),
    sa.Column('notification_ref', sa.String(length=32), nullable=False),
    *_stamps(),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_imm_reminder_person_id_person')),
    sa.ForeignKeyConstraint(['patient_record_id'], ['patient_record.id'],
                            name=op.f('fk_imm_reminder_patient_record_id_patient_record')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_imm_reminder')),
    sa.UniqueConstraint('person_id', 'series', 'dose_number',
                        name=op.f('uq_imm_reminder_person_id_series_dose_number'))
    )
    with op.batch_alter_table('imm_reminder', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_imm_reminder_person_id'), ['person_id'], unique=False)


def downgrade() -> None:
    for table in ('imm_reminder', 'imm_invitation', 'imm_programme'):
        op.drop_table(table)
