"""One AuditEvent per patient read and per patient in a search page; append-only rows; the hash chain
finds an edit made behind the triggers' back (`onetrip audit verify`)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DatabaseError

from onetrip.audit import service as audit
from onetrip.audit.chain import GENESIS, row_hash, verify_rows
from onetrip.audit.models import AuditEvent
from onetrip.kit.principal import cli_principal
from tests.factories import auth, register_patient, run_concurrently, token


def _count(db, **where) -> int:
    with db.session() as s:
        stmt = select(func.count()).select_from(AuditEvent)
        for k, v in where.items():
            stmt = stmt.where(getattr(AuditEvent, k) == v)
        return s.scalar(stmt)


def test_one_event_per_read_and_per_patient_in_a_search_page(client, world, db):
    ids = [register_patient(db, world.org_a, name=n) for n in ("郑一", "郑二", "郑三")]
    doc = auth(token(client, world.users["doc_a"]))
    before = _count(db, subtype="read")
    client.get(f"/fhir/R4/Patient/{ids[0]}", headers=doc)
    assert _count(db, subtype="read") == before + 1
    before = _count(db, subtype="search-type")
    b = client.get("/fhir/R4/Patient?name=郑&_count=2", headers=doc).json()
    assert len(b["entry"]) == 2
    assert _count(db, subtype="search-type") == before + 2  # one per patient on the page
    with db.session() as s:
        last = s.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(2)).all()
        assert {e.entity_what for e in last} == {f"Patient/{e['resource']['id']}" for e in b["entry"]}
        assert all("name=" in (e.query or "") for e in last)


def test_audit_rows_cannot_be_updated_or_deleted(db):
    with db.session() as s:
        audit.record(s, cli_principal(), "read", what=["Patient/x"])
        s.commit()
    with db.session() as s, pytest.raises(DatabaseError, match="append-only"):
        s.execute(text("UPDATE audit_event SET outcome = '0' WHERE seq = (SELECT max(seq) FROM audit_event)"))
    with db.session() as s, pytest.raises(DatabaseError, match="append-only"):
        s.execute(text("DELETE FROM audit_event"))


def test_chain_check_detects_removed_rows():
    rows, prev = [], GENESIS
    for seq in range(1, 5):
        row = {"seq": seq, "recorded_at": None, "type_code": "rest", "subtype": "read", "action": "R",
               "outcome": "0", "source": "api"}
        row["prev_hash"], row["row_hash"] = prev, row_hash(prev, row)
        prev = row["row_hash"]
        rows.append(row)
    assert verify_rows(rows, 4, prev)[1] == []
    problems = verify_rows(rows[:2] + rows[3:], 4, prev)[1]
    assert any("missing" in p.problem for p in problems)
    problems = verify_rows(rows[:3], 4, prev)[1]  # the newest row removed
    assert any("removed" in p.problem for p in problems)


def test_concurrent_writers_keep_one_linear_chain(db):
    def writer(n: int) -> None:
        for i in range(10):
            with db.session() as s:
                audit.record(s, cli_principal(), "read", what=[f"Patient/c{n}-{i}"])
                s.commit()

    errors = run_concurrently(writer, [(n,) for n in range(4)])
    assert not errors
    with db.session() as s:
        checked, problems = audit.verify(s)
    assert problems == [] and checked >= 40
