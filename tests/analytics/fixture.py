"""A small district with hand-countable data for every indicator (expected values in EXPECTED).

Visits go through the encounter service, look-ups through the audit service; appointments and
recognition decisions are inserted as rows of their own tables (their services need slots and result
catalogues; the facts read only the rows) with the events those services emit; referral and family
events are recorded with ``outbox.record_event`` in the shapes of CONTRACTS.md.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from onetrip.analytics import encounters
from onetrip.analytics.models import AnalyticsCatchment
from onetrip.audit import service as audit
from onetrip.kit.clock import LOCAL_TZ, utcnow
from onetrip.kit.principal import Principal, cli_principal
from onetrip.outbox.service import record_event
from onetrip.persons.models import PatientRecord
from onetrip.recognition.models import RecognitionDecision
from onetrip.recognition.service import seed_catalogue
from onetrip.registry.models import Department
from onetrip.scheduling.models import Appointment, Resource, Slot
from tests.factories import register_patient

OCT = (dt.date(2026, 10, 1), dt.date(2026, 10, 31))
OCT_LAST_YEAR = (dt.date(2025, 10, 1), dt.date(2025, 10, 31))

# indicator → expected value for October 2026 over the whole district (hand-computed in the docstrings
# of the loaders below).
EXPECTED = {
    "primary_visit_rate": 0.75,  # 3 primary AMB ÷ 4 in-county AMB/EMER
    "outpatient_visits": 4,  # in-county AMB/EMER
    "county_visit_rate": 0.8,  # 4 in-county ÷ 5 AMB/EMER (one outside)
    "county_inpatient_rate": 0.5,  # 1 in-county IMP ÷ 2 IMP
    "smart_booking_rate": 0.75,  # precise 3 ÷ live 4
    "no_show_rate": 0.3333,  # 1 no-show ÷ (no-show + fulfilled + checked-in) 3
    "exam_wait_median": 2.0,  # waits 5, 1, 3, 0 → (1 + 3) / 2
    "recognition_rate": 0.5,  # recognised 1 ÷ (1 + 1 not recognised); reason 99 and no-prior left out
    "reminder_acceptance": 0.3333,  # 1 accepted ÷ 3 checks with a reminder
    "referrals_up": 2,
    "referrals_down": 1,
    "referrals_total": 3,
    "contract_rate": 0.1,  # on 2026-10-31 only k1 is in force; 10 residents
    "hypertension_management_rate": 0.5,  # 2 managed ÷ 4 estimated
    "hypertension_standard_rate": 0.5,  # p1 has 4 follow-ups in 2026, p2 has 2
    "hypertension_control_rate": 0.5,  # p1 latest controlled, p2 latest not
    "diabetes_management_rate": 0.5,  # 1 managed ÷ 2 estimated
    "diabetes_standard_rate": 0.0,  # one follow-up only
    "diabetes_control_rate": 1.0,  # latest (only) follow-up controlled
}
EXPECTED_LAST_YEAR = {"referrals_up": 1, "primary_visit_rate": 0.5, "outpatient_visits": 2}


@dataclass
class Fix:
    person_id: str
    record_id: str
    dept_a: str
    resource_id: str
    slot_id: str


def local(day: dt.date, hh: int = 9) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hh, tzinfo=LOCAL_TZ).astimezone(dt.UTC)


def base(db, world) -> Fix:
    rec_id = register_patient(db, world.org_b, name="王芳")
    with db.session() as s:
        seed_catalogue(s)
        person_id = s.get(PatientRecord, rec_id).person_id
        dept = Department(organization_id=world.org_a, code="IM", name="内科")
        s.add(dept)
        s.flush()
        res = Resource(organization_id=world.org_a, code="CT1", name="CT1", kind="device", modality="CT",
                       exam_codes=["CT_HEAD"], department_id=dept.id)
        s.add(res)
        s.flush()
        slot = Slot(resource_id=res.id, organization_id=world.org_a, start=local(dt.date(2026, 10, 6)),
                    end=local(dt.date(2026, 10, 6), 10), capacity=50)
        s.add(slot)
        s.add(AnalyticsCatchment(organization_id=world.org_b, residents=10, hypertension_estimated=4,
                                 diabetes_estimated=2))
        s.commit()
        return Fix(person_id, rec_id, dept.id, res.id, slot.id)


def load_encounters(db, world, fx: Fix) -> None:
    """2026-10-05: 3 AMB at branch B (primary), 1 EMER at A (county, 内科), 1 AMB outside, 1 IMP at A,
    1 IMP outside. 2025-10-10: 1 AMB at B, 1 AMB at A."""
    op = cli_principal()
    d, ly = dt.date(2026, 10, 5), dt.date(2025, 10, 10)
    with db.session() as s:
        for _ in range(3):
            encounters.record_encounter(s, op, visit_date=d, patient_record_id=fx.record_id, organization_id=world.org_b)
        encounters.record_encounter(s, op, visit_date=d, encounter_class="EMER", patient_record_id=fx.record_id,
                                    organization_id=world.org_a, department_id=fx.dept_a)
        encounters.record_encounter(s, op, visit_date=d, patient_record_id=fx.record_id,
                                    outside_institution="浙大一院", community_id=world.community_id)
        encounters.record_encounter(s, op, visit_date=d, encounter_class="IMP", patient_record_id=fx.record_id,
                                    organization_id=world.org_a)
        encounters.record_encounter(s, op, visit_date=d, encounter_class="IMP", patient_record_id=fx.record_id,
                                    outside_institution="省人民医院", community_id=world.community_id)
        encounters.record_encounter(s, op, visit_date=ly, patient_record_id=fx.record_id, organization_id=world.org_b)
        encounters.record_encounter(s, op, visit_date=ly, patient_record_id=fx.record_id, organization_id=world.org_a)
        s.commit()


APPTS = [  # (exam day, booked day, precise, status) — waits 5, 1, 3, (cancelled), 0
    (dt.date(2026, 10, 6), dt.date(2026, 10, 1), True, "fulfilled"),
    (dt.date(2026, 10, 6), dt.date(2026, 10, 5), False, "noshow"),
    (dt.date(2026, 10, 7), dt.date(2026, 10, 4), True, "booked"),
    (dt.date(2026, 10, 7), dt.date(2026, 10, 6), True, "cancelled"),
    (dt.date(2026, 10, 8), dt.date(2026, 10, 8), True, "checked-in"),
]


def load_appointments(db, world, fx: Fix, rows=APPTS) -> list[str]:
    ids = []
    with db.session() as s:
        for day, booked, precise, status in rows:
            a = Appointment(person_id=fx.person_id, patient_record_id=fx.record_id, organization_id=world.org_a,
                            slot_id=fx.slot_id, resource_id=fx.resource_id, exam_code="CT_HEAD", start=local(day),
                            end=local(day, 10), status=status, channel="web", precise=precise,
                            booked_at=local(booked, 8), version_id=1)
            s.add(a)
            s.flush()
            record_event(s, "appointment.booked", "Appointment", a.id, {"status": status}, person_id=fx.person_id)
            ids.append(a.id)
        s.commit()
    return ids


def load_recognition(db, world, fx: Fix) -> None:
    """At branch B on 2026-10-05: c1→recognised, c2→repeated 01, c3→repeated 99 (neutral), c4 without a
    prior → repeated 07 (left out)."""
    at = local(dt.date(2026, 10, 5), 10)
    with db.session() as s:
        for priors, decision, reason in ((["r1"], "recognised", None), (["r2"], "repeated", "01"),
                                         (["r3"], "repeated", "99"), ([], "repeated", "07")):
            c = RecognitionDecision(kind="check", person_id=fx.person_id, ordering_org_id=world.org_b,
                                    item_code="GLU", prior_ids=priors, created_at=at, updated_at=at)
            s.add(c)
            s.flush()
            record_event(s, "recognition.checked", "RecognitionDecision", c.id, {"priors": len(priors)})
            d = RecognitionDecision(kind="decision", person_id=fx.person_id, ordering_org_id=world.org_b,
                                    check_id=c.id, item_code="GLU", prior_ids=priors, decision=decision,
                                    reason_code=reason, disease="高血压" if reason == "99" else None,
                                    created_at=at, updated_at=at)
            s.add(d)
            s.flush()
            record_event(s, "recognition.decided", "RecognitionDecision", d.id, {"check_id": c.id})
        s.commit()


def load_lookups(db, world, fx: Fix) -> None:
    """Today, by a user of A: 2 successful result reads count; a Patient read and a denied read do not."""
    user = Principal(kind="user", id="u-a", name="doc_a", organization_id=world.org_a, roles=frozenset({"clinician"}))
    with db.session() as s:
        audit.record(s, user, "read", person_ids=[fx.person_id], what=["DiagnosticReport/r1"])
        audit.record(s, user, "read", person_ids=[fx.person_id], what=["ImagingStudy/i1"])
        audit.record(s, user, "read", person_ids=[fx.person_id], what=[f"Patient/{fx.record_id}"])
        audit.record(s, user, "read", outcome=audit.OUTCOME_MINOR, person_ids=[fx.person_id],
                     what=["DiagnosticReport/r2"])
        s.commit()


def _referral(s, rid: str, event: str, direction: str, frm: str, at: str | None, dept: str | None = None) -> None:
    record_event(s, f"referral.{event}", "Referral", rid, {
        "referral_id": rid, "direction": direction, "from_organization_id": frm, "to_organization_id": None,
        "to_department_id": dept, "submitted_at": at if event != "drafted" else None,
        "at": at or utcnow().isoformat(), "reserved_slot": False})


def load_referrals(db, world, fx: Fix) -> None:
    """October 2026: up r1 (drafted then submitted 10-05, to 内科), up r2, down r3; r4 only drafted.
    October 2025: up r5."""
    with db.session() as s:
        _referral(s, "r1", "drafted", "up", world.org_b, None)
        _referral(s, "r1", "submitted", "up", world.org_b, "2026-10-05T02:00:00+00:00", fx.dept_a)
        _referral(s, "r1", "accepted", "up", world.org_b, "2026-10-05T02:00:00+00:00", fx.dept_a)
        _referral(s, "r2", "submitted", "up", world.org_b, "2026-10-06T03:00:00+00:00")
        _referral(s, "r3", "submitted", "down", world.org_a, "2026-10-06T04:00:00+00:00")
        _referral(s, "r4", "drafted", "up", world.org_b, None)
        _referral(s, "r5", "submitted", "up", world.org_b, "2025-10-07T04:00:00+00:00")
        s.commit()


def load_family(db, world, fx: Fix) -> None:
    """Contracts at B: k1 2026-01-01..2026-12-31; k2 from 2026-03-01, ended 2026-09-15; k3 from 2026-11-01.
    Hypertension: p1 (Jan), p2 (Feb), p3 (Nov, after the period). p1: 4 follow-ups in 2026 (latest
    controlled) + one in 2025; p2: 2 (latest uncontrolled). Diabetes: p1, 1 follow-up, controlled."""
    b = world.org_b
    team = {"organization_id": b, "team_id": "t1", "doctor_id": "d1"}
    with db.session() as s:
        for cid, start, end in (("k1", "2026-01-01", "2026-12-31"), ("k2", "2026-03-01", "2027-02-28"),
                                ("k3", "2026-11-01", "2027-10-31")):
            record_event(s, "contract.signed", "Contract", cid, {"contract_id": cid, **team, "key_groups": [],
                                                                 "start_date": start, "end_date": end},
                         person_id=f"p-{cid}")
        record_event(s, "contract.ended", "Contract", "k2", {"contract_id": "k2", **team, "key_groups": [],
                                                             "start_date": "2026-03-01", "end_date": "2026-09-15"},
                     person_id="p-k2")
        for pid, prog, on in (("p1", "hypertension", "2026-01-10"), ("p2", "hypertension", "2026-02-01"),
                              ("p3", "hypertension", "2026-11-05"), ("p1", "diabetes", "2026-03-01")):
            record_event(s, "registry.enrolled", "Registry", pid, {"programme": prog, **team, "enrolled_on": on},
                         person_id=pid)
        for n, (pid, prog, day, controlled) in enumerate((
            ("p1", "hypertension", "2025-11-01", False), ("p1", "hypertension", "2026-01-15", False),
            ("p1", "hypertension", "2026-04-15", True), ("p1", "hypertension", "2026-07-15", False),
            ("p1", "hypertension", "2026-10-10", True), ("p2", "hypertension", "2026-03-01", True),
            ("p2", "hypertension", "2026-09-01", False), ("p1", "diabetes", "2026-06-01", True),
        ), start=1):
            record_event(s, "followup.recorded", "Followup", f"f{n}", {
                "followup_id": f"f{n}", "programme": prog, **team, "visit_date": day, "controlled": controlled,
                "on_schedule": True}, person_id=pid)
        s.commit()


def load_all(db, world) -> Fix:
    fx = base(db, world)
    load_encounters(db, world, fx)
    load_appointments(db, world, fx)
    load_recognition(db, world, fx)
    load_lookups(db, world, fx)
    load_referrals(db, world, fx)
    load_family(db, world, fx)
    return fx
