"""notify

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-23

Issue 6 §6: outgoing notifications — webhook / FHIR Subscription (rest-hook) endpoints, delivery log.
Batch mode for SQLite. (Placeholder until its issue adds tables: an empty revision keeps the chain linear.)
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

import onetrip.db.base  # noqa: F401

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
