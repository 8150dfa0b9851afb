"""audit_keys

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07

Issue 26: a tamper-evident audit trail that survives a database administrator. ``audit_event.key_id``: the
id of the key (held outside the database) under which the row's hash is an HMAC-SHA256; existing rows keep
NULL and their plain SHA-256 hash (legacy, still verified). ``audit_chain_head.archived_seq / archived_hash /
archived_seal``: the sealed marker of rows archived away (``onetrip audit archive``). The append-only guard
now lets a DELETE through for rows at or below their chain's archive marker, and nothing else; UPDATE stays
refused. Batch mode for SQLite (plain ALTER TABLE ADD COLUMN there: the table is not copied).
"""
import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

_REFUSE = "SELECT RAISE(ABORT, 'audit_event is append-only'); END"


def _sqlite_triggers(archive_aware: bool) -> None:
    op.execute("DROP TRIGGER IF EXISTS audit_event_no_update")
    op.execute("DROP TRIGGER IF EXISTS audit_event_no_delete")
    op.execute(f"CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event BEGIN {_REFUSE}")
    when = ("WHEN OLD.chain_seq > COALESCE((SELECT archived_seq FROM audit_chain_head WHERE id = OLD.chain), 0) "
            if archive_aware else "")
    op.execute(f"CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event {when}BEGIN {_REFUSE}")


def upgrade() -> None:
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('key_id', sa.String(length=16), nullable=True))
    with op.batch_alter_table('audit_chain_head', schema=None) as batch_op:
        batch_op.add_column(sa.Column('archived_seq', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('archived_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('archived_seal', sa.String(length=100), nullable=True))
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_triggers(archive_aware=True)
    else:
        op.execute("CREATE OR REPLACE FUNCTION onetrip_audit_append_only() RETURNS trigger AS $$ BEGIN "
                   "IF TG_OP = 'DELETE' AND OLD.chain_seq <= COALESCE((SELECT archived_seq FROM audit_chain_head "
                   "WHERE id = OLD.chain), 0) THEN RETURN OLD; END IF; "
                   "RAISE EXCEPTION 'audit_event is append-only'; END $$ LANGUAGE plpgsql")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_triggers(archive_aware=False)
    else:
        op.execute("CREATE OR REPLACE FUNCTION onetrip_audit_append_only() RETURNS trigger AS $$ "
                   "BEGIN RAISE EXCEPTION 'audit_event is append-only'; END $$ LANGUAGE plpgsql")
    with op.batch_alter_table('audit_chain_head', schema=None) as batch_op:
        batch_op.drop_column('archived_seal')
        batch_op.drop_column('archived_hash')
        batch_op.drop_column('archived_seq')
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_column('key_id')
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_triggers(archive_aware=False)  # in case batch mode copied the table (a copy has no triggers)
