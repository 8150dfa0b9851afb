"""Pregnancy care (issue 21 point 1) through /api/maternal-child/pregnancies and the pages, on SQLite and
PostgreSQL: booking dates and grades (R11.1, R11.2), visits re-grade, orange/red without a manager on the
case-management worklist, overdue alerts, delivery opening the postpartum visit and the 42-day check, errors as
OperationOutcomes naming the field, another institution's access, audit and outbox rows."""

from __future__ import annotations

import datetime as dt
import itertools
import re

from sqlalchemy import select

from onetrip.audit.models import AuditEvent
from onetrip.kit import clock
from onetrip.maternal_child.models import RiskGrade
from onetrip.outbox.models import OutboxEvent
from tests.factories import register_patient

API = "/api/maternal-child/pregnancies"
UI = "/ui/maternal-child/pregnancies"
_seq = itertools.count(1)


def today() -> dt.date:
    return clock.local_date(clock.utcnow())


def days(n: int) -> dt.date:
    return today() - dt.timedelta(days=n)


NAMES = ("王芳", "张敏", "刘静", "陈丽娟", "杨雪", "赵倩", "黄琳", "周婷", "吴霞", "徐慧", "孙燕", "马丽")


def woman(db, org: str, age: int = 28, name: str | None = None) -> str:
    """A woman registered at ``org`` (distinct name, birth day and phone: never matched to another person)."""
    n = next(_seq)
    birth = today() - dt.timedelta(days=int(365.25 * age) + 30 + n)  # ``age`` whole years today
    return register_patient(db, org, name=name or NAMES[n % len(NAMES)], sex="2", birth_date=birth,
                            phone=f"139{n:08d}")


def book(client, hdr, record_id: str, lmp_days_ago: int, **body) -> dict:
    r = client.post(API, headers=hdr, json={"patient_id": record_id,
                                            "lmp": days(lmp_days_ago).isoformat(), **body})
    assert r.status_code == 201, r.text
    return r.json()


def outbox(db, event_type: str, aggregate_id: str) -> list[OutboxEvent]:
    with db.session() as s:
        return list(s.scalars(select(OutboxEvent).where(OutboxEvent.event_type == event_type,
                                                        OutboxEvent.aggregate_id == aggregate_id)))


def audits(db, what: str) -> list[AuditEvent]:
    with db.session() as s:
        return [e for e in s.scalars(select(AuditEvent)) if what in str(e.entity_what or "")]


def issue_field(r) -> str:
    body = r.json()
    assert body["resourceType"] == "OperationOutcome", body
    return (body["issue"][0].get("expression") or [""])[0]


def plan(p: dict) -> dict[str, str]:
    return {w["key"]: w["state"] for w in p["plan"]}


def test_booking_dates_grades_plans_and_records(client, db, mch, world):
    rec = woman(db, world.org_a, age=36)
    p = book(client, mch, rec, 70, facts={"hepatitis": True})  # 10+0 weeks
    assert p["edd"] == (days(70) + dt.timedelta(days=280)).isoformat() and p["edd_source"] == "lmp"
    assert p["gestational_age"] == "10+0" and p["status"] == "active"
    assert (p["risk_colour"], p["purple"]) == ("yellow", True)  # R11.2: age ≥ 35, hepatitis
    assert set(p["risk_reasons"]) == {"age_35_plus", "hepatitis"} and not p["case_management"]
    assert plan(p)["first"] == "done" and plan(p)["w16_20"] == "upcoming" and p["antenatal_checks"] == 1
    assert [(g["colour"], g["purple"]) for g in p["grades"]] == [("yellow", True)]
    assert p["visits"][0]["gestational_age"] == "10+0"
    booked = outbox(db, "maternal_child.pregnancy.booked", p["id"])
    assert len(booked) == 1 and booked[0].payload["edd_source"] == "lmp"
    assert outbox(db, "maternal_child.pregnancy.graded", p["id"])[0].payload["colour"] == "yellow"
    assert any(e.subtype == "create" for e in audits(db, f"mch-pregnancy-{p['id']}"))
    # a second booking while this one is active
    r = client.post(API, headers=mch, json={"patient_id": rec, "lmp": days(60).isoformat()})
    assert r.status_code == 409


