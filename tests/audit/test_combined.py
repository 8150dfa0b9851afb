"""audit.events: several events for a domain's ``db.changes.Changes``, written with its rows in one statement
on PostgreSQL (one INSERT per table on SQLite), in order on the transaction's chain, and the chain verifies."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from onetrip.audit import service as audit
from onetrip.audit.models import AuditEvent
from onetrip.db.changes import Changes, Row, Update, apply
from onetrip.kit.principal import cli_principal


def test_two_events_in_one_write_verify(db):
    op = cli_principal("combined")
    with db.session() as s:
        parts = audit.events(s, op, [("read", {"what": ["Patient/one"]}), ("create", {"what": ["Thing/two"]})])
        assert [type(p) for p in parts] == [Row, Row, Update]
        assert apply(s, Changes(*parts))
        s.commit()
        rows = s.scalars(select(AuditEvent).where(AuditEvent.entity_what.in_(["Patient/one", "Thing/two"]))
                         .order_by(AuditEvent.chain_seq)).all()
        assert [(r.subtype, r.entity_what) for r in rows] == [("read", "Patient/one"), ("create", "Thing/two")]
        assert rows[0].chain == rows[1].chain and rows[1].chain_seq == rows[0].chain_seq + 1
        assert rows[1].prev_hash == rows[0].row_hash
        assert audit.verify(s)[1] == []


def test_events_continue_the_chain_the_transaction_holds(db):
    """``record`` and ``events`` in one transaction append to one chain, in order."""
    op = cli_principal("combined")
    with db.session() as s:
        first = audit.record(s, op, "read", what=["Patient/first"])[0]
        parts = audit.events(s, op, [("create", {"what": ["Thing/after"]})])
        assert parts[0]["chain"] == first["chain"] and parts[0]["chain_seq"] == first["chain_seq"] + 1
        assert parts[0]["prev_hash"] == first["row_hash"]
        apply(s, Changes(*parts))
        s.commit()
        assert audit.verify(s)[1] == []


def test_no_events_is_refused(db):
    with db.session() as s, pytest.raises(ValueError):
        audit.events(s, cli_principal("combined"), [])
