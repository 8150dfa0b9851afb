"""audit.prepare_many + combined_write(events=n, shared=...): several events and the caller's rows in one
PostgreSQL statement, in order on the transaction's chain, and the chain verifies."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from onetrip.audit import service as audit
from onetrip.audit.models import AuditEvent
from onetrip.kit.principal import cli_principal

SHARED = ("chain", "type_code", "agent_user_id", "agent_client_id", "agent_name", "agent_org_id", "source",
          "network_address", "entity_person_id")
_TWO = audit.combined_write(events=2, shared=SHARED)


def test_two_events_in_one_statement_verify(db):
    if db.kind != "postgresql":
        pytest.skip("combined_write is PostgreSQL's (data-modifying CTEs)")
    op = cli_principal("combined")
    with db.session() as s:
        appended = audit.prepare_many(s, op, [("read", {"what": ["Patient/one"]}),
                                              ("create", {"what": ["Thing/two"]})])
        s.connection().execute(_TWO, audit.combined_params(appended, shared=SHARED))
        s.commit()
        rows = s.scalars(select(AuditEvent).where(AuditEvent.entity_what.in_(["Patient/one", "Thing/two"]))
                         .order_by(AuditEvent.chain_seq)).all()
        assert [(r.subtype, r.entity_what) for r in rows] == [("read", "Patient/one"), ("create", "Thing/two")]
        assert rows[0].chain == rows[1].chain and rows[1].chain_seq == rows[0].chain_seq + 1
        assert rows[1].prev_hash == rows[0].row_hash
        assert audit.verify(s)[1] == []


def test_a_shared_column_that_differs_is_refused(db):
    op = cli_principal("combined")
    with db.session() as s:
        appended = audit.prepare_many(s, op, [("read", {"person_ids": [None]}), ("create", {})])
        appended.rows[0]["agent_name"] = "someone else"
        with pytest.raises(ValueError, match="agent_name"):
            audit.combined_params(appended, shared=SHARED)
        assert set(audit.combined_params(appended, shared=())) >= {"audit1_agent_name", "audit_agent_name"}
        s.rollback()
    with pytest.raises(ValueError):
        audit.prepare_many(db.session(), op, [])