def test_dating_ultrasound_corrects_the_edd_and_bmi_comes_from_weight(client, db, mch, world):
    rec = woman(db, world.org_a)
    # LMP 70 days ago, scan 7 days ago measuring 10+0 where the LMP says 9+0: 7 days apart, LMP kept
    p = book(client, mch, rec, 70, scan={"date": days(7).isoformat(), "weeks": 10, "days": 0})
    assert p["edd_source"] == "lmp"
    rec2 = woman(db, world.org_a)
    p2 = book(client, mch, rec2, 70, scan={"date": days(7).isoformat(), "weeks": 10, "days": 1},
              findings={"weight_kg": 81, "height_cm": 160})
    assert p2["edd_source"] == "ultrasound"
    assert p2["edd"] == (days(7) + dt.timedelta(days=280 - 71)).isoformat()
    assert p2["gestational_age"] == "11+1"
    assert p2["facts"]["bmi"] == 31.6 and p2["risk_colour"] == "orange"  # R11.2: BMI ≥ 28


def test_errors_are_operation_outcomes_naming_the_field(client, db, mch, world):
    rec = woman(db, world.org_a)
    r = client.post(API, headers=mch, json={"patient_id": rec, "lmp": days(-1).isoformat()})
    assert r.status_code == 400 and issue_field(r) == "lmp"
    r = client.post(API, headers=mch, json={"patient_id": rec, "lmp": days(44 * 7 + 1).isoformat()})
    assert r.status_code == 400 and issue_field(r) == "lmp"
    r = client.post(API, headers=mch, json={"patient_id": rec, "lmp": days(60).isoformat(),
                                            "scan": {"date": days(70).isoformat(), "weeks": 8}})
    assert r.status_code == 400 and issue_field(r) == "scan.date"
    r = client.post(API, headers=mch, json={"patient_id": rec, "lmp": "not a date"})
    assert r.status_code in (400, 422) and r.json()["resourceType"] == "OperationOutcome"
    p = book(client, mch, rec, 100, booked_on=days(10).isoformat())
    r = client.post(f"{API}/{p['id']}/visits", headers=mch, json={"visit_date": days(11).isoformat()})
    assert r.status_code == 400 and issue_field(r) == "visit_date"
    r = client.post(f"{API}/{p['id']}/visits", headers=mch, json={"visit_date": days(-1).isoformat()})
    assert r.status_code == 400 and issue_field(r) == "visit_date"
    r = client.post(f"{API}/{p['id']}/visits", headers=mch, json={"kind": "postpartum",
                                                                 "visit_date": days(1).isoformat()})
    assert r.status_code == 400 and issue_field(r) == "kind"
    r = client.post(f"{API}/{p['id']}/delivery", headers=mch, json={"delivery_date": days(2).isoformat(),
                                                                   "discharge_date": days(3).isoformat()})
    assert r.status_code == 400 and issue_field(r) == "discharge_date"
    r = client.get(API, headers=mch, params={"list": "nonsense"})
    assert r.status_code == 400 and issue_field(r) == "list"
    assert client.get(f"{API}/nope", headers=mch).status_code == 404


