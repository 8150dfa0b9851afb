"""booking_perf

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-23

Issue 5: booking throughput (indexes / audit append changes), if any.
Batch mode for SQLite. (Placeholder until its issue adds tables: an empty revision keeps the chain linear.)
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

import onetrip.db.base  # noqa: F401

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
