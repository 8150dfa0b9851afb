"""booking_perf

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-23

Issue 5: booking throughput. The audit trail gets several hash chains instead of one, so concurrent
writers stop queueing behind the single ``audit_chain_head`` row lock (each transaction appends to a chain
no other transaction holds): ``audit_event.chain`` and ``chain_seq`` (position in the chain, unique per
chain), 31 more chain heads (32 in all), and ``seq`` now comes from the table's sequence. Existing rows
become chain 1 with ``chain_seq = seq``, which is what their hashes already cover, so they verify
unchanged. Batch mode for SQLite (plain ALTER TABLE there: the append-only triggers stay).

Downgrade removes the columns and the extra heads; it is for a database whose rows are all on chain 1
(rows on other chains would no longer verify as one chain).
"""
import hashlib

import sqlalchemy as sa
from alembic import op

import onetrip.db.base  # noqa: F401

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

CHAINS = 32


def _genesis(chain: int) -> str:
    # = onetrip.audit.chain.genesis (copied: a migration does not change when the code does)
    return "0" * 64 if chain == 1 else hashlib.sha256(f"onetrip audit chain {chain}".encode()).hexdigest()


def _sqlite_triggers() -> None:
    op.execute("DROP TRIGGER IF EXISTS audit_event_no_update")
    op.execute("DROP TRIGGER IF EXISTS audit_event_no_delete")
    op.execute("CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event "
               "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END")
    op.execute("CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event "
               "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END")


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('chain', sa.SmallInteger(), server_default='1', nullable=False))
        batch_op.add_column(sa.Column('chain_seq', sa.BigInteger(), server_default='0', nullable=False))
    # Existing rows: chain 1, position = seq. The append-only guard is lifted for this one statement.
    if sqlite:
        op.execute("DROP TRIGGER audit_event_no_update")
        op.execute("UPDATE audit_event SET chain_seq = seq")
        _sqlite_triggers()
    else:
        op.execute("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only")
        op.execute("UPDATE audit_event SET chain_seq = seq")
        op.execute("ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only")
        # seq is now assigned by the column's sequence (it used to be set by the code)
        op.execute("SELECT setval(pg_get_serial_sequence('audit_event', 'seq'), "
                   "COALESCE((SELECT max(seq) FROM audit_event), 0) + 1, false)")
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.create_index('uq_audit_event_chain_position', ['chain', 'chain_seq'], unique=True)
    heads = sa.table('audit_chain_head', sa.column('id', sa.Integer), sa.column('last_seq', sa.BigInteger),
                     sa.column('last_hash', sa.String))
    op.bulk_insert(heads, [{"id": k, "last_seq": 0, "last_hash": _genesis(k)} for k in range(2, CHAINS + 1)])


def downgrade() -> None:
    op.execute("DELETE FROM audit_chain_head WHERE id > 1")
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index('uq_audit_event_chain_position')
        batch_op.drop_column('chain_seq')
        batch_op.drop_column('chain')
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_triggers()  # in case batch mode copied the table (a copy has no triggers)
