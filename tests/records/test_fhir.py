"""FHIR ingest of results: single and conditional creates, read and search, transaction and batch."""

from __future__ import annotations

from sqlalchemy import func, select

from onetrip.outbox.models import OutboxEvent
from onetrip.persons.models import PatientRecord
from onetrip.records.models import DiagnosticReport, Observation
from tests.factories import auth, register_patient
from tests.records.conftest import resident_id
from tests.records.helpers import LIS, entry, observation, patient, report, uid

FHIR = {"Content-Type": "application/fhir+json"}


def _h(tok: str) -> dict:
    return {**auth(tok), **FHIR}


def test_create_is_idempotent_on_the_senders_identifier(client, world, rec, db):
    pid = register_patient(db, world.org_a, name="赵敏")
    ident = uid()
    body = report(f"Patient/{pid}", ident=ident)
    r1 = client.post("/fhir/R4/DiagnosticReport", json=body, headers=_h(rec.his))
    assert r1.status_code == 201, r1.text
    r2 = client.post("/fhir/R4/DiagnosticReport", json=body, headers=_h(rec.his))
    assert r2.status_code == 200 and r2.json()["id"] == r1.json()["id"]
    r3 = client.post("/fhir/R4/DiagnosticReport", json=body, headers={**_h(rec.his),
                     "If-None-Exist": f"identifier={LIS}|{ident}"})
    assert r3.status_code == 200 and r3.json()["id"] == r1.json()["id"]
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(DiagnosticReport).where(
            DiagnosticReport.identifier_value == ident)) == 1
        assert s.scalar(select(func.count()).select_from(OutboxEvent).where(
            OutboxEvent.aggregate_id == r1.json()["id"], OutboxEvent.event_type == "result.stored")) == 1


def test_read_and_search(client, world, rec, db):
    pid = register_patient(db, world.org_a, name="钱进")
    obs = client.post("/fhir/R4/Observation", json=observation(f"Patient/{pid}", value=7.2),
                      headers=_h(rec.his)).json()
    rep = client.post("/fhir/R4/DiagnosticReport", json=report(f"Patient/{pid}", results=[f"Observation/{obs['id']}"]),
                      headers=_h(rec.his))
    assert rep.status_code == 201, rep.text
    got = client.get(f"/fhir/R4/DiagnosticReport/{rep.json()['id']}", headers=auth(rec.doc_a))
    assert got.status_code == 200, got.text
    got = got.json()
    assert got["result"] == [{"reference": f"Observation/{obs['id']}"}]
    assert got["subject"] == {"reference": f"Patient/{pid}"}
    for query, n in ((f"patient={pid}", 1), (f"patient={pid}&category=lab", 1), (f"patient={pid}&category=CH", 1),
                     (f"patient={pid}&category=imaging", 0), (f"patient={pid}&code=http://loinc.org|24323-8", 1),
                     (f"patient={pid}&date=ge2000-01-01", 1), (f"patient={pid}&date=lt2000-01-01", 0)):
        b = client.get(f"/fhir/R4/DiagnosticReport?{query}", headers=auth(rec.doc_a)).json()
        assert len(b["entry"]) == n, query
    b = client.get(f"/fhir/R4/Observation?patient={pid}&code=GLU&category=laboratory", headers=auth(rec.doc_a)).json()
    assert [e["resource"]["valueQuantity"]["value"] for e in b["entry"]] == [7.2]
    assert client.get(f"/fhir/R4/DiagnosticReport?patient={pid}&bogus=1", headers=auth(rec.doc_a)).status_code == 400
    assert client.get(f"/fhir/R4/DiagnosticReport/{rep.json()['id']}", headers=auth(rec.doc_c)).status_code == 403
    assert client.get("/fhir/R4/DiagnosticReport/nope", headers=auth(rec.doc_a)).status_code == 404


def test_invalid_resource_is_a_bilingual_400(client, world, rec, db):
    pid = register_patient(db, world.org_a)
    bad = report(f"Patient/{pid}")
    bad["status"] = 12
    r = client.post("/fhir/R4/DiagnosticReport", json=bad, headers=_h(rec.his))
    assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome"
    assert " / " in r.json()["issue"][0]["details"]["text"]
    no_id = report(f"Patient/{pid}")
    del no_id["identifier"]
    assert client.post("/fhir/R4/DiagnosticReport", json=no_id, headers=_h(rec.his)).status_code == 400


def test_chinese_conclusion_round_trips_without_gbk(client, world, rec, db):
    # 𠮷 (U+20BB7) is outside GBK: a GBK step anywhere on the path would lose it.
    text = "肝胆胰脾未见明显异常；𠮷 字测试；建议三个月后复查。"
    pid = register_patient(db, world.org_a, name="孙𠮷")
    r = client.post("/fhir/R4/DiagnosticReport", json=report(f"Patient/{pid}", category="RUS", conclusion=text),
                    headers=_h(rec.his))
    assert r.status_code == 201, r.text
    got = client.get(f"/fhir/R4/DiagnosticReport/{r.json()['id']}", headers=auth(rec.doc_a))
    assert got.json()["conclusion"] == text
    with db.session() as s:
        assert s.get(DiagnosticReport, r.json()["id"]).conclusion == text


