"""family

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23

Issue 7: family-doctor teams, contracts, chronic-disease registries, follow-ups, long prescriptions.
Batch mode for SQLite. (Placeholder until its issue adds tables: an empty revision keeps the chain linear.)
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

import onetrip.db.base  # noqa: F401

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
