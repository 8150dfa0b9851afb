"""The cross-institution timeline and trends: access policy, break-the-glass, validity windows."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from onetrip.audit.models import AuditEvent
from onetrip.kit.errors import BadRequest
from onetrip.kit.principal import cli_principal
from onetrip.persons.models import PatientRecord
from onetrip.records import service
from onetrip.records.schemas import ImagingStudyIn, ObservationIn, ReportIn
from tests.factories import auth, register_patient
from tests.records.conftest import resident_id
from tests.records.helpers import LIS, uid

NOW = dt.datetime.now(dt.UTC)


def _report(org, *, mrn=None, record=None, section="chemistry", category="lab", days=1.0, code="24323-8",
            mark="HR", obs=(), ident=None) -> ReportIn:
    when = NOW - dt.timedelta(days=days)
    return ReportIn(organization_id=org, mrn=mrn, patient_record_id=record, identifier_system=LIS,
                    identifier_value=ident or uid(), category=category, section=section, code_system="http://loinc.org",
                    code=code, display="报告", effective_at=when, issued=when, recognition_mark=mark,
                    conclusion="正常",
                    observations=[ObservationIn(identifier_system=LIS + ".obs", identifier_value=uid(), code="2345-7",
                                                code_local="GLU", value_quantity=v, unit="mmol/L") for v in obs])


@pytest.fixture(scope="module")
def person(db, world):
    """One resident registered at A and at B (same resident ID → one person), with results at both."""
    id_number = resident_id()
    rec_a = register_patient(db, world.org_a, name="李华", id_number=id_number)
    mrn_b = "B" + uid()
    register_patient(db, world.org_b, name="李华", id_number=id_number, mrn=mrn_b)
    op = cli_principal()
    with db.session() as s:
        person_id = s.get(PatientRecord, rec_a).person_id
        service.store_report(s, op, _report(world.org_a, record=rec_a, section="chemistry", days=10, obs=[5.1]))
        service.store_report(s, op, _report(world.org_b, mrn=mrn_b, section="chemistry", days=2, obs=[6.3],
                                            mark="浙HR"))
        service.store_report(s, op, _report(world.org_b, mrn=mrn_b, section="haematology", days=2, code="58410-2",
                                            mark=None))
        service.store_report(s, op, _report(world.org_a, record=rec_a, category="ultrasound", section="US",
                                            days=20, code="US-ABD"))
        service.ingest_imaging_study(s, op, ImagingStudyIn(
            organization_id=world.org_b, mrn=mrn_b, identifier_system="urn:dicom:uid", identifier_value=uid(),
            modality="CT", series_count=3, instance_count=240, started_at=NOW - dt.timedelta(days=5),
            accession="CT" + uid()))
        s.commit()
    return person_id


def test_timeline_across_two_institutions_with_windows(client, world, rec, person):
    r = client.get(f"/api/persons/{person}/timeline", headers=auth(rec.doc_a))
    assert r.status_code == 200, r.text
    items = r.json()
    assert [i["effective_at"] for i in items] == sorted((i["effective_at"] for i in items), reverse=True)
    assert {i["organization_id"] for i in items} == {world.org_a, world.org_b}
    by = {(i["resource_type"], i["section"], i["organization_id"] == world.org_a): i for i in items}
    chem_b = by[("DiagnosticReport", "chemistry", False)]
    assert chem_b["within_validity"] is True and chem_b["validity_days"] == 7 and chem_b["recognition_mark"] == "浙HR"
    assert chem_b["has_recognition_mark"] is True and chem_b["organization_name"].startswith("测试分院")
    assert chem_b["observation_count"] == 1
    assert by[("DiagnosticReport", "chemistry", True)]["within_validity"] is False  # 10 days > 7
    assert by[("DiagnosticReport", "haematology", False)]["within_validity"] is True  # 2 days ≤ 3
    assert by[("DiagnosticReport", "US", True)]["within_validity"] is False  # 20 days > 14
    ct = by[("ImagingStudy", "CT", False)]
    assert ct["within_validity"] is True and ct["validity_days"] == 30 and ct["category"] == "imaging"
    only_lab = client.get(f"/api/persons/{person}/timeline?kind=lab", headers=auth(rec.doc_a)).json()
    assert {i["category"] for i in only_lab} == {"lab"} and len(only_lab) == 3
    since = (NOW - dt.timedelta(days=3)).isoformat()
    recent = client.get(f"/api/persons/{person}/timeline", params={"since": since}, headers=auth(rec.doc_a)).json()
    assert len(recent) == 2


def test_stranger_institution_is_denied_until_break_the_glass(client, db, rec, person):
    r = client.get(f"/api/persons/{person}/timeline", headers=auth(rec.doc_c))
    assert r.status_code == 403 and " / " in r.json()["issue"][0]["details"]["text"]
    with db.session() as s:  # the denial is audited (and committed)
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.entity_person_id == person, AuditEvent.outcome != "0")) >= 1
    bg = client.post("/api/break-glass", json={"person_id": person, "reason_code": "ETREAT",
                                               "reason_text": "急诊胸痛，需查看既往检查"}, headers=auth(rec.doc_c))
    assert bg.status_code == 201, bg.text
    r = client.get(f"/api/persons/{person}/timeline", headers=auth(rec.doc_c))
    assert r.status_code == 200 and len(r.json()) == 5
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.entity_person_id == person, AuditEvent.purpose_of_use == "ETREAT",
            AuditEvent.entity_what == f"Person/{person}/timeline")) == 1


def test_trend_of_a_repeated_lab_value(client, world, rec, person):
    r = client.get(f"/api/persons/{person}/trend", params={"code": "2345-7"}, headers=auth(rec.doc_a))
    assert r.status_code == 200, r.text
    assert [p["value"] for p in r.json()] == [5.1, 6.3]  # oldest first, across A and B
    assert [p["value"] for p in client.get(f"/api/persons/{person}/trend", params={"code": "GLU"},
                                           headers=auth(rec.doc_a)).json()] == [5.1, 6.3]
    assert client.get(f"/api/persons/{person}/trend", headers=auth(rec.doc_a)).status_code in (400, 422)
    assert client.get("/api/persons/nobody/timeline", headers=auth(rec.doc_a)).status_code == 404


def test_store_report_is_idempotent_and_resolves_by_mrn(db, world):
    op = cli_principal()
    mrn = "A" + uid()
    register_patient(db, world.org_a, name="周一", mrn=mrn)
    ident = uid()
    with db.session() as s:
        first = service.store_report(s, op, _report(world.org_a, mrn=mrn, ident=ident, obs=[1.0, 2.0]))
        again = service.store_report(s, op, _report(world.org_a, mrn=mrn, ident=ident, obs=[9.0]))
        assert again.id == first.id
        creates = s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.entity_what == f"DiagnosticReport/{first.id}", AuditEvent.subtype == "create"))
        assert creates == 1
        with pytest.raises(BadRequest):  # the MRN is looked up at the issuing institution only
            service.store_report(s, op, _report(world.org_b, mrn=mrn))
        s.rollback()
