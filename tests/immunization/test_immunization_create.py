"""FHIR Immunization create (issue 20 point 7): a dose given at another clinic, on SQLite and PostgreSQL — round
trip of lot, expiry, manufacturer, performer, site, route and identifier; idempotent on the identifier and
If-None-Exist; each invalid element a 400 naming it with nothing stored; audit and outbox; the dose counts in
ImmunizationRecommendation?patient= and $immds-forecast (the next dose number advances); not-done does not
count; another institution without a care relationship is refused; the desk's observation board leaves it out."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from sqlalchemy import func, select

from onetrip.audit.models import AuditEvent
from onetrip.immunization.fhir import ORIGIN_SYSTEM, ROUTE_SYSTEM, SITE_SYSTEM, SOURCE_SYSTEM, VACCINE_SYSTEM
from onetrip.immunization.models import Vaccination
from onetrip.kit import clock
from onetrip.kit.fhir import model_class
from onetrip.outbox.models import OutboxEvent
from tests.factories import auth, register_patient, token

FHIR = "/fhir/R4"
ID_SYSTEM = "urn:oid:2.16.156.99.1.1"  # another clinic's record numbers
_ids = itertools.count(1)


def days_ago(n: int) -> dt.date:
    return clock.local_date(clock.utcnow()) - dt.timedelta(days=n)


def baby(db, world, days: int = 100) -> str:
    return register_patient(db, world.org_a, name="赵小宝", sex="1", birth_date=days_ago(days))


def imm(patient: str, code: str = "HepB", when: str | None = None, **extra) -> dict:
    body = {
        "resourceType": "Immunization", "status": "completed",
        "identifier": [{"system": ID_SYSTEM, "value": f"EXT{next(_ids):06d}"}],
        "vaccineCode": {"coding": [{"system": VACCINE_SYSTEM, "code": code}]},
        "patient": {"reference": f"Patient/{patient}"},
        "occurrenceDateTime": when or f"{days_ago(99).isoformat()}T09:30:00+08:00",
        "primarySource": False,
        "location": {"display": "邻县妇幼保健院接种门诊"},
        "manufacturer": {"display": "北京某生物制品有限公司"},
        "lotNumber": "B2025-117", "expirationDate": "2027-06-30",
        "site": {"coding": [{"system": SITE_SYSTEM, "code": "right-deltoid"}]},
        "route": {"coding": [{"system": ROUTE_SYSTEM, "code": "IM"}]},
        "performer": [{"function": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0443",
                                                "code": "AP"}]}, "actor": {"display": "李护士"}}],
    }
    body.update(extra)
    return body


def rows_of(db, patient: str) -> list[Vaccination]:
    with db.session() as s:
        return list(s.scalars(select(Vaccination).where(Vaccination.patient_record_id == patient)
                              .order_by(Vaccination.occurred_at)))


def hepb_next(client, hdr, patient: str, day: dt.date | None = None) -> int | None:
    q = {"patient": f"Patient/{patient}", **({"date": day.isoformat()} if day else {})}
    r = client.get(f"{FHIR}/ImmunizationRecommendation", params=q, headers=hdr)
    assert r.status_code == 200, r.text
    rec = r.json()["entry"][0]["resource"]
    return next(e for e in rec["recommendation"] if e["series"] == "HepB").get("doseNumberPositiveInt")


def test_create_round_trip_audit_and_outbox(client, vac, world, db):
    patient = baby(db, world)
    body = imm(patient)
    r = client.post(f"{FHIR}/Immunization", json=body, headers=vac)
    assert r.status_code == 201, r.text
    created = r.json()
    model_class("Immunization").model_validate(created)
    back = client.get(f"{FHIR}/Immunization/{created['id']}", headers=vac)
    assert back.status_code == 200, back.text
    got = back.json()
    assert got == created
    assert got["lotNumber"] == "B2025-117" and got["expirationDate"] == "2027-06-30"
    assert got["manufacturer"] == {"display": "北京某生物制品有限公司"}
    assert got["performer"][0]["actor"] == {"display": "李护士"}
    assert got["performer"][0]["function"]["coding"][0]["code"] == "AP"
    assert got["site"]["coding"][0] == {"system": SITE_SYSTEM, "code": "right-deltoid"}
    assert got["route"]["coding"][0]["system"] == ROUTE_SYSTEM and got["route"]["coding"][0]["code"] == "IM"
    assert got["identifier"] == body["identifier"]
    assert got["primarySource"] is False and got["reportOrigin"]["coding"][0]["system"] == ORIGIN_SYSTEM
    assert got["location"] == {"display": "邻县妇幼保健院接种门诊"}
    assert got["meta"]["tag"] == [{"system": SOURCE_SYSTEM, "code": "fhir"}]
    assert got["occurrenceDateTime"] == f"{days_ago(99).isoformat()}T01:30:00Z"  # 09:30 +08:00 in UTC
    assert got["protocolApplied"] == [{"doseNumberPositiveInt": 1}]
    [row] = rows_of(db, patient)
    assert (row.source, row.external_id, row.package_id, row.trace_code) == (
        "fhir", f"{ID_SYSTEM}|{body['identifier'][0]['value']}", None, None)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.entity_what == f"Immunization/{row.id}", AuditEvent.subtype == "create")) == 1
        event = s.scalar(select(OutboxEvent).where(OutboxEvent.aggregate_id == row.id))
    assert event.event_type == "immunization.recorded" and event.person_id == row.person_id
    assert event.payload["source"] == "fhir" and event.payload["dose_number"] == 1


def test_same_identifier_twice_is_one_dose_and_if_none_exist_finds_it(client, vac, world, db):
    patient = baby(db, world)
    body = imm(patient)
    first = client.post(f"{FHIR}/Immunization", json=body, headers=vac)
    again = client.post(f"{FHIR}/Immunization", json=body, headers=vac)
    assert (first.status_code, again.status_code) == (201, 200), again.text
    assert again.json()["id"] == first.json()["id"]
    ident = body["identifier"][0]
    cond = client.post(f"{FHIR}/Immunization", json={**body, "identifier": []},
                       headers={**vac, "If-None-Exist": f"identifier={ident['system']}|{ident['value']}"})
    assert cond.status_code == 200 and cond.json()["id"] == first.json()["id"], cond.text
    assert len(rows_of(db, patient)) == 1
    bad = client.post(f"{FHIR}/Immunization", json=body, headers={**vac, "If-None-Exist": "patient=x"})
    assert bad.status_code == 400, bad.text
    other = baby(db, world)  # the identifier reused for another child: refused, not silently the first dose
    clash = client.post(f"{FHIR}/Immunization", json=imm(other, identifier=body["identifier"]), headers=vac)
    assert clash.status_code == 409 and rows_of(db, other) == []


def _without(body: dict, key: str) -> dict:
    return {k: v for k, v in body.items() if k != key}


BAD = [
    (lambda b: _without(b, "status"), "Immunization.status"),
    (lambda b: {**b, "status": "entered-in-error"}, "Immunization.status"),
    (lambda b: {**b, "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "08"}]}},
     "Immunization.vaccineCode"),
    (lambda b: {**b, "vaccineCode": {"coding": [{"system": VACCINE_SYSTEM, "code": "COVID"}]}},
     "Immunization.vaccineCode"),
    (lambda b: {**b, "vaccineCode": "HepB"}, "Immunization.vaccineCode"),
    (lambda b: _without(b, "patient"), "Immunization.patient"),
    (lambda b: {**b, "patient": {"reference": "Patient/nosuchpatient"}}, "Immunization.patient"),
    (lambda b: {**b, "patient": {"reference": "Organization/x"}}, "Immunization.patient"),
    (lambda b: _without(b, "occurrenceDateTime"), "Immunization.occurrenceDateTime"),
    (lambda b: {**b, "occurrenceDateTime": "2026-02-30"}, "Immunization.occurrenceDateTime"),
    (lambda b: {**b, "occurrenceDateTime": (days_ago(-3)).isoformat()}, "Immunization.occurrenceDateTime"),
    (lambda b: {**b, "occurrenceDateTime": (days_ago(400)).isoformat()}, "Immunization.occurrenceDateTime"),
    (lambda b: {**b, "route": {"coding": [{"system": ROUTE_SYSTEM, "code": "NASAL"}]}}, "Immunization.route"),
    (lambda b: {**b, "expirationDate": "30/06/2027"}, "Immunization.expirationDate"),
    (lambda b: {**b, "primarySource": "yes"}, "Immunization.primarySource"),
    (lambda b: {**b, "lotNumber": "L" * 65}, "Immunization.lotNumber"),
    (lambda b: {**b, "performer": [{"actor": "李护士"}]}, "Immunization.performer"),
    (lambda b: {**b, "site": {"coding": [{"code": "x" * 40}]}}, "Immunization.site"),
]


@pytest.mark.parametrize(("change", "where"), BAD)
def test_each_invalid_element_is_a_400_naming_it_and_nothing_is_stored(client, vac, world, db, change, where):
    patient = baby(db, world)
    r = client.post(f"{FHIR}/Immunization", json=change(imm(patient)), headers=vac)
    assert r.status_code == 400, r.text
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["expression"] == [where], outcome
    assert " / " in outcome["issue"][0]["details"]["text"]  # 中文 / English
    assert rows_of(db, patient) == []


def test_history_counts_in_the_forecast(client, vac, world, db):
    patient = baby(db, world, days=100)
    assert hepb_next(client, vac, patient) == 1
    birth_dose = imm(patient, when=days_ago(100).isoformat())
    assert client.post(f"{FHIR}/Immunization", json=birth_dose, headers=vac).status_code == 201
    assert hepb_next(client, vac, patient) == 2  # the other clinic's dose counts (R6.4)
    second = client.post(f"{FHIR}/Immunization", json=imm(patient, when=days_ago(60).isoformat()), headers=vac)
    assert second.status_code == 201 and second.json()["protocolApplied"] == [{"doseNumberPositiveInt": 2}]
    assert hepb_next(client, vac, patient) == 3
    assert hepb_next(client, vac, patient, days_ago(80)) == 2  # on a day before the second dose
    # the ImmDS operation over the registered child reads the same history
    r = client.post(f"{FHIR}/$immds-forecast", headers=vac, json={"resourceType": "Parameters", "parameter": [
        {"name": "assessmentDate", "valueDate": clock.local_date(clock.utcnow()).isoformat()},
        {"name": "patient", "valueReference": {"reference": f"Patient/{patient}"}}]})
    assert r.status_code == 200, r.text
    # polio is one series: an IPV dose given elsewhere is dose 1, and the IPV forecast moves to dose 2
    ipv = client.post(f"{FHIR}/Immunization", json=imm(patient, "IPV", days_ago(40).isoformat()), headers=vac)
    assert ipv.status_code == 201 and ipv.json()["protocolApplied"] == [{"doseNumberPositiveInt": 1}]
    rec = client.get(f"{FHIR}/ImmunizationRecommendation", params={"patient": patient}, headers=vac).json()
    polio = next(e for e in rec["entry"][0]["resource"]["recommendation"] if e["series"] == "Polio")
    assert polio["doseNumberPositiveInt"] == 2


def test_not_done_is_kept_but_does_not_count(client, vac, world, db):
    patient = baby(db, world)
    r = client.post(f"{FHIR}/Immunization", json=imm(patient, status="not-done"), headers=vac)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "not-done" and "protocolApplied" not in r.json()
    assert hepb_next(client, vac, patient) == 1


def test_search_shows_the_source_and_the_desk_board_leaves_it_out(client, vac, world, db):
    patient = baby(db, world)
    today = clock.utcnow().astimezone(clock.LOCAL_TZ).replace(microsecond=0) - dt.timedelta(minutes=5)
    r = client.post(f"{FHIR}/Immunization", json=imm(patient, when=today.isoformat()), headers=vac)
    assert r.status_code == 201, r.text
    found = client.get(f"{FHIR}/Immunization", params={"patient": patient}, headers=vac).json()
    assert [(e["resource"]["id"], e["resource"]["meta"]["tag"][0]["code"]) for e in found["entry"]] == [
        (r.json()["id"], "fhir")]
    board = client.get("/api/immunization/desk/observation", headers=vac)
    assert board.status_code == 200 and r.json()["id"] not in {x["vaccination_id"] for x in board.json()}


def test_another_institution_and_a_reader_are_refused(client, world, db, vac, doc):
    patient = baby(db, world)
    doc_b = auth(token(client, world.users["doc_b"]))  # clinic B: no care relationship with the child
    assert client.post(f"{FHIR}/Immunization", json=imm(patient), headers=doc_b).status_code == 403
    assert client.post(f"{FHIR}/Immunization", json=imm(patient), headers=doc).status_code == 403  # no .c scope
    assert client.post(f"{FHIR}/Immunization", json=imm(patient)).status_code == 401
    assert rows_of(db, patient) == []


def test_a_wrong_history_dose_is_marked_entered_in_error_and_stops_counting(client, vac, world, db):
    patient = baby(db, world)
    r = client.post(f"{FHIR}/Immunization", json=imm(patient), headers=vac)
    assert r.status_code == 201 and hepb_next(client, vac, patient) == 2
    e = client.post(f"/api/immunization/vaccinations/{r.json()['id']}/entered-in-error", headers=vac,
                    json={"reason": "录入了其他儿童的记录"})
    assert e.status_code == 200, e.text
    assert (e.json()["status"], e.json()["trace_code"], e.json()["lot_number"]) == (
        "entered-in-error", None, "B2025-117")
    assert hepb_next(client, vac, patient) == 1