def test_visit_regrades_and_orange_goes_to_case_management(client, db, mch, world):
    rec = woman(db, world.org_a)
    p = book(client, mch, rec, 100, booked_on=days(30).isoformat())  # booked at 10+0, today 14+2
    assert p["risk_colour"] == "green"
    worklist = {r["id"] for r in client.get(API, headers=mch, params={"list": "case-management"}).json()}
    assert p["id"] not in worklist
    r = client.post(f"{API}/{p['id']}/visits", headers=mch, json={
        "visit_date": days(1).isoformat(), "findings": {"weight_kg": 60, "bp_systolic": 150, "bp_diastolic": 100},
        "facts": {"serious_complication": True}})
    assert r.status_code == 201, r.text
    q = r.json()
    assert q["risk_colour"] == "orange" and q["case_management"] and q["case_manager_name"] is None
    assert [g["colour"] for g in q["grades"]] == ["green", "orange"] and q["grades"][1]["visit_id"]
    assert q["visits"][-1]["findings"]["bp_systolic"] == 150
    rows = {r["id"]: r for r in client.get(API, headers=mch, params={"list": "case-management"}).json()}
    assert p["id"] in rows and rows[p["id"]]["risk_colour"] == "orange"
    assert "*" in rows[p["id"]]["name"] and "*" in rows[p["id"]]["phone"]  # masked
    graded = outbox(db, "maternal_child.pregnancy.graded", p["id"])
    assert len(graded) == 2 and graded[-1].payload["needs_manager"] is True
    assert len(outbox(db, "maternal_child.pregnancy.visit_recorded", p["id"])) == 1
    with db.session() as s:
        assert len(list(s.scalars(select(RiskGrade).where(RiskGrade.pregnancy_id == p["id"])))) == 2
    # a visit giving other facts keeps the complication (facts not given stay as they were)
    q = client.post(f"{API}/{p['id']}/visits", headers=mch, json={
        "visit_date": today().isoformat(), "facts": {"syphilis": True}}).json()
    assert (q["risk_colour"], q["purple"]) == ("orange", True)
    # the manager takes the case with a plan: off the worklist
    r = client.post(f"{API}/{p['id']}/case-manager", headers=mch, json={"plan": "每两周产检；转县医院产科会诊"})
    assert r.status_code == 200, r.text
    assert r.json()["case_manager_name"] == "妇幼医生甲" and r.json()["case_plan"].startswith("每两周")
    rows = {r["id"] for r in client.get(API, headers=mch, params={"list": "case-management"}).json()}
    assert p["id"] not in rows
    assert len(outbox(db, "maternal_child.pregnancy.case_assigned", p["id"])) == 1
    # a manager of another institution is refused
    from onetrip.registry.models import User

    with db.session() as s:
        other = s.scalar(select(User.id).where(User.username == world.users["doc_b"]))
    r = client.post(f"{API}/{p['id']}/case-manager", headers=mch, json={"plan": "x", "manager_id": other})
    assert r.status_code == 400 and issue_field(r) == "manager_id"


def test_overdue_alert_until_the_visit_is_recorded(client, db, mch, world):
    rec = woman(db, world.org_a)
    # LMP 22+0 weeks ago, booked at 10+0: the 16–20 window ended yesterday's week without a visit
    p = book(client, mch, rec, 154, booked_on=days(154 - 70).isoformat())
    assert plan(p)["w16_20"] == "overdue" and plan(p)["w21_24"] == "due"
    overdue = {r["id"]: r for r in client.get(API, headers=mch, params={"list": "overdue"}).json()}
    assert p["id"] in overdue and overdue[p["id"]]["overdue"] == ["w16_20"]
    assert "w21_24" in overdue[p["id"]]["due"]
    # the 18-week check, recorded late
    r = client.post(f"{API}/{p['id']}/visits", headers=mch, json={"visit_date": days(154 - 126).isoformat()})
    assert r.status_code == 201 and plan(r.json())["w16_20"] == "done"
    assert r.json()["visits"][-1]["gestational_age"] == "18+0"
    assert p["id"] not in {r["id"] for r in client.get(API, headers=mch, params={"list": "overdue"}).json()}
    searches = [e for e in audits(db, f"mch-pregnancy-{p['id']}") if e.subtype == "search"]
    assert searches


