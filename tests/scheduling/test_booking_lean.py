"""The lean booking path (issue 5 benchmark) keeps every guarantee: a 409 leaves nothing behind, each
booking writes exactly one appointment, care relationship, outbox event and audit event (whose chain
verifies), rule values are read fresh, and on PostgreSQL the whole booking is two statements."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import event, func, select

from onetrip.access.models import CareRelationship
from onetrip.audit import service as audit
from onetrip.audit.models import AuditEvent
from onetrip.db import fastpath
from onetrip.kit.clock import utcnow
from onetrip.kit.errors import Conflict
from onetrip.kit.principal import cli_principal
from onetrip.outbox.models import OutboxEvent
from onetrip.persons.models import PatientRecord
from onetrip.rules.service import set_rule
from onetrip.scheduling import repository as repo
from onetrip.scheduling import service
from onetrip.scheduling.models import Appointment, Slot
from tests.scheduling.conftest import build_sched, patient


@pytest.fixture(scope="module")
def sched(db, world):
    return build_sched(db, world.org_a)


def _free_slot(db, resource_id: str) -> str:
    with db.session() as s:
        return repo.slots(s, resource_ids=[resource_id], start=utcnow(), only_free=True)[0].id


def _counts(s) -> tuple[int, ...]:
    return tuple(s.scalar(select(func.count()).select_from(t)) for t in (Appointment, CareRelationship,
                                                                         OutboxEvent, AuditEvent))


def test_each_booking_writes_one_row_of_each_and_a_409_leaves_nothing(db, world, sched):
    slot_id, op = _free_slot(db, sched.ct), cli_principal()
    pid, other = patient(db, world.org_a), patient(db, world.org_a)
    with db.session() as s:
        before = _counts(s)
        a = service.book(s, op, slot_id=slot_id, patient_record_id=pid, exam_code="CT_HEAD", channel="kiosk")
        s.commit()
        assert _counts(s) == tuple(n + 1 for n in before)
        # the returned object is the stored row
        s.expire_all()
        stored = s.get(Appointment, a.id)
        assert (stored.status, stored.channel, stored.slot_id, stored.version_id) == ("booked", "kiosk", slot_id, 1)
        ev = s.scalars(select(AuditEvent).where(AuditEvent.entity_what == f"Appointment/{a.id}")).one()
        assert ev.entity_person_id == a.person_id and ev.detail["status"] == "booked"
        assert audit.verify(s)[1] == []
        full = _counts(s)
    with db.session() as s:
        with pytest.raises(Conflict):
            service.book(s, op, slot_id=slot_id, patient_record_id=other, exam_code="CT_HEAD", channel="web")
        s.rollback()
    with db.session() as s:
        assert _counts(s) == full and s.get(Slot, slot_id).booked == 1


def test_a_conflict_caught_inside_a_savepoint_leaves_nothing(db, world, sched):
    """A caller that carries on after a 409 (the demo loader) does so inside a savepoint."""
    slot_id, op = _free_slot(db, sched.ct), cli_principal()
    first, second = patient(db, world.org_a), patient(db, world.org_a)
    with db.session() as s:
        service.book(s, op, slot_id=slot_id, patient_record_id=first, exam_code="CT_HEAD", channel="app")
        s.commit()
        before = _counts(s)
        with pytest.raises(Conflict), s.begin_nested():
            service.book(s, op, slot_id=slot_id, patient_record_id=second, exam_code="CT_HEAD", channel="app")
        s.commit()
        assert _counts(s) == before


def test_a_rule_change_applies_to_the_next_booking(db, world, sched):
    op = cli_principal()
    with db.session() as s:
        set_rule(s, "scheduling", "hold_minutes", 40, by="test")
        set_rule(s, "access", "care_relationship_days", 30, by="test")
        s.commit()
    try:
        with db.session() as s:
            a = service.book(s, op, slot_id=_free_slot(db, sched.us), patient_record_id=patient(db, world.org_a),
                             exam_code="US_ABD", channel="phone", hold=True)
            s.commit()
            assert a.hold_expires_at - a.booked_at == dt.timedelta(minutes=40)
            care = s.scalars(select(CareRelationship).where(CareRelationship.source_ref == f"Appointment/{a.id}")).one()
            assert care.ends_at - care.starts_at == dt.timedelta(days=30)
    finally:
        with db.session() as s:
            set_rule(s, "scheduling", "hold_minutes", 15, by="test")
            set_rule(s, "access", "care_relationship_days", 365, by="test")
            s.commit()


def test_on_postgresql_a_booking_is_two_statements(db, world, sched):
    """Read the facts and lock a free audit chain (one statement); take the place and write the four rows
    (one statement)."""
    if db.kind != "postgresql":
        pytest.skip("the one-statement write is PostgreSQL's (SQLite: one INSERT per table)")
    pid, slot_id = patient(db, world.org_a), _free_slot(db, sched.ct)
    seen: list[str] = []

    def count(conn, cursor, statement, *args):
        seen.append(statement.split()[0])

    def driver(statement):  # hot-path statements run on the driver (db.fastpath)
        seen.append(statement.split()[0])

    event.listen(db.engine, "before_cursor_execute", count)
    fastpath.observers.append(driver)
    try:
        with db.session() as s:
            service.book(s, cli_principal(), slot_id=slot_id, patient_record_id=pid, exam_code="CT_HEAD",
                         channel="app")
            s.commit()
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
        fastpath.observers.remove(driver)
    assert seen == ["SELECT", "WITH"]


def test_the_slot_is_locked_only_by_the_last_statement(db, world, sched):
    """The first statement reads without locking the slot (a concurrent booking of the same slot is not
    held up by it), and locks exactly one audit chain head, which the booking's event then continues."""
    if db.kind != "postgresql":
        pytest.skip("row locks are PostgreSQL's (SQLite: one writer at a time)")
    from sqlalchemy import text

    pid, slot_id = patient(db, world.org_a), _free_slot(db, sched.ct)
    with db.session() as s:
        f = repo.booking_facts(s, slot_id, pid, "CT_HEAD", utcnow().date(), {"audit_head_start": 1})
        assert f.audit_head_id is not None and f.slot_id == slot_id
        with db.engine.connect() as other:  # the slot is free to lock; the head is not
            other.execute(text("set local lock_timeout = '200ms'"))
            assert other.execute(text("select id from sched_slot where id = :s for update nowait"),
                                 {"s": slot_id}).scalar_one() == slot_id
            assert other.execute(text("select id from audit_chain_head where id = :h for update skip locked"),
                                 {"h": f.audit_head_id}).first() is None
            other.rollback()
        s.rollback()
    with db.session() as s:
        a = service.book(s, cli_principal(), slot_id=slot_id, patient_record_id=pid, exam_code="CT_HEAD",
                         channel="app")
        s.commit()
        ev = s.scalars(select(AuditEvent).where(AuditEvent.entity_what == f"Appointment/{a.id}")).one()
        assert audit.verify(s)[1] == [] and ev.chain_seq >= 1


