"""records_figures

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23

Issue 4 (rest): the ordering department on recognition decisions (figures per department) and the history
of corrected / amended reports (rec_report_version). Batch mode for SQLite.
"""
import sqlalchemy as sa
from alembic import op

import onetrip.db.base

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('recognition_decision', schema=None) as batch_op:
        batch_op.add_column(sa.Column('department_id', sa.String(length=32), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_recognition_decision_department_id_department'),
                                    'department', ['department_id'], ['id'])
    op.create_table('rec_report_version',
    sa.Column('report_id', sa.String(length=32), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('replaced_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('replaced_by', sa.String(length=64), nullable=True),
    sa.Column('snapshot', onetrip.db.base.JSONVariant, nullable=False),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('created_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['report_id'], ['rec_diagnostic_report.id'],
                            name=op.f('fk_rec_report_version_report_id_rec_diagnostic_report')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rec_report_version')),
    sa.UniqueConstraint('report_id', 'version', name=op.f('uq_rec_report_version_report_id_version'))
    )
    with op.batch_alter_table('rec_report_version', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rec_report_version_report_id'), ['report_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('rec_report_version', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rec_report_version_report_id'))
    op.drop_table('rec_report_version')
    with op.batch_alter_table('recognition_decision', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_recognition_decision_department_id_department'), type_='foreignkey')
        batch_op.drop_column('department_id')
