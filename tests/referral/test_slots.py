"""Reserved slots (号源下沉, R2.4) in the referral flow: the branch books a place held for referrals while
sending; the place is released N hours before the slot (scheduling's job) — on a controllable clock."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from onetrip.kit.errors import Conflict
from onetrip.outbox.models import OutboxEvent
from onetrip.referral import service
from onetrip.scheduling import repository as repo
from onetrip.scheduling import service as scheduling
from onetrip.scheduling import tasks
from onetrip.scheduling.models import Appointment, Slot
from tests.referral.conftest import branch_patient, lead_patient
from tests.scheduling.conftest import build_sched


@pytest.fixture(scope="module")
def sched(db, world):
    # One place per slot, all of it held for referrals (share 1.0), so a general booking cannot take it.
    return build_sched(db, world.org_a, capacity=1, share=1.0, days=10)


def _slots(db, sched) -> list[Slot]:
    import onetrip.kit.clock as clock

    with db.session() as s:
        return [x for x in repo.slots(s, resource_ids=[sched.ct], start=clock.utcnow()) if x.booked == 0]


def _draft(db, world, doc_b) -> str:
    person_id, _ = branch_patient(db, world)
    with db.session() as s:
        r = service.draft_referral(s, doc_b, person_id=person_id, direction="up", to_organization_id=world.org_a,
                                   reason="需CT明确诊断", criteria_codes=["U5"], source="web")
        s.commit()
        return r.id


def test_sending_with_a_reserved_slot_then_accepting_schedules_it(db, world, sched, doc_a, doc_b):
    slot = _slots(db, sched)[0]
    assert slot.reserved == 1 and slot.reserved_purpose == "primary_care"
    rid = _draft(db, world, doc_b)
    with db.session() as s:
        r = service.submit(s, doc_b, rid, slot_id=slot.id, exam_code="CT_HEAD")
        s.commit()
        assert r.status == "submitted" and r.reserved_slot is True
        appt = s.get(Appointment, r.appointment_id)
        assert (appt.used_reserved, appt.purpose, appt.status) == (True, "primary_care", "booked")
        assert s.get(Slot, slot.id).reserved_booked == 1
        r = service.accept(s, doc_a, rid)
        s.commit()
        assert r.status == "scheduled"
        ev = s.scalars(select(OutboxEvent).where(OutboxEvent.aggregate_id == rid,
                                                 OutboxEvent.event_type == "referral.scheduled")).one()
        assert ev.payload["reserved_slot"] is True
        service.arrive(s, doc_a, rid)
        s.commit()
        assert s.get(Appointment, r.appointment_id).status == "checked-in"


def test_rejecting_gives_the_reserved_place_back(db, world, sched, doc_a, doc_b):
    slot = _slots(db, sched)[0]
    rid = _draft(db, world, doc_b)
    with db.session() as s:
        service.submit(s, doc_b, rid, slot_id=slot.id, exam_code="CT_HEAD")
        s.commit()
        service.reject(s, doc_a, rid, reason="请先完善基层检查")
        s.commit()
        fresh = s.get(Slot, slot.id)
        s.refresh(fresh)
        assert (fresh.booked, fresh.reserved_booked) == (0, 0)


def test_reserved_place_is_refused_to_general_booking_until_released(db, world, sched, doc_a, doc_b, monkeypatch):
    """Before release_at only a referral may take it; from release_at (slot start − 24 h) anyone may."""
    slot = _slots(db, sched)[-1]
    assert slot.release_at == slot.start - dt.timedelta(hours=24)
    _, rec_a = lead_patient(db, world)
    with db.session() as s, pytest.raises(Conflict):
        scheduling.book(s, doc_a, slot_id=slot.id, patient_record_id=rec_a, exam_code="CT_HEAD", channel="clinic")
    # The clock reaches the release time: the job releases it and a general booking succeeds.
    monkeypatch.setattr(scheduling, "utcnow", lambda: slot.release_at + dt.timedelta(minutes=1))
    with db.session() as s:
        assert tasks.release_reserved(s, slot.release_at + dt.timedelta(minutes=1)) >= 1
        s.commit()
        assert s.get(Slot, slot.id).reserved == 0
        appt = scheduling.book(s, doc_a, slot_id=slot.id, patient_record_id=rec_a, exam_code="CT_HEAD",
                               channel="clinic")
        s.commit()
        assert appt.used_reserved is False


def test_referral_after_release_still_books_but_not_as_reserved(db, world, sched, doc_b, monkeypatch):
    slot = _slots(db, sched)[-2]
    monkeypatch.setattr(scheduling, "utcnow", lambda: slot.release_at + dt.timedelta(minutes=1))
    with db.session() as s:
        tasks.release_reserved(s, slot.release_at + dt.timedelta(minutes=1))
        s.commit()
    rid = _draft(db, world, doc_b)
    with db.session() as s:
        r = service.submit(s, doc_b, rid, slot_id=slot.id, exam_code="CT_HEAD")
        s.commit()
        assert r.appointment_id and r.reserved_slot is False


def test_a_slot_at_another_institution_is_refused(db, world, doc_b):
    from onetrip.kit.errors import NotFound

    rid = _draft(db, world, doc_b)
    with db.session() as s, pytest.raises(NotFound):
        service.submit(s, doc_b, rid, slot_id="missing", exam_code="CT_HEAD")
