"""records_figures

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23

Issue 4 (rest): shared-results additions (figures, corrections, inbox re-run).
Batch mode for SQLite. (Placeholder until its issue adds tables: an empty revision keeps the chain linear.)
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

import onetrip.db.base  # noqa: F401

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