def test_delivery_opens_the_postpartum_visit_and_the_42_day_check(client, db, mch, world):
    rec = woman(db, world.org_a)
    # LMP 40+0 weeks + 45 days ago; delivered 45 days ago at 40+0, discharged 43 days ago
    p = book(client, mch, rec, 280 + 45, booked_on=days(280 + 45 - 70).isoformat())
    r = client.post(f"{API}/{p['id']}/delivery", headers=mch, json={
        "delivery_date": days(45).isoformat(), "discharge_date": days(43).isoformat(), "mode": "vaginal"})
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["status"] == "delivered" and d["gestational_age"] is None
    assert plan(d)["postpartum"] == "overdue" and plan(d)["day42"] == "due"  # day 45 after delivery
    pp = {w["key"]: w for w in d["plan"]}
    assert pp["postpartum"]["end"] == days(36).isoformat() and pp["day42"]["start"] == days(3).isoformat()
    assert outbox(db, "maternal_child.pregnancy.delivered", p["id"])[0].payload["ga_days"] == 280
    assert p["id"] in {r["id"] for r in client.get(API, headers=mch, params={"list": "overdue"}).json()}
    r = client.post(f"{API}/{p['id']}/visits", headers=mch, json={"kind": "antenatal",
                                                                 "visit_date": days(1).isoformat()})
    assert r.status_code == 400 and issue_field(r) == "kind"
    r = client.post(f"{API}/{p['id']}/visits", headers=mch, json={"kind": "postpartum",
                                                                 "visit_date": days(38).isoformat()})
    assert r.status_code == 201 and plan(r.json())["postpartum"] == "done"
    assert r.json()["grades"][-1]["colour"] == "green" and len(r.json()["grades"]) == 1  # no re-grade
    r = client.post(f"{API}/{p['id']}/visits", headers=mch, json={"kind": "day42", "visit_date": days(2).isoformat()})
    assert r.status_code == 201 and plan(r.json())["day42"] == "done" and r.json()["status"] == "closed"
    assert p["id"] not in {r["id"] for r in client.get(API, headers=mch).json()}
    r = client.post(f"{API}/{p['id']}/visits", headers=mch, json={"visit_date": days(1).isoformat()})
    assert r.status_code == 409


def test_a_red_case_is_escalated_to_the_lead_hospital_by_referral(client, db, mch_b, world):
    from onetrip.referral.models import Referral

    rec = woman(db, world.org_b)
    p = book(client, mch_b, rec, 120)
    r = client.post(f"{API}/{p['id']}/escalate", headers=mch_b, json={"reason": "复查"})
    assert r.status_code == 409  # green: nothing to escalate
    q = client.post(f"{API}/{p['id']}/visits", headers=mch_b, json={
        "visit_date": today().isoformat(), "facts": {"life_threatening": True}}).json()
    assert q["risk_colour"] == "red"
    r = client.post(f"{API}/{p['id']}/escalate", headers=mch_b, json={"reason": "重度子痫前期，需上级医院产科救治"})
    assert r.status_code == 200, r.text
    ref_id = r.json()["referral_id"]
    with db.session() as s:
        ref = s.get(Referral, ref_id)
        assert (ref.direction, ref.status, ref.urgent, ref.source) == ("up", "draft", True, "mch-pregnancy")
        assert ref.from_organization_id == world.org_b and ref.to_organization_id == world.org_a
        assert ref.criteria_codes == ["U1"] and "重度子痫前期" in ref.reason
    ev = outbox(db, "maternal_child.pregnancy.escalated", p["id"])
    assert len(ev) == 1 and ev[0].payload["referral_id"] == ref_id
    assert client.post(f"{API}/{p['id']}/escalate", headers=mch_b, json={"reason": "again"}).status_code == 409


def test_another_institution_reads_through_the_access_policy(client, db, mch, mch_b, world):
    rec = woman(db, world.org_a)
    p = book(client, mch, rec, 80)
    r = client.get(f"{API}/{p['id']}", headers=mch_b)
    assert r.status_code == 403 and r.json()["resourceType"] == "OperationOutcome"
    denied = [e for e in audits(db, f"mch-pregnancy-{p['id']}") if e.outcome != "0"]
    assert denied, "the denial is audited"
    assert p["id"] not in {r["id"] for r in client.get(API, headers=mch_b).json()}
    r = client.post(f"{API}/{p['id']}/visits", headers=mch_b, json={"visit_date": today().isoformat()})
    assert r.status_code == 403
    # own institution's read is audited as a read
    assert client.get(f"{API}/{p['id']}", headers=mch).status_code == 200
    assert any(e.subtype == "read" for e in audits(db, f"mch-pregnancy-{p['id']}"))


