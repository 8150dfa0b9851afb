"""db.changes: a domain's rows and the rows of other owners' builders (audit events, outbox event, care
relationship) written by one executor — one statement on PostgreSQL, a savepoint of plain INSERTs on SQLite —
all or nothing: a gate that takes nothing or a failure half-way leaves no row behind, and the audit chain
still verifies."""

from __future__ import annotations

import pytest
from sqlalchemy import (
    CheckConstraint,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    event,
    func,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from onetrip.access import service as access
from onetrip.access.models import CareRelationship
from onetrip.audit import service as audit
from onetrip.audit.models import AuditChainHead, AuditEvent
from onetrip.db import changes as changes_module
from onetrip.db import fastpath
from onetrip.db.base import JSONVariant, UTCDateTime, new_id
from onetrip.db.changes import Changes, Gate, Row, apply
from onetrip.kit.clock import utcnow
from onetrip.kit.principal import cli_principal
from onetrip.outbox import service as outbox
from onetrip.outbox.models import OutboxEvent
from onetrip.persons.models import PatientRecord
from tests.factories import register_patient

# A domain's own tables, for this test only: a thing, and a stock of places its gate takes from.
_META = MetaData()
THING = Table("test_changes_thing", _META, Column("id", String(32), primary_key=True),
              Column("n", Integer, CheckConstraint("n >= 0", name="n_not_negative"), nullable=False),
              Column("at", UTCDateTime), Column("note", String(40)), Column("data", JSONVariant))
STOCK = Table("test_changes_stock", _META, Column("id", String(32), primary_key=True),
              Column("left", Integer, nullable=False))
TAKE = update(STOCK).where(STOCK.c.id == bindparam("stock_id"), STOCK.c.left > 0).values(left=STOCK.c.left - 1)


@pytest.fixture(scope="module")
def tables(db):
    _META.create_all(db.engine)
    yield
    _META.drop_all(db.engine)


@pytest.fixture(scope="module")
def person(db, world):
    with db.session() as s:
        rec = s.get(PatientRecord, register_patient(db, world.org_a))
        return rec.person_id, world.org_a


def _stock(db, left: int) -> str:
    with db.session() as s:
        sid = new_id()
        s.execute(STOCK.insert().values(id=sid, left=left))
        s.commit()
        return sid


def _counts(s) -> tuple:
    return (s.scalar(select(func.count()).select_from(THING)),
            s.scalar(select(func.count()).select_from(CareRelationship)),
            s.scalar(select(func.count()).select_from(OutboxEvent)),
            s.scalar(select(func.count()).select_from(AuditEvent)),
            tuple(s.execute(select(AuditChainHead.id, AuditChainHead.last_seq).order_by(AuditChainHead.id))))


def _changes(s, person, *, n: int = 1, gate: Gate | None = None, extra: tuple = ()) -> tuple[Changes, str]:
    """A thing (the domain's row), its care relationship, outbox event and two audit events."""
    person_id, org = person
    now, thing = utcnow(), new_id()
    changes = Changes(
        Row(THING, id=thing, n=n, at=now, note=None, data={"k": [1, 2]}),
        access.care_relationship_row(person_id, org, "encounter", f"Thing/{thing}", days=30, now=now),
        outbox.event_row("thing.made", "Thing", thing, {"n": n}, person_id=person_id, occurred_at=now),
        *audit.events(s, cli_principal("changes"), [("read", {"person_ids": [person_id], "what": ["Patient/x"]}),
                                                    ("create", {"person_ids": [person_id], "what": [f"Thing/{thing}"]})]),
        *extra, gate=gate)
    return changes, thing


def test_rows_of_several_owners_are_written_together(db, tables, person):
    seen: list[str] = []

    def count(conn, cursor, statement, *args):
        seen.append(statement.split()[0])

    with db.session() as s:
        before = _counts(s)
        s.connection()  # BEGIN (and SQLite's) before counting
        event.listen(db.engine, "before_cursor_execute", count)
        fastpath.observers.append(lambda sql: seen.append(sql.split()[0]))
        try:
            changes, thing = _changes(s, person)
            seen.clear()  # the audit chain's head lock is not the write
            assert apply(s, changes) is True
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
            fastpath.observers.pop()
        s.commit()
        after = _counts(s)
        assert after[:4] == (before[0] + 1, before[1] + 1, before[2] + 1, before[3] + 2)
        assert s.execute(select(THING.c.n, THING.c.data, THING.c.note).where(THING.c.id == thing)).one() == (
            1, {"k": [1, 2]}, None)
        care = s.scalars(select(CareRelationship).where(CareRelationship.source_ref == f"Thing/{thing}")).one()
        assert care.person_id == person[0] and care.ends_at > care.starts_at
        assert s.scalar(select(OutboxEvent.payload).where(OutboxEvent.aggregate_id == thing)) == {"n": 1}
        created = s.scalars(select(AuditEvent).where(AuditEvent.entity_what == f"Thing/{thing}")).one()
        head = s.get(AuditChainHead, created.chain)
        assert (head.last_seq, head.last_hash) == (created.chain_seq, created.row_hash)  # the head moved
        assert audit.verify(s)[1] == []
    if db.kind == "postgresql":
        assert seen == ["WITH"]  # one statement
    else:
        assert seen.count("INSERT") == 4 and seen.count("UPDATE") == 1 and "SAVEPOINT" in " ".join(seen)


def test_a_gate_that_takes_nothing_writes_nothing(db, tables, person):
    empty, one = _stock(db, 0), _stock(db, 1)
    with db.session() as s:
        before = _counts(s)
        changes, thing = _changes(s, person, gate=Gate(TAKE, {"stock_id": empty}))
        assert apply(s, changes) is False
        s.commit()  # even a caller that keeps the transaction keeps nothing of it
        assert _counts(s) == before and s.scalar(select(STOCK.c.left).where(STOCK.c.id == empty)) == 0
        assert audit.verify(s)[1] == []
    with db.session() as s:  # the same changes behind a gate that takes: written, and the place taken
        changes, thing = _changes(s, person, gate=Gate(TAKE, {"stock_id": one}))
        assert apply(s, changes) is True
        s.commit()
        assert s.scalar(select(STOCK.c.left).where(STOCK.c.id == one)) == 0
        assert s.scalar(select(func.count()).select_from(THING).where(THING.c.id == thing)) == 1
        assert audit.verify(s)[1] == []


@pytest.mark.parametrize("where", ["last", "first"])
def test_a_failure_half_way_leaves_no_partial_write(db, tables, person, where):
    """The last (or first) row breaks a constraint after the gate took its place: nothing of the changes
    is left — not the place, not a row of any table, not the audit chain head's move."""
    stock = _stock(db, 1)
    bad = Row(THING, id=new_id(), n=-1, at=utcnow(), note="breaks the CHECK", data=None)
    with db.session() as s:
        before = _counts(s)
        changes, thing = _changes(s, person, gate=Gate(TAKE, {"stock_id": stock}))
        if where == "last":
            changes.add(bad)
        else:
            changes.writes.insert(0, bad)
        with pytest.raises(IntegrityError):
            apply(s, changes)
        if db.kind == "postgresql":
            s.rollback()  # a failed statement ends a PostgreSQL transaction
        else:
            s.commit()  # SQLite: the savepoint is gone, the caller may carry on
        assert _counts(s) == before
        assert s.scalar(select(STOCK.c.left).where(STOCK.c.id == stock)) == 1
        assert audit.verify(s)[1] == []
    with db.session() as s:  # and the chain carries on from where it was
        changes, _ = _changes(s, person, gate=Gate(TAKE, {"stock_id": stock}))
        assert apply(s, changes)
        s.commit()
        assert audit.verify(s)[1] == []


def test_a_duplicate_row_half_way_on_the_same_chain_leaves_the_chain_whole(db, tables, person):
    """A caller that catches the failure and keeps its transaction (SQLite's savepoint) appends its next
    audit events after the chain's real last row, not after the events that were never written."""
    if db.kind == "postgresql":
        pytest.skip("a failed statement ends a PostgreSQL transaction: the caller must roll back")
    with db.session() as s:
        changes, thing = _changes(s, person)
        apply(s, changes)
        again, _ = _changes(s, person, extra=(Row(THING, id=thing, n=2, at=utcnow(), note=None, data=None),))
        with pytest.raises(IntegrityError):
            apply(s, again)
        audit.record(s, cli_principal("changes"), "read", what=["Patient/after"])
        s.commit()
        assert audit.verify(s)[1] == []


def test_a_value_in_several_columns_is_one_parameter():
    """The booking's ``now`` and the person's id go in many columns: each is sent once (per type class)."""
    now, person = utcnow(), "p" * 32
    c = Changes(Row(THING, id="t", n=1, at=now, note=person, data=None),
                Row(CareRelationship.__table__, id="c", person_id=person, organization_id="o", kind="encounter",
                    source_ref=None, starts_at=now, ends_at=now, created_at=now))
    shape, values, _ = changes_module._plan(c)  # noqa: SLF001
    assert values == ["t", 1, now, person, "c", "o", "encounter"]
    assert shape[1][3] == (0, 1, 2, 3, -1)  # data is None: NULL in the SQL, no parameter


def test_a_row_without_a_python_side_default_column_is_refused(db):
    """Columns with a Python-side default must be given: the executor applies none."""
    with db.session() as s, pytest.raises(ValueError, match="give id"):
        apply(s, Changes(Row(CareRelationship.__table__, person_id="p", organization_id="o", kind="encounter",
                             source_ref=None, starts_at=utcnow(), ends_at=utcnow(), created_at=utcnow())))
