"""recognition (互认)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23

Issue 4 §3 and §5: the item catalogue, reason codes (RULES R1.3), institution quality-control standing
(R1.4) and the recognition decision log. Batch mode for SQLite.
"""
import sqlalchemy as sa
from alembic import op

import onetrip.db.base

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def _stamps() -> list[sa.Column]:
    return [sa.Column('id', sa.String(length=32), nullable=False),
            sa.Column('created_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False),
            sa.Column('updated_at', onetrip.db.base.UTCDateTime(timezone=True), nullable=False)]


def upgrade() -> None:
    op.create_table('recognition_item',
    sa.Column('local_code', sa.String(length=64), nullable=False),
    sa.Column('standard_code', sa.String(length=64), nullable=True),
    sa.Column('code_system', sa.String(length=100), nullable=True),
    sa.Column('name_zh', sa.String(length=200), nullable=False),
    sa.Column('name_en', sa.String(length=200), nullable=False),
    sa.Column('category', sa.String(length=16), nullable=False),
    sa.Column('price', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('window_days', sa.Integer(), nullable=True),
    sa.Column('scope', sa.String(length=16), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    *_stamps(),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recognition_item')),
    sa.UniqueConstraint('local_code', name=op.f('uq_recognition_item_local_code'))
    )
    with op.batch_alter_table('recognition_item', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recognition_item_standard_code'), ['standard_code'], unique=False)
    op.create_table('recognition_reason',
    sa.Column('code', sa.String(length=4), nullable=False),
    sa.Column('name_zh', sa.String(length=200), nullable=False),
    sa.Column('name_en', sa.String(length=200), nullable=False),
    sa.Column('counts_as_non_recognition', sa.Boolean(), nullable=False),
    sa.Column('needs_disease', sa.Boolean(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    *_stamps(),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recognition_reason')),
    sa.UniqueConstraint('code', name=op.f('uq_recognition_reason_code'))
    )
    op.create_table('recognition_institution',
    sa.Column('organization_id', sa.String(length=32), nullable=False),
    sa.Column('qc_passed', sa.Boolean(), nullable=False),
    sa.Column('note', sa.String(length=200), nullable=True),
    *_stamps(),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'],
                            name=op.f('fk_recognition_institution_organization_id_organization')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recognition_institution')),
    sa.UniqueConstraint('organization_id', name=op.f('uq_recognition_institution_organization_id'))
    )
    op.create_table('recognition_decision',
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('person_id', sa.String(length=32), nullable=False),
    sa.Column('check_id', sa.String(length=32), nullable=True),
    sa.Column('ordering_org_id', sa.String(length=32), nullable=False),
    sa.Column('item_code', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=True),
    sa.Column('prior_ids', onetrip.db.base.JSONVariant, nullable=False),
    sa.Column('decision', sa.String(length=12), nullable=True),
    sa.Column('reason_code', sa.String(length=4), nullable=True),
    sa.Column('disease', sa.String(length=200), nullable=True),
    sa.Column('remark', sa.Text(), nullable=True),
    sa.Column('channel', sa.String(length=12), nullable=False),
    sa.Column('hook_instance', sa.String(length=100), nullable=True),
    *_stamps(),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_recognition_decision_person_id_person')),
    sa.ForeignKeyConstraint(['check_id'], ['recognition_decision.id'],
                            name=op.f('fk_recognition_decision_check_id_recognition_decision')),
    sa.ForeignKeyConstraint(['ordering_org_id'], ['organization.id'],
                            name=op.f('fk_recognition_decision_ordering_org_id_organization')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recognition_decision'))
    )
    with op.batch_alter_table('recognition_decision', schema=None) as batch_op:
        batch_op.create_index('ix_recognition_decision_person', ['person_id', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_recognition_decision_check_id'), ['check_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('recognition_decision', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recognition_decision_check_id'))
        batch_op.drop_index('ix_recognition_decision_person')
    op.drop_table('recognition_decision')
    op.drop_table('recognition_institution')
    op.drop_table('recognition_reason')
    with op.batch_alter_table('recognition_item', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recognition_item_standard_code'))
    op.drop_table('recognition_item')
