"""Several audit chains (migration 0011): concurrent writers append to different chains instead of
queueing behind one head lock; each chain is linear and verifies; a transaction keeps to one chain; rows
written before there were several chains verify unchanged."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import command
from sqlalchemy import func, select, text

from onetrip.audit import service as audit
from onetrip.audit.chain import GENESIS, genesis, row_hash, verify_rows
from onetrip.audit.models import AuditChainHead, AuditEvent
from onetrip.db.base import JSONVariant, UTCDateTime
from onetrip.db.migrate import alembic_config, upgrade
from onetrip.kit.principal import cli_principal
from tests.factories import run_concurrently


def test_there_are_32_chains_each_starting_from_its_own_genesis(db):
    with db.session() as s:
        heads = s.execute(select(AuditChainHead.id, AuditChainHead.last_hash)).all()
    assert sorted(h for h, _ in heads) == list(range(1, 33))
    assert genesis(1) == GENESIS and len({genesis(k) for k in range(1, 33)}) == 32


def test_one_transaction_appends_to_one_chain_in_order(db):
    with db.session() as s:
        for i in range(3):
            audit.record(s, cli_principal(), "read", what=[f"Patient/one-txn-{i}"])
        audit.record(s, cli_principal(), "search-type", person_ids=["p1", "p2"], what=["Patient/a", "Patient/b"])
        s.commit()
        rows = s.execute(select(AuditEvent.chain, AuditEvent.chain_seq).order_by(AuditEvent.seq)
                         .where(AuditEvent.entity_what.like("Patient/%"))).all()
    assert len({c for c, _ in rows}) == 1
    positions = [p for _, p in rows]
    assert positions == list(range(positions[0], positions[0] + 5))


def test_concurrent_writers_use_several_chains_and_every_chain_verifies(db):
    def writer(n: int) -> None:
        for i in range(10):
            with db.session() as s:
                audit.record(s, cli_principal(), "read", what=[f"Patient/c{n}-{i}"])
                s.execute(text("SELECT 1"))  # hold the chain a moment, as a request does
                s.commit()

    errors = run_concurrently(writer, [(n,) for n in range(6)])
    assert not errors
    with db.session() as s:
        checked, problems = audit.verify(s)
        used = s.scalar(select(func.count(func.distinct(AuditEvent.chain))).where(
            AuditEvent.entity_what.like("Patient/c%")))
        dupes = s.execute(select(AuditEvent.chain, AuditEvent.chain_seq).group_by(
            AuditEvent.chain, AuditEvent.chain_seq).having(func.count() > 1)).all()
    assert problems == [] and checked >= 60
    assert dupes == []
    assert used > 1  # random choice on SQLite, SKIP LOCKED on PostgreSQL: not one queue


def test_verify_walks_each_chain_separately():
    def chain(k: int, n: int) -> list[dict]:
        rows, prev = [], genesis(k)
        for pos in range(1, n + 1):
            row = {"seq": 100 * k + pos, "chain": k, "chain_seq": pos, "recorded_at": None, "type_code": "rest",
                   "subtype": "read", "action": "R", "outcome": "0", "source": "api"}
            row["prev_hash"], row["row_hash"] = prev, row_hash(prev, row)
            prev = row["row_hash"]
            rows.append(row)
        return rows

    two = chain(2, 3)
    assert verify_rows(two, 3, two[-1]["row_hash"], chain=2)[1] == []
    # a chain-2 row presented as chain 3 does not link to chain 3's genesis
    assert any("broken" in p.problem for p in verify_rows(two, 3, two[-1]["row_hash"], chain=3)[1])
    # the global seq is not what orders a chain: its position is
    assert verify_rows([{**r, "seq": 999 - i} for i, r in enumerate(two)], 3, two[-1]["row_hash"], chain=2)[1] == []


def _old_style_rows(db, n: int) -> None:
    """What the code before 0011 wrote: one chain, seq = head + 1, hash over seq."""
    events = sa.table("audit_event", *[sa.column(k) for k in (
        "seq", "type_code", "subtype", "action", "outcome", "source", "entity_what", "prev_hash", "row_hash")],
        sa.column("recorded_at", UTCDateTime(timezone=True)), sa.column("detail", JSONVariant))
    with db.engine.begin() as c:
        last_seq, last_hash = c.execute(text("SELECT last_seq, last_hash FROM audit_chain_head WHERE id = 1")).one()
        for _ in range(n):
            seq = last_seq + 1
            row = {"seq": seq, "recorded_at": dt.datetime(2026, 11, 1, 8, 0, seq, 123456, tzinfo=dt.UTC),
                   "type_code": "rest", "subtype": "read", "action": "R", "outcome": "0", "source": "api",
                   "entity_what": f"Patient/old-{seq}", "detail": {"n": seq}}
            row["prev_hash"], row["row_hash"] = last_hash, row_hash(last_hash, row)
            c.execute(sa.insert(events).values(**row))
            last_seq, last_hash = seq, row["row_hash"]
        c.execute(text("UPDATE audit_chain_head SET last_seq = :s, last_hash = :h WHERE id = 1"),
                  {"s": last_seq, "h": last_hash})


def test_rows_written_before_0011_verify_unchanged_after_the_upgrade(db):
    """Last in this module: it takes the schema down to 0010 and up again."""
    db.engine.dispose()
    # only chain-1 rows may exist when going down (see the migration's docstring): start clean
    command.downgrade(alembic_config(db.url), "base")
    upgrade(db.url, "0010")
    _old_style_rows(db, 5)
    upgrade(db.url)
    db.engine.dispose()
    with db.session() as s:
        checked, problems = audit.verify(s)
        assert problems == [] and checked == 5
        assert s.execute(select(AuditEvent.chain, AuditEvent.chain_seq, AuditEvent.seq)).all() == [
            (1, i, i) for i in range(1, 6)]
        for i in range(5):  # new rows, on any chain, after the old ones
            audit.record(s, cli_principal(), "read", what=[f"Patient/new-{i}"])
            s.commit()
        checked, problems = audit.verify(s)
        assert problems == [] and checked == 10
        assert s.scalar(select(func.min(AuditEvent.seq)).where(AuditEvent.entity_what.like("Patient/new-%"))) > 5