def test_a_full_slot_seen_only_by_the_write_writes_nothing(db, world, sched):
    """The facts said a place was free, but another booking took it before the write: 409, and neither
    the rows nor the audit event nor the chain head are written."""
    if db.kind != "postgresql":
        pytest.skip("SQLite has one writer at a time: no other booking can come in between")
    from sqlalchemy import update

    pid, slot_id, op = patient(db, world.org_a), _free_slot(db, sched.ct), cli_principal()
    real = repo.booking_facts

    def facts_then_someone_else_fills_it(session, *args, **kwargs):
        f = real(session, *args, **kwargs)
        with db.session() as other:  # commits before our write runs
            other.execute(update(Slot).where(Slot.id == slot_id).values(booked=Slot.capacity))
            other.commit()
        return f

    with db.session() as s:
        before, heads = _counts(s), s.execute(select(audit._HEAD)).all()
    repo.booking_facts = facts_then_someone_else_fills_it
    try:
        with db.session() as s:
            with pytest.raises(Conflict):
                service.book(s, op, slot_id=slot_id, patient_record_id=pid, exam_code="CT_HEAD", channel="app")
            s.commit()  # even a caller that keeps the transaction keeps nothing of the attempt
    finally:
        repo.booking_facts = real
    with db.session() as s:
        assert _counts(s) == before and s.execute(select(audit._HEAD)).all() == heads
        assert audit.verify(s)[1] == []


