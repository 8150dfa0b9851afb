"""Booking through the REST API and the services: real-name, capacity, hold → confirm, cancel,
reschedule, check-in, no-show, reserved places (R2.4), care relationship, audit and outbox."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from onetrip.access.models import CareRelationship
from onetrip.audit.models import AuditEvent
from onetrip.kit.clock import utcnow
from onetrip.kit.errors import Conflict
from onetrip.kit.principal import cli_principal
from onetrip.outbox.models import OutboxEvent
from onetrip.scheduling import repository as repo
from onetrip.scheduling import service, tasks
from onetrip.scheduling.models import Appointment, Slot
from tests.scheduling.conftest import admin_headers, build_sched, patient


@pytest.fixture(scope="module")
def sched(db, world):
    return build_sched(db, world.org_a)


@pytest.fixture(scope="module")
def headers(client, world):
    return admin_headers(client, world)


def free_slot(db, resource_id: str, n: int = 0) -> str:
    with db.session() as s:
        return [x for x in repo.slots(s, resource_ids=[resource_id], start=utcnow(), only_free=True)][n].id


def test_book_returns_201_records_care_audit_outbox(client, db, world, sched, headers):
    pid = patient(db, world.org_b)  # a branch-centre patient booked into the lead hospital
    slot_id = free_slot(db, sched.ct)
    r = client.post("/api/scheduling/appointments", headers=headers, json={
        "slot_id": slot_id, "patient_record_id": pid, "exam_code": "CT_HEAD", "channel": "phone"})
    assert r.status_code == 201, r.text
    a = r.json()
    assert a["status"] == "booked" and a["channel"] == "phone" and a["organization_id"] == world.org_a
    with db.session() as s:
        assert s.get(Slot, slot_id).booked == 1
        assert s.scalars(select(CareRelationship).where(
            CareRelationship.source_ref == f"Appointment/{a['id']}",
            CareRelationship.organization_id == world.org_a, CareRelationship.kind == "appointment")).one()
        assert s.scalars(select(AuditEvent).where(AuditEvent.entity_what == f"Appointment/{a['id']}")).first()
        assert s.scalars(select(OutboxEvent).where(OutboxEvent.aggregate_id == a["id"],
                                                   OutboxEvent.event_type == "appointment.booked")).one()
    # full now: a second booking of the same one-place slot is a 409 OperationOutcome
    r2 = client.post("/api/scheduling/appointments", headers=headers, json={
        "slot_id": slot_id, "patient_record_id": patient(db, world.org_a), "exam_code": "CT_HEAD", "channel": "web"})
    assert r2.status_code == 409
    assert r2.json()["resourceType"] == "OperationOutcome"
    assert "full" in r2.json()["issue"][0]["details"]["text"]


def test_real_name_required(client, db, world, sched, headers):
    pid = patient(db, world.org_a, with_id=False)
    r = client.post("/api/scheduling/appointments", headers=headers, json={
        "slot_id": free_slot(db, sched.ct), "patient_record_id": pid, "exam_code": "CT_HEAD", "channel": "kiosk"})
    assert r.status_code == 422
    assert "real-name" in r.json()["issue"][0]["details"]["text"]


@pytest.mark.parametrize("bad", [{"channel": "fax"}, {"exam_code": "MR_HEAD"}])
def test_bad_channel_or_exam_not_done_here(client, db, world, sched, headers, bad):
    body = {"slot_id": free_slot(db, sched.ct), "patient_record_id": patient(db, world.org_a),
            "exam_code": "CT_HEAD", "channel": "app", **bad}
    assert client.post("/api/scheduling/appointments", headers=headers, json=body).status_code == 400


def test_hold_confirm_cancel_reschedule_checkin(client, db, world, sched, headers):
    pid = patient(db, world.org_a)
    s1, s2 = free_slot(db, sched.us, 0), free_slot(db, sched.us, 1)
    r = client.post("/api/scheduling/appointments", headers=headers, json={
        "slot_id": s1, "patient_record_id": pid, "exam_code": "US_THY", "channel": "app", "hold": True})
    assert r.status_code == 201 and r.json()["status"] == "pending" and r.json()["hold_expires_at"]
    aid = r.json()["id"]
    assert client.post(f"/api/scheduling/appointments/{aid}/confirm", headers=headers).json()["status"] == "booked"
    r = client.post(f"/api/scheduling/appointments/{aid}/reschedule", headers=headers, json={"slot_id": s2})
    assert r.status_code == 201, r.text
    new = r.json()
    assert new["rescheduled_from_id"] == aid and new["slot_id"] == s2
    with db.session() as s:
        assert s.get(Slot, s1).booked == 0 and s.get(Slot, s2).booked == 1
        assert s.get(Appointment, aid).status == "cancelled"
    # no-show before the start time is refused; check-in works
    assert client.post(f"/api/scheduling/appointments/{new['id']}/no-show", headers=headers).status_code == 409
    assert client.post(f"/api/scheduling/appointments/{new['id']}/check-in", headers=headers).json()["status"] == \
        "checked-in"
    assert client.post(f"/api/scheduling/appointments/{new['id']}/cancel", headers=headers,
                       json={"reason": "x"}).status_code == 409
    slip = client.get(f"/api/scheduling/appointments/{new['id']}/slip", headers=headers).json()
    assert slip["prep_zh"] and slip["prep_en"] and slip["exam_en"] == "Thyroid ultrasound"
    listed = client.get(f"/api/scheduling/appointments?patient={pid}", headers=headers).json()
    assert {a["status"] for a in listed} == {"cancelled", "checked-in"}


def test_cancel_gives_the_place_back(client, db, world, sched, headers):
    pid = patient(db, world.org_a)
    slot_id = free_slot(db, sched.es)
    aid = client.post("/api/scheduling/appointments", headers=headers, json={
        "slot_id": slot_id, "patient_record_id": pid, "exam_code": "ES_COLON", "channel": "clinic"}).json()["id"]
    assert client.post(f"/api/scheduling/appointments/{aid}/cancel", headers=headers, json={}).json()["status"] == \
        "cancelled"
    r = client.post("/api/scheduling/appointments", headers=headers, json={
        "slot_id": slot_id, "patient_record_id": pid, "exam_code": "ES_COLON", "channel": "clinic"})
    assert r.status_code == 201


def test_expired_hold_releases_the_place(db, world, sched):
    pid = patient(db, world.org_a)
    slot_id = free_slot(db, sched.ct, 3)
    with db.session() as s:
        a = service.book(s, cli_principal(), slot_id=slot_id, patient_record_id=pid, exam_code="CT_CHEST",
                         channel="web", hold=True)
        s.commit()
    with db.session() as s:
        assert tasks.expire_holds(s, utcnow() + dt.timedelta(hours=1)) >= 1
        s.commit()
    with db.session() as s:
        assert s.get(Appointment, a.id).status == "cancelled" and s.get(Slot, slot_id).booked == 0


def test_reserved_places_for_primary_care_and_release(db, world):
    """R2.4: a 5-place slot with 40% reserved: 3 general places, 2 for primary-care referrals; after the
    release time the unused reserved places are general."""
    sc = build_sched(db, world.org_a, capacity=5, share=0.4, days=3)
    op = cli_principal()
    slot_id = free_slot(db, sc.ct)
    with db.session() as s:
        slot = s.get(Slot, slot_id)
        assert (slot.capacity, slot.reserved, slot.reserved_purpose) == (5, 2, "primary_care")
        assert slot.release_at == slot.start - dt.timedelta(hours=24)
        s.execute(update(Slot).where(Slot.id == slot_id).values(release_at=utcnow() + dt.timedelta(days=30)))
        s.commit()
    pids = [patient(db, world.org_a) for _ in range(6)]

    def try_book(pid, purpose=None):
        with db.session() as s:
            try:
                a = service.book(s, op, slot_id=slot_id, patient_record_id=pid, exam_code="CT_HEAD", channel="phone",
                                 purpose=purpose)
                s.commit()
                return a
            except Conflict:
                s.rollback()
                return None

    assert all(try_book(p) for p in pids[:3])
    assert try_book(pids[3]) is None  # the general places are gone
    a = try_book(pids[3], "primary_care")
    assert a is not None and a.used_reserved
    with db.session() as s:  # the release time passes: the last reserved place becomes general
        s.execute(update(Slot).where(Slot.id == slot_id).values(release_at=utcnow() - dt.timedelta(minutes=1)))
        assert tasks.release_reserved(s) >= 1
        s.commit()
        assert s.get(Slot, slot_id).reserved == 1
    assert try_book(pids[4]) is not None
    assert try_book(pids[5]) is None and try_book(pids[5], "primary_care") is None
    with db.session() as s:
        slot = s.get(Slot, slot_id)
        assert slot.booked == slot.capacity == 5


def test_check_constraint_refuses_overbooking(db, world, sched):
    """Belt and braces: even a direct UPDATE cannot push booked past capacity."""
    from sqlalchemy.exc import IntegrityError

    slot_id = free_slot(db, sched.ct, 5)
    with db.session() as s, pytest.raises(IntegrityError):
        s.execute(update(Slot).where(Slot.id == slot_id).values(booked=Slot.capacity + 1))
        s.flush()


def test_figures(client, db, world, sched, headers):
    r = client.get("/api/scheduling/figures", headers=headers, params={
        "start": sched.day.isoformat(), "end": (sched.day + dt.timedelta(days=20)).isoformat(),
        "organization": world.org_a})
    assert r.status_code == 200, r.text
    f = r.json()
    assert f["appointments"] >= 1 and f["smart_booking_rate"] == 1.0
    assert "CT" in f["median_wait_days"]
    assert any(u["booked"] > 0 for u in f["utilisation"])
    assert 0 < max(u["utilisation"] for u in f["utilisation"]) <= 1
    # a clinician of another institution may not see these figures
    from tests.factories import auth, token
    other = auth(token(client, world.users["doc_b"]))
    assert client.get("/api/scheduling/figures", headers=other, params={
        "start": sched.day.isoformat(), "end": sched.day.isoformat(), "organization": world.org_a}).status_code == 403
