"""Reading another institution's patient: 403 with an audited denial, then break-the-glass, care
relationships and consent — through the real HTTP API on both databases."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from onetrip.access import service as access
from onetrip.audit.models import AuditEvent
from onetrip.kit.identifiers import make_resident_id
from onetrip.kit.principal import cli_principal
from onetrip.persons.models import PatientRecord
from tests.factories import auth, register_patient, token


def _person_of(db, record_id):
    with db.session() as s:
        return s.get(PatientRecord, record_id).person_id


def _events(db, person_id):
    with db.session() as s:
        return s.scalars(select(AuditEvent).where(AuditEvent.entity_person_id == person_id)
                         .order_by(AuditEvent.seq)).all()


def test_denied_then_break_the_glass(client, world, db):
    rid = make_resident_id("330281", dt.date(1961, 10, 1), 33)
    rec = register_patient(db, world.org_a, name="周建国", id_number=rid)
    person = _person_of(db, rec)
    doc_b = auth(token(client, world.users["doc_b"]))

    r = client.get(f"/fhir/R4/Patient/{rec}", headers=doc_b)
    assert r.status_code == 403 and r.json()["resourceType"] == "OperationOutcome"
    denied = [e for e in _events(db, person) if e.outcome == "4"]
    assert len(denied) == 1 and denied[0].subtype == "read" and "denied" in denied[0].outcome_desc

    # Searching by the exact ID at B returns nothing from A (no leak), and the search itself is audited.
    b = client.get(f"/fhir/R4/Patient?identifier={rid}", headers=doc_b).json()
    assert b.get("entry", []) == []

    r = client.post("/api/break-glass", json={"person_id": person, "reason_code": "ETREAT",
                                              "reason_text": "昏迷送急诊，需查既往病史"}, headers=doc_b)
    assert r.status_code == 201, r.text
    r = client.get(f"/fhir/R4/Patient/{rec}", headers=doc_b)
    assert r.status_code == 200
    events = _events(db, person)
    started = [e for e in events if e.type_code == "110113"]
    assert started and started[0].purpose_of_use == "ETREAT" and "昏迷" in started[0].detail["reason"]
    assert events[-1].subtype == "read" and events[-1].purpose_of_use == "ETREAT"
    # Now the search shows it too (the break-the-glass covers the person).
    b = client.get(f"/fhir/R4/Patient?identifier={rid}", headers=doc_b).json()
    assert [e["resource"]["id"] for e in b["entry"]] == [rec]

    bg_id = r.request and client.post("/api/break-glass", json={
        "person_id": person, "reason_text": "继续抢救"}, headers=doc_b).json()["id"]
    assert client.post(f"/api/break-glass/{bg_id}/end", headers=doc_b).status_code == 200


def test_break_the_glass_needs_a_reason(client, world, db):
    rec = register_patient(db, world.org_a, name="钱多多")
    doc_b = auth(token(client, world.users["doc_b"]))
    r = client.post("/api/break-glass", json={"person_id": _person_of(db, rec), "reason_code": "ETREAT",
                                              "reason_text": "  "}, headers=doc_b)
    assert r.status_code == 400 and "reason" in r.text
    r = client.post("/api/break-glass", json={"person_id": _person_of(db, rec), "reason_code": "CURIOUS",
                                              "reason_text": "just looking"}, headers=doc_b)
    assert r.status_code == 400


def test_care_relationship_and_consent(client, world, db):
    rec = register_patient(db, world.org_a, name="孙丽华")
    person = _person_of(db, rec)
    doc_b = auth(token(client, world.users["doc_b"]))
    assert client.get(f"/fhir/R4/Patient/{rec}", headers=doc_b).status_code == 403
    with db.session() as s:
        access.add_care_relationship(s, person, world.org_b, "referral", "ServiceRequest/demo")
        s.commit()
    assert client.get(f"/fhir/R4/Patient/{rec}", headers=doc_b).status_code == 200
    with db.session() as s:  # the resident refuses sharing with B: refusal wins over the relationship
        access.record_consent(s, cli_principal(), person, "deny", world.org_b)
        s.commit()
    assert client.get(f"/fhir/R4/Patient/{rec}", headers=doc_b).status_code == 403


def test_consent_permit_opens_access(client, world, db):
    rec = register_patient(db, world.org_a, name="李春梅")
    person = _person_of(db, rec)
    doc_b = auth(token(client, world.users["doc_b"]))
    assert client.get(f"/api/persons/{person}", headers=doc_b).status_code == 403
    with db.session() as s:
        access.record_consent(s, cli_principal(), person, "permit", None)
        s.commit()
    r = client.get(f"/api/persons/{person}", headers=doc_b)
    assert r.status_code == 200 and r.json()["name"] == "李春梅"


def test_admin_and_system_client_read_across_institutions_audited(client, world, db):
    rec = register_patient(db, world.org_b, name="吴桂英")
    person = _person_of(db, rec)
    admin = auth(token(client, world.users["admin"]))
    assert client.get(f"/fhir/R4/Patient/{rec}", headers=admin).status_code == 200
    reads = [e for e in _events(db, person) if e.subtype == "read"]
    assert reads and reads[-1].agent_name == world.users["admin"] and reads[-1].outcome == "0"


def test_search_shows_granted_persons_however_common_the_name(client, world, db):
    """A care relationship makes a person searchable at B even among hundreds of namesakes at A; the
    namesakes stay invisible; a refusal hides the granted one again."""
    from onetrip.identity import service as identity
    from onetrip.identity.schemas import PatientInput
    from onetrip.kit.principal import cli_principal

    with db.session() as s:
        recs = [identity.register(s, cli_principal(), PatientInput(organization_id=world.org_a, mrn=f"ZW-{i}",
                                                                   name="张伟")) for i in range(230)]
        target = recs[-1]
        access.add_care_relationship(s, target.person_id, world.org_b, "referral")
        s.commit()
    doc_b = auth(token(client, world.users["doc_b"]))
    b = client.get("/fhir/R4/Patient?name=zhangwei&_count=50", headers=doc_b).json()
    assert [e["resource"]["id"] for e in b["entry"]] == [target.id]
    with db.session() as s:
        access.record_consent(s, cli_principal(), target.person_id, "deny", world.org_b)
        s.commit()
    b = client.get("/fhir/R4/Patient?name=zhangwei&_count=50", headers=doc_b).json()
    assert b.get("entry", []) == []
