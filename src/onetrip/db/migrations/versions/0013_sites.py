"""sites

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07

Issue 17 ("one trip must mean one place"): a Site (an organization or one campus of it, with address and
coordinates where known) and the campus of each scheduling resource. Itinerary trips are counted per
(day, site) (docs/scheduling.md). Batch mode for SQLite.
"""
import sqlalchemy as sa
from alembic import op

import onetrip.db.base

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sched_site',
    sa.Column('organization_id', sa.String(length=32), nullable=False),
    sa.Column('campus', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('address', sa.String(length=255), nullable=True),
    sa.Column('latitude', sa.Float(), nullable=True),
    sa.Column('longitude', sa.Float(), nullable=True),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('created_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'],
                            name=op.f('fk_sched_site_organization_id_organization')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sched_site')),
    sa.UniqueConstraint('organization_id', 'campus', name=op.f('uq_sched_site_organization_id_campus'))
    )
    with op.batch_alter_table('sched_site', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sched_site_organization_id'), ['organization_id'], unique=False)
    with op.batch_alter_table('sched_resource', schema=None) as batch_op:
        batch_op.add_column(sa.Column('campus', sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('sched_resource', schema=None) as batch_op:
        batch_op.drop_column('campus')
    with op.batch_alter_table('sched_site', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sched_site_organization_id'))
    op.drop_table('sched_site')
