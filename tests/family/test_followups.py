"""Registries and follow-ups over the API: enrolment, classification and next due date, the urgent
referral draft (through referral.service.draft_referral), outbox payloads, the pre-visit summary and
check-in, and 4xx for bad input."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from onetrip.family import common
from onetrip.family.followups import service as followups
from onetrip.outbox.models import OutboxEvent
from tests.family.conftest import enrolled, resident


def test_enrol_and_follow_up_with_urgent_referral(client, db, fam, doc_headers):
    pid = resident(db, fam, birth=dt.date(1962, 8, 8))
    assert client.post("/api/family/contracts", headers=doc_headers,
                       json={"person_id": pid, "team_id": fam.team}).status_code == 201
    r = client.post("/api/family/registries", headers=doc_headers,
                    json={"person_id": pid, "programme": "hypertension"})
    assert r.status_code == 201, r.text
    reg = r.json()
    assert reg["team_id"] == fam.team and reg["doctor_id"] == fam.doctor and reg["next_due_date"] == reg["enrolled_on"]
    assert client.post("/api/family/registries", headers=doc_headers,
                       json={"person_id": pid, "programme": "hypertension"}).status_code == 409

    fu = client.post(f"/api/family/registries/{reg['id']}/followups", headers=doc_headers, json={
        "sbp": 185, "dbp": 112, "adherence": "regular", "medication": [{"drug": "氨氯地平片", "dose": "5mg qd"}],
        "lifestyle": {"smoking": "none", "salt": "high"}, "symptoms": ["severe_headache"]})
    assert fu.status_code == 201, fu.text
    f = fu.json()
    assert f["classification"] == "urgent" and f["action"] == "refer_urgent" and not f["controlled"]
    assert f["urgent_reasons"] == ["R3.4:sbp", "R3.4:dbp", "R3.4:symptom:severe_headache"]
    assert dt.date.fromisoformat(f["next_due_date"]) == dt.date.fromisoformat(f["visit_date"]) + dt.timedelta(days=14)
    assert f["referral_id"], "the urgent referral was drafted"
    from onetrip.referral.models import Referral

    with db.session() as s:
        ref = s.get(Referral, f["referral_id"])
        assert ref.status == "draft" and ref.person_id == pid and ref.direction == "up"
        assert ref.from_organization_id == fam.org
        events = {e.event_type: e for e in s.scalars(select(OutboxEvent).where(OutboxEvent.person_id == pid))}
        assert {"registry.enrolled", "followup.recorded", "referral.drafted"} <= set(events)
        payload = events["followup.recorded"].payload
        assert payload == {"followup_id": f["id"], "programme": "hypertension", "organization_id": fam.org,
                           "team_id": fam.team, "doctor_id": fam.doctor, "visit_date": f["visit_date"],
                           "controlled": False, "on_schedule": True}
        assert set(events["registry.enrolled"].payload) == {"programme", "organization_id", "team_id", "doctor_id",
                                                            "enrolled_on"}
    got = client.get(f"/api/family/registries/{reg['id']}", headers=doc_headers).json()
    assert got["last_classification"] == "urgent" and got["next_due_date"] == f["next_due_date"]


def test_followup_bad_input_is_4xx(client, db, fam, doc_headers):
    _, reg = enrolled(db, fam)
    url = f"/api/family/registries/{reg}/followups"
    future = (common.today() + dt.timedelta(days=3)).isoformat()
    for body in ({}, {"sbp": 140}, {"sbp": "high", "dbp": 80}, {"sbp": 400, "dbp": 80}, {"sbp": 140, "dbp": 80,
                 "visit_date": future}, {"sbp": 140, "dbp": 80, "method": "telepathy"},
                 {"sbp": 140, "dbp": 80, "adherence": "sometimes"}, {"sbp": 140, "dbp": 80, "visit_date": "0001-01-01"}):
        r = client.post(url, headers=doc_headers, json=body)
        assert 400 <= r.status_code < 500, (body, r.status_code, r.text)
        assert r.json()["resourceType"] == "OperationOutcome"
    assert client.post("/api/family/registries/nope/followups", headers=doc_headers,
                       json={"sbp": 120, "dbp": 80}).status_code == 404
    assert client.post("/api/family/registries", headers=doc_headers,
                       json={"person_id": "x", "programme": "asthma"}).status_code == 400


def test_two_uncontrolled_in_a_row_draft_a_non_urgent_referral(client, db, fam, doc_headers):
    _, reg = enrolled(db, fam, "diabetes")
    url = f"/api/family/registries/{reg}/followups"
    d1 = (common.today() - dt.timedelta(days=20)).isoformat()
    first = client.post(url, headers=doc_headers, json={"fasting_glucose": 8.4, "visit_date": d1}).json()
    assert first["classification"] == "uncontrolled_first" and first["referral_id"] is None
    second = client.post(url, headers=doc_headers, json={"fasting_glucose": 9.1}).json()
    assert second["classification"] == "uncontrolled_repeat" and second["action"] == "refer"
    assert second["referral_id"] and second["on_schedule"] is False  # due 14 days after the first
    from onetrip.referral.models import Referral

    with db.session() as s:
        assert s.get(Referral, second["referral_id"]).urgent is False


def test_previsit_summary_and_check_in(client, db, fam, doc_headers):
    pid, reg = enrolled(db, fam)
    with db.session() as s:
        from onetrip.family.models import Registry
        from onetrip.persons.models import Person

        followups.record_followup(s, _op(), reg,
                                sbp=150, dbp=92, adherence="intermittent", fasting_glucose=6.1)
        s.commit()
        number = s.get(Person, pid).id_number
        assert s.get(Registry, reg).last_classification == "uncontrolled_first"
    r = client.post("/api/family/checkin", headers=doc_headers, json={"id_number": number})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["person"]["id"] == pid and "*" in body["person"]["id_number"]
    assert body["registries"][0]["classification"] == "uncontrolled_first"
    assert body["adherence"]["medication"] == "intermittent" and body["glucose_tests_this_year"] == 1
    assert body["contract"]["team_id"] == fam.team
    assert client.post("/api/family/checkin", headers=doc_headers, json={"id_number": "123"}).status_code == 400
    assert client.get(f"/api/family/persons/{pid}/previsit", headers=doc_headers).status_code == 200


def _op():
    from onetrip.kit.principal import cli_principal

    return cli_principal()


def test_lab_fasting_glucose_from_the_results_store_counts(client, db, fam, world, doc_headers):
    from sqlalchemy import select as sel

    from onetrip.persons.models import PatientRecord
    from tests.records.helpers import observation
    from tests.scheduling.conftest import system_headers

    pid, reg = enrolled(db, fam, "diabetes")
    with db.session() as s:
        rec = s.scalars(sel(PatientRecord.id).where(PatientRecord.person_id == pid)).first()
    before = client.get(f"/api/family/persons/{pid}/previsit", headers=doc_headers).json()
    assert before["lab_fasting_glucose"] is None
    lab = observation(f"Patient/{rec}", code="14771-0", value=7.8, days=2)
    r = client.post("/fhir/R4/Observation", json=lab,
                    headers={**system_headers(client, world), "Content-Type": "application/fhir+json"})
    assert r.status_code == 201, r.text
    after = client.get(f"/api/family/persons/{pid}/previsit", headers=doc_headers).json()
    assert after["lab_fasting_glucose"]["value"] == 7.8
    assert after["glucose_tests_this_year"] == before["glucose_tests_this_year"] + (
        1 if (common.today() - dt.timedelta(days=2)).year == common.today().year else 0)
