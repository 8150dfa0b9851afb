"""referral

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23

Issue 6: two-way referral (lifecycle, package, reserved slots, webhooks / subscriptions).
Batch mode for SQLite. (Placeholder until its issue adds tables: an empty revision keeps the chain linear.)
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

import onetrip.db.base  # noqa: F401

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
