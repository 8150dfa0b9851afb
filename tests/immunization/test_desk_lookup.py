"""The desk (issue 20 point 4 gaps) on SQLite and PostgreSQL: finding the child by resident ID number through the
person index (valid, wrong check digit, unknown; audited; masked on screen), and the alternative products at
the desk — JE-I for a child due JE-L-1 (then JE-I 2 at >= 7 days), HepA-I for a child due HepA-L-1 (then HepA-I 2
at >= 6 months), and the other product refused once one is chosen (R6.1 / R6.2)."""

from __future__ import annotations

import datetime as dt
import itertools
import re

from sqlalchemy import select

from onetrip.audit.models import AuditEvent
from onetrip.immunization import rules, service
from onetrip.immunization.schemas import CheckIn
from onetrip.kit import clock
from onetrip.kit.identifiers import make_resident_id
from onetrip.kit.masking import mask_id_number
from onetrip.kit.principal import cli_principal
from onetrip.persons.models import PatientRecord
from tests.factories import register_patient
from tests.immunization.test_desk_api import NO, born, check, failed, inbound, record

API = "/api/immunization"
UI = "/ui/immunization"
_seq = itertools.count(101, 2)  # odd: boys


def resident_child(db, world, days: int = 300) -> tuple[str, str]:
    birth = born(days)
    number = make_resident_id("110101", birth, next(_seq))
    rec = register_patient(db, world.org_a, name="赵小龙", sex="1", birth_date=birth, id_number=number)
    return number, rec


def wrong_check_digit(number: str) -> str:
    last = "0" if number[-1] != "0" else "1"
    return number[:-1] + last


def person_of(db, record_id: str) -> str:
    with db.session() as s:
        return s.get(PatientRecord, record_id).person_id


def audits(db, **where) -> list[AuditEvent]:
    with db.session() as s:
        q = select(AuditEvent)
        for k, v in where.items():
            q = q.where(getattr(AuditEvent, k) == v)
        return list(s.scalars(q.order_by(AuditEvent.seq)))


# --- lookup by resident ID ------------------------------------------------------------------------------------

def test_desk_finds_the_child_by_resident_id(client, vac, world, db):
    number, rec = resident_child(db, world)
    person = person_of(db, rec)
    before = len(audits(db, entity_person_id=person, subtype="search-type"))
    r = client.get(f"{API}/desk/child", params={"q": number.lower()}, headers=vac)
    assert r.status_code == 200, r.text
    assert r.json()["patient_id"] == rec and "*" in r.json()["name"]
    searches = audits(db, entity_person_id=person, subtype="search-type")
    assert len(searches) == before + 1 and number not in (searches[-1].query or "")
    assert mask_id_number(number) in searches[-1].query
    assert audits(db, entity_person_id=person, subtype="read", entity_what=f"Patient/{rec}")  # then the read


def test_wrong_check_digit_and_unknown_id(client, vac, world, db):
    number, _ = resident_child(db, world)
    bad = client.get(f"{API}/desk/child", params={"q": wrong_check_digit(number)}, headers=vac)
    assert bad.status_code == 400 and bad.json()["resourceType"] == "OperationOutcome"
    assert "校验位" in bad.text and "check character" in bad.text and bad.json()["issue"][0]["expression"] == ["q"]
    assert wrong_check_digit(number) not in bad.text  # masked in the message

    unknown = make_resident_id("110101", born(200), 999)
    r = client.get(f"{API}/desk/child", params={"q": unknown}, headers=vac)
    assert r.status_code == 404 and "no registered child" in r.text and unknown not in r.text
    assert mask_id_number(unknown) in r.text
    found = [e for e in audits(db, subtype="search-type") if e.query and mask_id_number(unknown) in e.query]
    assert len(found) == 1 and found[0].detail["results"] == 0  # the empty search is audited too


