"""Self-check readings: FHIR Observation (BP panel 85354-9 with 8480-6 / 8462-4 components, glucose
2339-0 / 1558-6) stored once as readings while laboratory Observations still reach the records store;
the device endpoint with per-device hashed tokens; out-of-range alerts to the team."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid

from sqlalchemy import func, select

from onetrip.family.models import Alert, Device, Reading
from onetrip.persons.models import PatientRecord, Person
from onetrip.records.models import Observation
from tests.factories import register_patient
from tests.family.conftest import enrolled

FHIR = {"Content-Type": "application/fhir+json"}
LOINC = "http://loinc.org"


def bp(subject: dict, sbp: float, dbp: float, ident: str | None = None) -> dict:
    body = {
        "resourceType": "Observation", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                  "code": "vital-signs"}]}],
        "code": {"coding": [{"system": LOINC, "code": "85354-9"}]}, "subject": subject,
        "effectiveDateTime": (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat(),
        "component": [
            {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
             "valueQuantity": {"value": sbp, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
            {"code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
             "valueQuantity": {"value": dbp, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}]}
    if ident:
        body["identifier"] = [{"system": "urn:kiosk:test", "value": ident}]
    return body


def record_of(db, person_id: str) -> str:
    with db.session() as s:
        return s.scalars(select(PatientRecord.id).where(PatientRecord.person_id == person_id)).first()


def test_fhir_bp_panel_is_a_reading_with_an_alert(client, db, fam, doc_headers):
    pid, _ = enrolled(db, fam)
    ident = uuid.uuid4().hex
    body = bp({"reference": f"Patient/{record_of(db, pid)}"}, 186, 104, ident)
    r = client.post("/fhir/R4/Observation", json=body, headers={**doc_headers, **FHIR})
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["code"]["coding"][0]["code"] == "85354-9"
    assert [c["valueQuantity"]["value"] for c in out["component"]] == [186, 104]
    again = client.post("/fhir/R4/Observation", json=body, headers={**doc_headers, **FHIR})
    assert again.status_code == 200 and again.json()["id"] == out["id"]  # idempotent on the identifier
    assert client.get(f"/fhir/R4/Observation/{out['id']}", headers=doc_headers).json()["id"] == out["id"]
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Reading).where(Reading.person_id == pid)) == 1
        assert s.scalar(select(func.count()).select_from(Observation).where(Observation.person_id == pid)) == 0
        alert = s.scalars(select(Alert).where(Alert.person_id == pid)).one()
        assert alert.team_id == fam.team and alert.codes == ["sbp_high"]
    alerts = client.get(f"/api/family/alerts?team={fam.team}", headers=doc_headers).json()
    assert any(a["person_id"] == pid and "*" in a["name"] for a in alerts)
    assert client.post(f"/api/family/alerts/{alert.id}/acknowledge", headers=doc_headers).status_code == 200
    # a glucose by resident-ID identifier
    with db.session() as s:
        number = s.get(Person, pid).id_number
    g = {"resourceType": "Observation", "status": "final", "code": {"coding": [{"system": LOINC, "code": "1558-6"}]},
         "performer": [{"reference": f"Patient/{record_of(db, pid)}"}],
         "subject": {"identifier": {"system": "urn:onetrip:sid:cn-resident-id", "value": number}},
         "effectiveDateTime": dt.datetime.now(dt.UTC).isoformat(),
         "valueQuantity": {"value": 3.2, "unit": "mmol/L"}}
    r = client.post("/fhir/R4/Observation", json=g, headers={**doc_headers, **FHIR})
    assert r.status_code == 201, r.text
    with db.session() as s:
        assert s.get(Reading, r.json()["id"]).glucose_context == "fasting"
        assert s.scalar(select(func.count()).select_from(Alert).where(Alert.person_id == pid)) == 2


def test_fhir_reading_bad_input_is_4xx(client, db, fam, doc_headers):
    pid, _ = enrolled(db, fam)
    subject = {"reference": f"Patient/{record_of(db, pid)}"}
    one_sided = bp(subject, 140, 90)
    one_sided["component"] = one_sided["component"][:1]
    for body in (bp({"reference": "Patient/nope"}, 120, 80), bp(subject, 999, 80), one_sided,
                 {**bp(subject, 120, 80), "effectiveDateTime": "yesterday"}, bp({}, 120, 80)):
        r = client.post("/fhir/R4/Observation", json=body, headers={**doc_headers, **FHIR})
        assert 400 <= r.status_code < 500, r.text
        assert r.json()["resourceType"] == "OperationOutcome"


def test_is_self_check():
    from onetrip.family.readings import is_self_check

    glucose = {"resourceType": "Observation", "code": {"coding": [{"system": LOINC, "code": "2345-7"}]}}
    assert not is_self_check(glucose)  # a LIS result without a category
    assert is_self_check({**glucose, "device": {"reference": "Device/1"}})
    assert is_self_check({**glucose, "category": [{"coding": [{"code": "vital-signs"}]}]})
    assert not is_self_check({**glucose, "category": [{"coding": [{"code": "laboratory"}]}],
                              "device": {"reference": "Device/1"}})
    assert is_self_check(bp({}, 120, 80)) and not is_self_check({"resourceType": "Patient"})


def test_lab_observations_still_go_to_the_records_store(client, db, world):
    from tests.records.helpers import observation
    from tests.scheduling.conftest import system_headers

    rid = register_patient(db, world.org_a, name="钱进")
    lab = observation(f"Patient/{rid}", value=7.2)
    r = client.post("/fhir/R4/Observation", json=lab, headers={**system_headers(client, world), **FHIR})
    assert r.status_code == 201, r.text
    with db.session() as s:
        assert s.get(Observation, r.json()["id"]) is not None and s.get(Reading, r.json()["id"]) is None


def test_device_endpoint_with_hashed_token(client, db, fam, doc_headers):
    pid, _ = enrolled(db, fam)
    r = client.post("/api/family/devices", headers=doc_headers, json={"kind": "bp", "serial": "OMRON-1", "person_id": pid})
    assert r.status_code == 201, r.text
    dev = r.json()
    with db.session() as s:
        stored = s.get(Device, dev["id"])
        assert stored.token_hash == hashlib.sha256(dev["token"].encode()).hexdigest() and dev["token"] not in str(
            stored.__dict__)
    ok = client.post("/api/devices/readings", headers={"X-Device-Token": dev["token"]},
                     json={"reading_id": "r-1", "sbp": 182, "dbp": 96, "pulse": 70})
    assert ok.status_code == 201 and ok.json()["alerts"] == ["sbp_high"]
    dup = client.post("/api/devices/readings", headers={"X-Device-Token": dev["token"]},
                      json={"reading_id": "r-1", "sbp": 182, "dbp": 96})
    assert dup.json()["id"] == ok.json()["id"] and dup.json()["created"] is False
    assert client.post("/api/devices/readings", headers={"X-Device-Token": "dev_wrong"},
                       json={"sbp": 120, "dbp": 80}).status_code == 401
    assert client.post("/api/devices/readings", json={"sbp": 120, "dbp": 80}).status_code == 401
    assert client.post("/api/devices/readings", headers={"X-Device-Token": dev["token"]},
                       json={"sbp": 120}).status_code == 400
    # a kiosk at the clinic reads for whoever swipes the ID card
    k = client.post("/api/family/devices", headers=doc_headers,
                    json={"kind": "both", "serial": "KIOSK-1", "organization_id": fam.org}).json()
    with db.session() as s:
        number = s.get(Person, pid).id_number
    kr = client.post("/api/devices/readings", headers={"X-Device-Token": k["token"]},
                     json={"id_number": number, "glucose": 6.2, "glucose_context": "fasting"})
    assert kr.status_code == 201 and kr.json()["alerts"] == []
    with db.session() as s:
        assert s.get(Reading, kr.json()["id"]).source == "kiosk"
    summary = client.get(f"/api/family/persons/{pid}/previsit", headers=doc_headers).json()
    assert summary["trend"]["sbp"]["count"] == 1 and summary["alerts"]
