"""immunization

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07

Issue 20 point 1: the childhood immunisation schedule as a versioned rule table (RULES §6), one row per vaccine
dose and edition; seeded (2021 and 2025 editions) by ``onetrip db upgrade`` from
db/seeds/immunization_schedule.json. Batch mode for SQLite.
"""
import sqlalchemy as sa
from alembic import op

import onetrip.db.base

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('imm_schedule_dose',
    sa.Column('edition', sa.String(length=16), nullable=False),
    sa.Column('effective_from', sa.Date(), nullable=False),
    sa.Column('series', sa.String(length=16), nullable=False),
    sa.Column('dose_number', sa.Integer(), nullable=False),
    sa.Column('vaccine_code', sa.String(length=16), nullable=False),
    sa.Column('min_age', sa.String(length=8), nullable=False),
    sa.Column('complete_before', sa.String(length=8), nullable=True),
    sa.Column('intervals', onetrip.db.base.JSONVariant, nullable=False),
    sa.Column('live_injectable', sa.Boolean(), nullable=False),
    sa.Column('sex', sa.String(length=8), nullable=True),
    sa.Column('alt_group', sa.String(length=16), nullable=True),
    sa.Column('alt_rank', sa.Integer(), nullable=False),
    sa.Column('citation', sa.String(length=255), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('updated_by', sa.String(length=64), nullable=False),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('created_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_imm_schedule_dose')),
    sa.UniqueConstraint('edition', 'series', 'dose_number',
                        name=op.f('uq_imm_schedule_dose_edition_series_dose_number'))
    )


def downgrade() -> None:
    op.drop_table('imm_schedule_dose')