def test_desk_page_by_resident_id_masks_it(client, vac, world, db):
    number, rec = resident_child(db, world)
    r = client.get(f"{UI}/desk", params={"q": number}, headers=vac, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"{UI}/desk?q={rec}"
    page = client.get(r.headers["location"], headers=vac).text
    assert f'data-patient="{rec}"' in page and number not in page
    assert re.search(r'id="desk-child-id">\s*' + re.escape(mask_id_number(number)), page)

    typed = wrong_check_digit(number)
    page = client.get(f"{UI}/desk", params={"q": typed}, headers=vac)
    assert page.status_code == 200 and 'id="desk-lookup-error"' in page.text
    assert "身份证号校验位错误" in page.text and f'value="{typed}"' in page.text  # kept to correct it
    assert 'id="desk-child-facts"' not in page.text
    unknown = make_resident_id("110101", born(100), 997)
    page = client.get(f"{UI}/desk", params={"q": unknown, "lang": "en"}, headers=vac).text
    assert 'id="desk-lookup-error"' in page and "no registered child" in page


# --- alternatives at the desk (R6.1 / R6.2) -----------------------------------------------------------------

def _due(client, hdr, patient) -> dict[str, dict]:
    r = client.get(f"{API}/desk/child", params={"q": patient}, headers=hdr)
    assert r.status_code == 200, r.text
    return {d["vaccine_code"]: d for d in r.json()["due"]}


def test_je_i_chosen_at_the_first_dose_then_its_own_interval(client, vac, world, db):
    patient = register_patient(db, world.org_a, name="钱小乙", sex="1", birth_date=born(300))
    due = _due(client, vac, patient)
    assert due["JE-L"]["dose_number"] == 1 and due["JE-L"]["alternatives"] == ["JE-I"] and "JE-I" not in due
    page = client.get(f"{UI}/desk", params={"q": patient}, headers=vac).text
    assert 'data-alternatives="JE-I"' in page

    je_i = inbound(client, vac, world, code="JE-I", n=3)["codes"]
    v = check(client, vac, patient, je_i[0])
    assert v["ok"], failed(v)
    assert (v["vaccine_code"], v["dose_number"]) == ("JE-I", 1)
    assert record(client, vac, patient, je_i[0]).status_code == 201
    due = _due(client, vac, patient)
    assert "JE-L" not in due  # JE-I is the choice from now on

    v = check(client, vac, patient, je_i[1])  # dose 2 the same day: JE-I's own 7-day interval
    assert list(failed(v)) == ["interval"] and (clock.local_date(clock.utcnow()) + dt.timedelta(days=7)).isoformat() \
        in failed(v)["interval"]
    later = clock.utcnow() + dt.timedelta(days=7)
    verdict, _, _ = _check_at(db, patient, je_i[1], later)
    assert verdict.ok and verdict.dose_number == 2
    six = clock.utcnow() + dt.timedelta(days=6)
    verdict, _, _ = _check_at(db, patient, je_i[1], six)
    assert [c.key for c in verdict.failed] == ["interval"]

    je_l = inbound(client, vac, world, code="JE-L", n=1)["codes"]
    v = check(client, vac, patient, je_l[0])
    assert list(failed(v)) == ["vaccine"]
    assert "JE-I was chosen" in failed(v)["vaccine"] and "不能改用 JE-L" in failed(v)["vaccine"]
    assert record(client, vac, patient, je_l[0]).status_code == 409


def _check_at(db, patient: str, code: str, now: dt.datetime):
    with db.session() as s:
        out = service.check(s, cli_principal(), CheckIn(patient_id=patient, trace_code=code, answers=NO), now)
        s.rollback()
        return out


def test_hepa_i_chosen_then_six_months_and_hepa_l_refused(client, vac, world, db):
    patient = register_patient(db, world.org_a, name="孙小甲", sex="2", birth_date=born(580))  # 19 months
    due = _due(client, vac, patient)
    assert due["HepA-L"]["dose_number"] == 1 and due["HepA-L"]["alternatives"] == ["HepA-I"]
    hepa_l = inbound(client, vac, world, code="HepA-L", n=1)["codes"]
    hepa_i = inbound(client, vac, world, code="HepA-I", n=2)["codes"]
    v = check(client, vac, patient, hepa_i[0])
    assert v["ok"] and (v["vaccine_code"], v["dose_number"]) == ("HepA-I", 1), failed(v)
    r = record(client, vac, patient, hepa_i[0])
    assert r.status_code == 201 and r.json()["vaccine_code"] == "HepA-I" and r.json()["dose_number"] == 1
    with db.session() as s:
        assert s.scalar(select(AuditEvent).where(AuditEvent.entity_what == f"Immunization/{r.json()['id']}"))

    five_months = clock.utcnow() + dt.timedelta(days=150)
    verdict, _, _ = _check_at(db, patient, hepa_i[1], five_months)
    assert [c.key for c in verdict.failed] == ["interval"]
    seven_months = clock.utcnow() + dt.timedelta(days=215)
    verdict, _, _ = _check_at(db, patient, hepa_i[1], seven_months)
    assert verdict.ok and verdict.dose_number == 2

    v = check(client, vac, patient, hepa_l[0])
    assert list(failed(v)) == ["vaccine"] and "HepA-I was chosen" in failed(v)["vaccine"]


def test_the_pure_alternative_rules():
    from onetrip.immunization.forecast import SeriesForecast

    today = dt.date(2026, 3, 1)
    je_l = SeriesForecast("JE-L", "JE-L", 1, "due", today, today, None, "2025", 0, ("alternative-available:JE-I",))
    assert rules.alternative_for("JE-I", [je_l]) == "JE-L"
    assert rules.alternative_for("HepA-I", [je_l]) is None
    je_i = SeriesForecast("JE-I", "JE-I", 2, "notdue", today, today, None, "2025", 1, ("alternative-chosen",))
    groups = {"JE-L": "JE", "JE-I": "JE", "HepA-L": "HepA", "HepA-I": "HepA"}
    assert rules.other_alternative_chosen("JE-L", [je_i], groups) == "JE-I"
    assert rules.other_alternative_chosen("HepA-L", [je_i], groups) is None
    checks, number = rules.dose_checks("JE-L", [je_i], today, groups)
    assert number is None and not checks[0].ok and "JE-I was chosen" in checks[0].reason
    checks, _ = rules.dose_checks("JE-L", [je_i], today)  # without the groups: the plain reason
    assert "not in the child's schedule" in checks[0].reason