def test_a_clinician_without_episode_scope_is_refused(client, db, world):
    from tests.factories import auth, token

    hdr = auth(token(client, world.users["doc_a"]))
    assert client.get(API, headers=hdr).status_code == 403


# --- pages ---------------------------------------------------------------------------------------------------

def test_pages_worklist_booking_form_and_pregnancy(client, db, mch, world):
    rec = woman(db, world.org_a, age=41, name="李秀英")
    r = client.post(UI, headers=mch, data={"patient_id": rec, "lmp": days(-3).isoformat(), "weight_kg": "55",
                                           "height_cm": "158"}, follow_redirects=False)
    assert r.status_code == 400
    assert 'id="booking-error"' in r.text and 'data-field="lmp"' in r.text
    assert f'value="{rec}"' in r.text and 'value="55"' in r.text  # what was typed is kept
    r = client.post(UI, headers=mch, data={"patient_id": rec, "lmp": days(90).isoformat(), "weight_kg": "55",
                                           "height_cm": "158", "syphilis": "on"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    pid = r.headers["location"].rsplit("/", 1)[1]
    html = client.get(f"{UI}/{pid}", headers=mch).text
    assert 'data-colour="orange"' in html and 'data-purple="true"' in html
    assert re.search(r'data-window="first"[^>]*data-state="done"', html)
    assert re.search(r'data-window="w16_20"[^>]*data-state="upcoming"', html)
    lst = client.get(UI, headers=mch).text
    assert f'data-id="{pid}"' in lst
    row = lst.split(f'data-id="{pid}"')[1].split("</tr>")[0]
    assert "李**" in row and "李秀英" not in row
    assert re.search(r"(橙|Orange)", row) and re.search(r"(紫|Purple)", row)  # colour named in text, not colour only
    # the visit form on the pregnancy page: an error inline, then a visit
    r = client.post(f"{UI}/{pid}/visits", headers=mch, data={"kind": "antenatal", "visit_date": days(-2).isoformat(),
                                                             "bp_systolic": "120"})
    assert r.status_code == 400 and 'id="visit-error"' in r.text and 'value="120"' in r.text
    r = client.post(f"{UI}/{pid}/visits", headers=mch, data={"kind": "antenatal", "visit_date": today().isoformat(),
                                                             "life_threatening": "on"}, follow_redirects=False)
    assert r.status_code == 303
    html = client.get(f"{UI}/{pid}", headers=mch).text
    assert 'data-colour="red"' in html and 'id="escalate-form"' in html
    r = client.post(f"{UI}/{pid}/escalate", headers=mch, data={"reason": "   "})
    assert r.status_code == 400 and 'id="escalate-error"' in r.text
    # hospital A is the lead hospital: there is no hospital above it; the referral service's refusal is inline
    r = client.post(f"{UI}/{pid}/escalate", headers=mch, data={"reason": "胎盘早剥征象"}, follow_redirects=False)
    assert r.status_code == 400 and 'data-field="to_organization_id"' in r.text and 'value="胎盘早剥征象"' in r.text
    assert 'id="escalated"' not in client.get(f"{UI}/{pid}", headers=mch).text
    # the delivery form: discharge before delivery is refused inline, the dates kept
    r = client.post(f"{UI}/{pid}/delivery", headers=mch, data={"delivery_date": days(1).isoformat(),
                                                               "discharge_date": days(2).isoformat()})
    assert r.status_code == 400 and 'data-field="discharge_date"' in r.text
    assert f'value="{days(2).isoformat()}"' in r.text
    r = client.post(f"{UI}/{pid}/delivery", headers=mch, data={"delivery_date": days(1).isoformat(),
                                                               "discharge_date": today().isoformat()},
                    follow_redirects=False)
    assert r.status_code == 303
    html = client.get(f"{UI}/{pid}", headers=mch).text
    assert re.search(r'data-window="postpartum"[^>]*data-state="due"', html)
    assert 'id="nav-mch-pregnancies"' in lst  # the nav link for mch_doctor