def test_a_record_that_fails_the_real_name_check_takes_no_place(db, world, sched):
    """A record with a malformed ID number gets its 422 before anything is taken — even if the caller
    keeps the transaction (nothing of the attempt is left)."""
    from sqlalchemy import update

    from onetrip.kit.errors import Unprocessable

    pid, slot_id = patient(db, world.org_a), _free_slot(db, sched.ct)
    with db.session() as s:
        good = s.get(PatientRecord, pid).id_number
        bad = good[:-1] + ("0" if good[-1] != "0" else "1")  # the check digit no longer matches
        s.execute(update(PatientRecord).where(PatientRecord.id == pid).values(id_number=bad))
        s.commit()
    with db.session() as s:
        before = _counts(s)
        with pytest.raises(Unprocessable):
            service.book(s, cli_principal(), slot_id=slot_id, patient_record_id=pid, exam_code="CT_HEAD",
                         channel="app")
        s.commit()  # a caller that carries on: the place must not stay taken
        assert s.get(Slot, slot_id).booked == 0
        assert _counts(s) == before


def test_what_the_checks_refuse_takes_nothing(db, world, sched):
    """A slot of a resource that does not do the exam, a deleted record and an unknown exam take nothing
    (each raises its own error, the slot's count is unchanged)."""
    from sqlalchemy import update

    from onetrip.kit.errors import ApiError

    op = cli_principal()
    slot_id = _free_slot(db, sched.ct)
    gone = patient(db, world.org_a)
    with db.session() as s:
        s.execute(update(PatientRecord).where(PatientRecord.id == gone).values(deleted_at=utcnow()))
        s.commit()
    cases = [(patient(db, world.org_a), "US_ABD"), (patient(db, world.org_a), "NO_SUCH_EXAM"), (gone, "CT_HEAD")]
    for pid, exam in cases:
        with db.session() as s:
            with pytest.raises(ApiError):
                service.book(s, op, slot_id=slot_id, patient_record_id=pid, exam_code=exam, channel="app")
            s.commit()
            assert s.get(Slot, slot_id).booked == 0, exam


def test_another_institutions_patient_goes_through_the_access_policy(db, world, sched):
    """The lean path serves the caller's own records; another institution's record is decided by the
    access policy (a denial is audited and refused, a consent permits the booking)."""
    from onetrip.access import service as access
    from onetrip.kit.errors import AccessDenied
    from tests.referral.conftest import user_principal

    doc_a = user_principal(db, world.users["doc_a"])
    pid, slot_id = patient(db, world.org_b), _free_slot(db, sched.ct)
    with db.session() as s:
        person_id = s.get(PatientRecord, pid).person_id
        with pytest.raises(AccessDenied):
            service.book(s, doc_a, slot_id=slot_id, patient_record_id=pid, exam_code="CT_HEAD", channel="clinic")
        assert s.scalars(select(AuditEvent).where(AuditEvent.entity_what == f"Patient/{pid}",
                                                  AuditEvent.outcome == audit.OUTCOME_MINOR)).one()
        assert s.get(Slot, slot_id).booked == 0
        s.rollback()
    with db.session() as s:
        access.record_consent(s, cli_principal(), person_id, "permit", grantee_organization_id=world.org_a)
        a = service.book(s, doc_a, slot_id=slot_id, patient_record_id=pid, exam_code="CT_HEAD", channel="clinic")
        s.commit()
        assert (a.person_id, a.organization_id, a.booking_organization_id) == (person_id, world.org_a, world.org_a)
