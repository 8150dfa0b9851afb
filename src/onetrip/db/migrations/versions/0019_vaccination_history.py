"""vaccination history

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07

Issue 20 point 7: vaccinations recorded elsewhere (FHIR Immunization create, HL7 v2 VXU^V04) — no package or trace code of ours. Batch mode for SQLite.
imm_vaccination gets source (desk | fhir | hl7v2; existing rows: desk), external_id (unique with source),
recorded_at_name and primary_source; the columns only our desk fills become nullable.
"""
import sqlalchemy as sa
from alembic import op

import onetrip.db.base  # noqa: F401

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

# The columns only the desk fills (a package of ours, its product, the vaccinator's account ...).
DESK_ONLY = (
    ('product_id', sa.String(length=32)),
    ('holder', sa.String(length=128)),
    ('package_id', sa.String(length=32)),
    ('trace_code', sa.String(length=20)),
    ('lot_number', sa.String(length=64)),
    ('expiry', sa.Date()),
    ('vaccinator_id', sa.String(length=64)),
    ('vaccinator_name', sa.String(length=128)),
    ('site', sa.String(length=32)),
    ('route', sa.String(length=16)),
)


def upgrade() -> None:
    with op.batch_alter_table('imm_vaccination', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source', sa.String(length=8), nullable=False, server_default='desk'))
        batch_op.add_column(sa.Column('external_id', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('recorded_at_name', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('primary_source', sa.Boolean(), nullable=False, server_default=sa.true()))
        for name, type_ in DESK_ONLY:
            batch_op.alter_column(name, existing_type=type_, nullable=True)
        batch_op.create_unique_constraint(batch_op.f('uq_imm_vaccination_source_external_id'),
                                          ['source', 'external_id'])


def downgrade() -> None:
    # Doses recorded elsewhere have no package: they cannot be kept under the desk-only NOT NULL columns.
    op.execute("DELETE FROM imm_vaccination WHERE source <> 'desk'")
    with op.batch_alter_table('imm_vaccination', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_imm_vaccination_source_external_id'), type_='unique')
        for name, type_ in DESK_ONLY:
            batch_op.alter_column(name, existing_type=type_, nullable=False)
        batch_op.drop_column('primary_source')
        batch_op.drop_column('recorded_at_name')
        batch_op.drop_column('external_id')
        batch_op.drop_column('source')