def _transaction(world, *, bad: bool, kind="transaction") -> tuple[dict, str]:
    id_number = resident_id()
    p = entry(patient(world.org_a, world.org_a_code, id_number),
              if_none_exist=f"identifier=urn:onetrip:sid:cn-resident-id|{id_number}")
    o = entry(observation(p["fullUrl"]))
    d = entry(report(p["fullUrl"], results=[o["fullUrl"]]))
    if bad:  # valid FHIR, refused by us; processed last, after the patient and the observation were written
        del d["resource"]["identifier"]
    return {"resourceType": "Bundle", "type": kind, "entry": [d, o, p]}, id_number


def test_transaction_stores_everything_with_urn_references(client, world, rec, db):
    body, id_number = _transaction(world, bad=False)
    r = client.post("/fhir/R4", json=body, headers=_h(rec.his))
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["type"] == "transaction-response"
    assert [e["response"]["status"] for e in out["entry"]] == ["201 Created"] * 3
    rep, obs, pat = (e["resource"] for e in out["entry"])
    assert rep["result"] == [{"reference": f"Observation/{obs['id']}"}]
    assert rep["subject"] == obs["subject"] == {"reference": f"Patient/{pat['id']}"}
    again = client.post("/fhir/R4", json=body, headers=_h(rec.his)).json()  # a re-send finds everything
    assert [e["response"]["status"] for e in again["entry"]] == ["200 OK"] * 3
    assert [e["resource"]["id"] for e in again["entry"]] == [rep["id"], obs["id"], pat["id"]]


def test_transaction_rolls_back_on_a_bad_entry(client, world, rec, db):
    body, id_number = _transaction(world, bad=True)
    r = client.post("/fhir/R4", json=body, headers=_h(rec.his))
    assert r.status_code == 400
    assert "entry 0" in r.json()["issue"][0]["details"]["text"]
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(PatientRecord).where(
            PatientRecord.id_number == id_number)) == 0
        assert s.scalar(select(func.count()).select_from(Observation).where(
            Observation.identifier_value == body["entry"][1]["resource"]["identifier"][0]["value"])) == 0


def test_batch_reports_each_entry(client, world, rec, db):
    pid = register_patient(db, world.org_a)
    good = entry(observation(f"Patient/{pid}", value=4.4))
    bad = entry(observation("Patient/does-not-exist"))  # valid FHIR, unknown patient
    unsupported = {"resource": {"resourceType": "Medication"}, "request": {"method": "POST", "url": "Medication"}}
    r = client.post("/fhir/R4", json={"resourceType": "Bundle", "type": "batch", "entry": [good, bad, unsupported]},
                    headers=_h(rec.his))
    assert r.status_code == 200, r.text
    statuses = [e["response"]["status"] for e in r.json()["entry"]]
    assert statuses[0] == "201 Created" and statuses[1] == "400" and statuses[2] == "400"
    assert r.json()["entry"][1]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Observation).where(
            Observation.identifier_value == good["resource"]["identifier"][0]["value"])) == 1


def test_other_bundle_types_and_write_scope_are_refused(client, world, rec, db):
    r = client.post("/fhir/R4", json={"resourceType": "Bundle", "type": "collection"}, headers=_h(rec.his))
    assert r.status_code == 400
    pid = register_patient(db, world.org_a)
    # a clinician at B may not send results as institution A
    body = report(f"Patient/{pid}", org=world.org_a)
    assert client.post("/fhir/R4/DiagnosticReport", json=body, headers=_h(rec.doc_b)).status_code == 403


def test_service_request_and_imaging_study(client, world, rec, db):
    pid = register_patient(db, world.org_a, name="吴刚")
    sr = {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
          "identifier": [{"system": "urn:oid:2.16.156.99.1.his.order", "value": uid()}],
          "code": {"coding": [{"system": "http://loinc.org", "code": "24627-2"}], "text": "胸部CT"},
          "subject": {"reference": f"Patient/{pid}"}, "authoredOn": "2026-11-20T09:30:00+08:00"}
    r = client.post("/fhir/R4/ServiceRequest", json=sr, headers=_h(rec.his))
    assert r.status_code == 201, r.text
    study = {"resourceType": "ImagingStudy", "status": "available",
             "identifier": [{"system": "urn:dicom:uid", "value": "urn:oid:1.2.840." + uid()},
                            {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                                  "code": "ACSN"}]}, "value": "ACC" + uid()}],
             "modality": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "CT"}],
             "subject": {"reference": f"Patient/{pid}"}, "started": "2026-11-20T10:05:00+08:00",
             "basedOn": [{"reference": f"ServiceRequest/{r.json()['id']}"}],
             "numberOfSeries": 2, "numberOfInstances": 180}
    s = client.post("/fhir/R4/ImagingStudy", json=study, headers=_h(rec.his))
    assert s.status_code == 201, s.text
    got = client.get(f"/fhir/R4/ImagingStudy/{s.json()['id']}", headers=auth(rec.doc_a)).json()
    assert got["numberOfInstances"] == 180 and got["modality"][0]["code"] == "CT"
    for url, n in ((f"/fhir/R4/ImagingStudy?patient={pid}&modality=CT&date=2026-11-20", 1),
                   (f"/fhir/R4/ImagingStudy?patient={pid}&modality=MR", 0),
                   (f"/fhir/R4/ServiceRequest?patient={pid}&code=24627-2&authored=2026-11", 1),
                   (f"/fhir/R4/ServiceRequest?patient={pid}&authored=lt2026-11-20", 0)):
        assert len(client.get(url, headers=auth(rec.doc_a)).json()["entry"]) == n, url
    with db.session() as sess:
        from onetrip.records.models import ImagingStudy
        assert sess.get(ImagingStudy, s.json()["id"]).accession.startswith("ACC")
