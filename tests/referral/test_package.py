"""The referral package (R2.3): assembled from the referral and the shared record, rendered as a FHIR
Bundle validated with fhir.resources, and as a printable letter with identifiers masked."""

from __future__ import annotations

import datetime as dt
import uuid

from onetrip.kit.principal import cli_principal
from onetrip.persons.models import PatientRecord
from onetrip.records import service as records
from onetrip.records.schemas import ObservationIn, ReportIn
from onetrip.referral import package, service
from tests.referral.conftest import branch_patient, lead_patient

LIS = "urn:onetrip:test:lis"


def _report(db, org, record_id, days, conclusion):
    when = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    with db.session() as s:
        records.store_report(s, cli_principal(), ReportIn(
            organization_id=org, patient_record_id=record_id, identifier_system=LIS, identifier_value=uuid.uuid4().hex,
            category="lab", section="chemistry", code_system="http://loinc.org", code="24323-8", display="肝功能",
            effective_at=when, issued=when, conclusion=conclusion,
            observations=[ObservationIn(identifier_system=LIS + ".obs", identifier_value=uuid.uuid4().hex,
                                        code="1742-6", code_local="ALT", value_quantity=88, unit="U/L")]))
        s.commit()


def _types(bundle) -> list[str]:
    return [e["resource"]["resourceType"] for e in bundle["entry"]]


def test_upward_package_before_and_after_acceptance(db, world, doc_a, doc_b):
    person_id, rec_b = branch_patient(db, world, name="孙丽华")
    _report(db, world.org_b, rec_b, 5, "ALT 升高")
    _report(db, world.org_b, rec_b, 400, "一年多以前")  # outside referral.results_days (180)
    with db.session() as s:
        r = service.draft_referral(
            s, doc_b, person_id=person_id, direction="up", to_organization_id=world.org_a, reason="肝功能异常待查",
            criteria_codes=["U2", "U5"], source="web", diagnoses=[{"code": "K74.600"}, {"code": "I10.x00"}],
            history_summary="乏力两月", treatment_summary="保肝治疗两周无好转",
            medications=[{"name": "苯磺酸氨氯地平片", "dose": "5 mg qd"}])
        service.submit(s, doc_b, r.id)
        s.commit()
        pkg = package.assemble(s, doc_a, r)
        s.commit()
        assert pkg.results == [] and pkg.results_note  # not yet accepted: shared results refused
        assert pkg.patient["name"] == "孙丽华" and [c["code"] for c in pkg.criteria] == ["U2", "U5"]
        b = package.to_bundle(s, pkg)
        assert _types(b) == ["Patient", "ServiceRequest", "Task", "Condition", "Condition", "MedicationStatement"]
        sr = b["entry"][1]["resource"]
        assert sr["category"][0]["coding"][0]["code"] == "3457005"
        assert sr["status"] == "active" and b["entry"][2]["resource"]["status"] == "requested"
        masked = package.masked_patient(pkg, ["id_number", "phone"])
        assert "*" in masked["id_number"] and masked["phone"].endswith("138****5678")

        service.accept(s, doc_a, r.id)
        s.commit()
        pkg = package.assemble(s, doc_a, r)
        assert [i.conclusion for i in pkg.results] == ["ALT 升高"]  # recent only
        b = package.to_bundle(s, pkg, "http://x")
        assert "DiagnosticReport" in _types(b) and "Observation" in _types(b)
        assert b["entry"][2]["resource"]["status"] == "accepted"
        assert all(e["fullUrl"].startswith("http://x/fhir/R4/") for e in b["entry"])


def test_downward_package_carries_discharge_summary_medication_and_rehab_plan(db, world, doc_a):
    person_id, rec_a = lead_patient(db, world)
    with db.session() as s:
        r = service.draft_referral(
            s, doc_a, person_id=person_id, direction="down", to_organization_id=world.org_b,
            reason="脑梗死恢复期，回社区康复", criteria_codes=["D1", "D4"], source="web",
            diagnoses=[{"code": "I63.900"}], discharge_summary="住院14天，左侧肢体肌力4级",
            rehab_plan="每日肢体功能训练；两周后复查", medications=[{"name": "阿司匹林肠溶片", "dose": "100 mg qd"}])
        pkg = package.assemble(s, doc_a, r)
        b = package.to_bundle(s, pkg)
        types = _types(b)
        assert {"DocumentReference", "CarePlan", "MedicationStatement", "Condition"} <= set(types)
        doc = next(e["resource"] for e in b["entry"] if e["resource"]["resourceType"] == "DocumentReference")
        import base64

        assert base64.b64decode(doc["content"][0]["attachment"]["data"]).decode() == "住院14天，左侧肢体肌力4级"
        assert s.get(PatientRecord, rec_a).id == pkg.record.id


def test_unknown_diagnosis_code_is_refused(db, world, doc_b):
    import pytest

    from onetrip.kit.errors import BadRequest

    person_id, _ = branch_patient(db, world)
    with db.session() as s, pytest.raises(BadRequest):
        service.draft_referral(s, doc_b, person_id=person_id, direction="up", to_organization_id=world.org_a,
                               reason="x", criteria_codes=["U1"], source="web", diagnoses=[{"code": "XYZ.999"}])
