"""vaccination

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07

Issue 20 point 2: vaccine products, lots, the smallest packages with their 20-character trace codes (RULES R6.6),
fridges (stock per clinic and fridge), temperature readings and cold-chain alarms (R6.7) and the vaccination record. Batch mode for SQLite.
"""
import sqlalchemy as sa
from alembic import op

import onetrip.db.base

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def _stamps() -> list[sa.Column]:
    return [sa.Column('id', sa.String(length=32), nullable=False),
            sa.Column('created_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
            sa.Column('updated_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False)]


def upgrade() -> None:
    op.create_table('imm_fridge',
    sa.Column('organization_id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('frozen', sa.Boolean(), nullable=False),
    sa.Column('sensor_key_hash', sa.String(length=64), nullable=True),
    *_stamps(),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'],
                            name=op.f('fk_imm_fridge_organization_id_organization')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_imm_fridge')),
    sa.UniqueConstraint('organization_id', 'name', name=op.f('uq_imm_fridge_organization_id_name'))
    )
    with op.batch_alter_table('imm_fridge', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_imm_fridge_organization_id'), ['organization_id'], unique=False)

    op.create_table('imm_vaccine_product',
    sa.Column('vaccine_code', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('holder', sa.String(length=128), nullable=False),
    sa.Column('specification', sa.String(length=64), nullable=False),
    sa.Column('doses_per_package', sa.Integer(), nullable=False),
    *_stamps(),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_imm_vaccine_product')),
    sa.UniqueConstraint('vaccine_code', 'name', 'holder', 'specification',
                        name=op.f('uq_imm_vaccine_product_vaccine_code_name_holder_specification'))
    )

    op.create_table('imm_vaccine_lot',
    sa.Column('product_id', sa.String(length=32), nullable=False),
    sa.Column('lot_number', sa.String(length=64), nullable=False),
    sa.Column('expiry', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('status_note', sa.Text(), nullable=True),
    *_stamps(),
    sa.ForeignKeyConstraint(['product_id'], ['imm_vaccine_product.id'],
                            name=op.f('fk_imm_vaccine_lot_product_id_imm_vaccine_product')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_imm_vaccine_lot')),
    sa.UniqueConstraint('product_id', 'lot_number', name=op.f('uq_imm_vaccine_lot_product_id_lot_number'))
    )
    with op.batch_alter_table('imm_vaccine_lot', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_imm_vaccine_lot_product_id'), ['product_id'], unique=False)

    op.create_table('imm_vaccine_package',
    sa.Column('trace_code', sa.String(length=20), nullable=False),
    sa.Column('lot_id', sa.String(length=32), nullable=False),
    sa.Column('organization_id', sa.String(length=32), nullable=False),
    sa.Column('fridge_id', sa.String(length=32), nullable=True),
    sa.Column('doses_total', sa.Integer(), nullable=False),
    sa.Column('doses_left', sa.Integer(), nullable=False),
    sa.Column('received_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('inbound_ref', sa.String(length=64), nullable=True),
    *_stamps(),
    sa.CheckConstraint('doses_left >= 0 AND doses_left <= doses_total',
                       name=op.f('ck_imm_vaccine_package_doses_in_range')),
    sa.ForeignKeyConstraint(['fridge_id'], ['imm_fridge.id'],
                            name=op.f('fk_imm_vaccine_package_fridge_id_imm_fridge')),
    sa.ForeignKeyConstraint(['lot_id'], ['imm_vaccine_lot.id'],
                            name=op.f('fk_imm_vaccine_package_lot_id_imm_vaccine_lot')),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'],
                            name=op.f('fk_imm_vaccine_package_organization_id_organization')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_imm_vaccine_package')),
    sa.UniqueConstraint('trace_code', name=op.f('uq_imm_vaccine_package_trace_code'))
    )
    with op.batch_alter_table('imm_vaccine_package', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_imm_vaccine_package_lot_id'), ['lot_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_imm_vaccine_package_organization_id'), ['organization_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_imm_vaccine_package_fridge_id'), ['fridge_id'], unique=False)

    op.create_table('imm_vaccination',
    sa.Column('person_id', sa.String(length=32), nullable=False),
    sa.Column('patient_record_id', sa.String(length=32), nullable=False),
    sa.Column('organization_id', sa.String(length=32), nullable=False),
    sa.Column('vaccine_code', sa.String(length=16), nullable=False),
    sa.Column('dose_number', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.String(length=32), nullable=False),
    sa.Column('holder', sa.String(length=128), nullable=False),
    sa.Column('package_id', sa.String(length=32), nullable=False),
    sa.Column('trace_code', sa.String(length=20), nullable=False),
    sa.Column('lot_number', sa.String(length=64), nullable=False),
    sa.Column('expiry', sa.Date(), nullable=False),
    sa.Column('occurred_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('vaccinator_id', sa.String(length=64), nullable=False),
    sa.Column('vaccinator_name', sa.String(length=128), nullable=False),
    sa.Column('site', sa.String(length=32), nullable=False),
    sa.Column('route', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('error_reason', sa.Text(), nullable=True),
    *_stamps(),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'],
                            name=op.f('fk_imm_vaccination_organization_id_organization')),
    sa.ForeignKeyConstraint(['package_id'], ['imm_vaccine_package.id'],
                            name=op.f('fk_imm_vaccination_package_id_imm_vaccine_package')),
    sa.ForeignKeyConstraint(['patient_record_id'], ['patient_record.id'],
                            name=op.f('fk_imm_vaccination_patient_record_id_patient_record')),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_imm_vaccination_person_id_person')),
    sa.ForeignKeyConstraint(['product_id'], ['imm_vaccine_product.id'],
                            name=op.f('fk_imm_vaccination_product_id_imm_vaccine_product')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_imm_vaccination'))
    )
    with op.batch_alter_table('imm_vaccination', schema=None) as batch_op:
        for col in ('person_id', 'patient_record_id', 'organization_id', 'vaccine_code', 'package_id',
                    'trace_code', 'occurred_at'):
            batch_op.create_index(batch_op.f(f'ix_imm_vaccination_{col}'), [col], unique=False)

    op.create_table('imm_temperature',
    sa.Column('fridge_id', sa.String(length=32), nullable=False),
    sa.Column('measured_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('celsius', sa.Double(), nullable=False),
    sa.Column('source', sa.String(length=8), nullable=False),
    sa.Column('recorded_by', sa.String(length=64), nullable=True),
    sa.Column('excursion', sa.Boolean(), nullable=False),
    *_stamps(),
    sa.ForeignKeyConstraint(['fridge_id'], ['imm_fridge.id'], name=op.f('fk_imm_temperature_fridge_id_imm_fridge')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_imm_temperature'))
    )
    with op.batch_alter_table('imm_temperature', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_imm_temperature_fridge_id'), ['fridge_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_imm_temperature_measured_at'), ['measured_at'], unique=False)

    op.create_table('imm_cold_chain_alarm',
    sa.Column('fridge_id', sa.String(length=32), nullable=False),
    sa.Column('organization_id', sa.String(length=32), nullable=False),
    sa.Column('reading_id', sa.String(length=32), nullable=False),
    sa.Column('celsius', sa.Double(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('lot_ids', onetrip.db.base.JSONVariant, nullable=False),
    sa.Column('released_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('released_by', sa.String(length=128), nullable=True),
    sa.Column('release_note', sa.Text(), nullable=True),
    *_stamps(),
    sa.ForeignKeyConstraint(['fridge_id'], ['imm_fridge.id'],
                            name=op.f('fk_imm_cold_chain_alarm_fridge_id_imm_fridge')),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'],
                            name=op.f('fk_imm_cold_chain_alarm_organization_id_organization')),
    sa.ForeignKeyConstraint(['reading_id'], ['imm_temperature.id'],
                            name=op.f('fk_imm_cold_chain_alarm_reading_id_imm_temperature')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_imm_cold_chain_alarm'))
    )
    with op.batch_alter_table('imm_cold_chain_alarm', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_imm_cold_chain_alarm_fridge_id'), ['fridge_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_imm_cold_chain_alarm_organization_id'), ['organization_id'],
                              unique=False)


def downgrade() -> None:
    for table in ('imm_cold_chain_alarm', 'imm_temperature', 'imm_vaccination', 'imm_vaccine_package', 'imm_vaccine_lot', 'imm_vaccine_product', 'imm_fridge'):
        op.drop_table(table)
