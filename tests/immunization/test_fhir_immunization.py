"""FHIR Immunization (read, search by patient / date / vaccine-code) from the desk's records, and
ImmunizationRecommendation?patient= over the recorded doses (issue 20 point 7), on SQLite and PostgreSQL:
lot, expiry, trace code, performer, site and route; access-checked and audited patient reads."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from onetrip.audit.models import AuditEvent
from onetrip.immunization.fhir import TRACE_SYSTEM, VACCINE_SYSTEM
from onetrip.kit import clock
from onetrip.kit.fhir import model_class
from tests.factories import auth, register_patient, token
from tests.immunization.test_desk_api import child, inbound, record

FHIR = "/fhir/R4"


@pytest.fixture(scope="module")
def given(client, vac, world, db):
    """A child of clinic A with HepB-1 given at the desk today."""
    patient = child(db, world)
    code = inbound(client, vac, world, lot="FHIRLOT1")["codes"][0]
    r = record(client, vac, patient, code)
    assert r.status_code == 201, r.text
    return {"patient": patient, "code": code, "id": r.json()["id"]}


def test_read_carries_the_r66_record(client, vac, given, db):
    r = client.get(f"{FHIR}/Immunization/{given['id']}", headers=vac)
    assert r.status_code == 200, r.text
    imm = r.json()
    model_class("Immunization").model_validate(imm)  # a valid R4 resource
    assert imm["status"] == "completed" and imm["patient"]["reference"] == f"Patient/{given['patient']}"
    assert imm["vaccineCode"]["coding"][0] == {"system": VACCINE_SYSTEM, "code": "HepB",
                                               "display": "hepatitis B vaccine"}
    assert imm["lotNumber"] == "FHIRLOT1" and imm["expirationDate"]
    assert imm["identifier"] == [{"system": TRACE_SYSTEM, "value": given["code"]}]
    assert imm["manufacturer"]["display"] == "示例生物制品有限公司"
    assert imm["route"]["coding"][0]["code"] == "IM" and imm["site"]["text"] == "right-deltoid"
    assert imm["performer"][0]["actor"]["display"].startswith("vac")
    assert imm["protocolApplied"] == [{"doseNumberPositiveInt": 1}]
    with db.session() as s:
        assert s.scalar(select(AuditEvent).where(AuditEvent.entity_what == f"Immunization/{given['id']}",
                                                 AuditEvent.subtype == "read")) is not None


def test_search_by_patient_date_and_vaccine_code(client, vac, given):
    today = clock.local_date(clock.utcnow())

    def ids(**q):
        r = client.get(f"{FHIR}/Immunization", params={"patient": f"Patient/{given['patient']}", **q}, headers=vac)
        assert r.status_code == 200, r.text
        return [e["resource"]["id"] for e in r.json().get("entry", [])]

    assert ids() == [given["id"]]
    assert ids(**{"vaccine-code": f"{VACCINE_SYSTEM}|HepB"}) == [given["id"]]
    assert ids(**{"vaccine-code": "MMR"}) == []
    assert ids(date=today.isoformat()) == [given["id"]]
    assert ids(date=f"lt{today.isoformat()}") == []
    bad = client.get(f"{FHIR}/Immunization", params={"date": "yesterday"}, headers=vac)
    assert bad.status_code == 400 and "date" in bad.text


def test_another_institution_is_refused_and_audited(client, world, given, db):
    doc_b = auth(token(client, world.users["doc_b"]))  # clinic B: no care relationship with the child
    r = client.get(f"{FHIR}/Immunization/{given['id']}", headers=doc_b)
    assert r.status_code == 403
    r = client.get(f"{FHIR}/Immunization", params={"patient": given["patient"]}, headers=doc_b)
    assert r.status_code == 403
    with db.session() as s:
        denied = s.scalars(select(AuditEvent).where(AuditEvent.entity_what == f"Immunization/{given['id']}",
                                                    AuditEvent.outcome != "0")).all()
    assert denied


def test_recommendation_for_a_registered_child_uses_the_history(client, vac, given, db, world):
    r = client.get(f"{FHIR}/ImmunizationRecommendation", params={"patient": f"Patient/{given['patient']}"},
                   headers=vac)
    assert r.status_code == 200, r.text
    rec = r.json()["entry"][0]["resource"]
    model_class("ImmunizationRecommendation").model_validate(rec)
    hepb = next(e for e in rec["recommendation"] if e["series"] == "HepB")
    assert hepb["doseNumberPositiveInt"] == 2  # dose 1 recorded at the desk
    earliest = next(c["value"] for c in hepb["dateCriterion"] if c["code"]["coding"][0]["code"] == "30981-5")
    assert earliest == (clock.local_date(clock.utcnow()) + dt.timedelta(days=28)).isoformat()  # R6.2 28 days
    fresh = register_patient(db, world.org_a, name="李小", sex="2", birth_date=dt.date(2025, 3, 1))
    r = client.get(f"{FHIR}/ImmunizationRecommendation", params={"patient": fresh, "date": "2025-03-02"},
                   headers=vac)
    first = next(e for e in r.json()["entry"][0]["resource"]["recommendation"] if e["series"] == "HepB")
    assert first["doseNumberPositiveInt"] == 1
    again = client.get(f"{FHIR}/ImmunizationRecommendation/{rec['id']}", headers=vac)
    assert again.status_code == 200 and again.json()["recommendation"] == rec["recommendation"]
    assert client.get(f"{FHIR}/ImmunizationRecommendation/{given['patient']}-2020", headers=vac).status_code == 404
    none = client.get(f"{FHIR}/ImmunizationRecommendation", headers=vac)  # computed per child: none without one
    assert none.status_code == 200 and not none.json().get("entry")
