"""Corrected / amended reports replace the stored version and keep the history (issue 4 gap): through the
service and through FHIR (same sender identifier, status corrected)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from onetrip.audit.models import AuditEvent
from onetrip.kit.principal import cli_principal
from onetrip.outbox.models import OutboxEvent
from onetrip.persons.models import PatientRecord
from onetrip.records import corrections
from onetrip.records import service as records
from onetrip.records.models import DiagnosticReport, Observation, ReportVersion
from onetrip.records.schemas import ObservationIn, ReportIn
from tests.factories import auth, register_patient
from tests.records.helpers import LIS, report, uid

WHEN = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)


def _data(org, rec_id, ident, *, status="final", conclusion="血糖偏高", obs=(("1", 7.9), ("2", 135.0))) -> ReportIn:
    return ReportIn(organization_id=org, patient_record_id=rec_id, identifier_system=LIS, identifier_value=ident,
                    status=status, code="24323-8", code_system="http://loinc.org", display="综合代谢检查",
                    category="lab", section="chemistry", effective_at=WHEN, conclusion=conclusion,
                    recognition_mark="HR",
                    observations=[ObservationIn(identifier_system=LIS + ".obs", identifier_value=f"{ident}-{n}",
                                                code="2345-7" if n != "2" else "718-7", value_quantity=v,
                                                unit="mmol/L") for n, v in obs])


def test_correction_replaces_and_keeps_history(db, world):
    rec_id = register_patient(db, world.org_a, name="孙丽")
    ident = uid()
    op = cli_principal()
    with db.session() as s:
        first = records.store_report(s, op, _data(world.org_a, rec_id, ident))
        person = s.get(PatientRecord, rec_id).person_id
        s.commit()
        report_id = first.id
    fixed = _data(world.org_a, rec_id, ident, status="corrected", conclusion="更正：血糖正常",
                  obs=(("1", 5.4), ("3", 4.1)))
    with db.session() as s:
        again = records.store_report(s, op, fixed)
        s.commit()
        assert again.id == report_id  # same report, updated in place
    with db.session() as s:
        rep = s.get(DiagnosticReport, report_id)
        assert (rep.status, rep.conclusion) == ("corrected", "更正：血糖正常")
        obs = {o.identifier_value: o for o in s.scalars(select(Observation).where(Observation.report_id == report_id))}
        assert obs[f"{ident}-1"].value_quantity == 5.4 and obs[f"{ident}-1"].status == "final"
        assert obs[f"{ident}-3"].value_quantity == 4.1
        assert obs[f"{ident}-2"].status == "cancelled"  # no longer part of the report: off the trend
        assert sorted(p.value for p in records.trend(s, op, person, "2345-7")) == [4.1, 5.4]
        assert records.trend(s, op, person, "718-7") == []
        versions = corrections.history(s, report_id)
        assert [(v.version, v.status) for v in versions] == [(1, "final")]
        old = versions[0].snapshot
        assert old["conclusion"] == "血糖偏高"
        assert sorted(o["value_quantity"] for o in old["observations"]) == [7.9, 135.0]
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.subtype == "update", AuditEvent.entity_what == f"DiagnosticReport/{report_id}")) == 1
        assert s.scalar(select(func.count()).select_from(OutboxEvent).where(
            OutboxEvent.aggregate_id == report_id, OutboxEvent.event_type == "result.corrected")) == 1
        item = next(i for i in records.timeline(s, op, person) if i.id == report_id)
        assert item.status == "corrected"
        s.commit()
    # the same correction again changes nothing; a second one adds version 2
    with db.session() as s:
        records.store_report(s, op, fixed)
        s.commit()
        assert s.scalar(select(func.count()).select_from(ReportVersion).where(ReportVersion.report_id == report_id)) == 1
        records.store_report(s, op, _data(world.org_a, rec_id, ident, status="amended", conclusion="补充说明",
                                          obs=(("1", 5.4), ("3", 4.1))))
        s.commit()
        assert [v.status for v in corrections.history(s, report_id)] == ["final", "corrected"]
        # a plain "final" resend of the old content is a duplicate, not a correction
        records.store_report(s, op, _data(world.org_a, rec_id, ident))
        s.commit()
        assert s.get(DiagnosticReport, report_id).conclusion == "补充说明"


def test_fhir_corrected_report_under_the_same_identifier(client, world, rec, db):
    pid = register_patient(db, world.org_a, name="郑和")
    ident = uid()
    h = {**auth(rec.his), "Content-Type": "application/fhir+json"}
    r1 = client.post("/fhir/R4/DiagnosticReport", json=report(f"Patient/{pid}", ident=ident), headers=h)
    assert r1.status_code == 201, r1.text
    body = report(f"Patient/{pid}", ident=ident, conclusion="更正报告")
    body["status"] = "corrected"
    r2 = client.post("/fhir/R4/DiagnosticReport", json=body, headers=h)
    assert r2.status_code == 200 and r2.json()["id"] == r1.json()["id"]
    got = client.get(f"/fhir/R4/DiagnosticReport/{r1.json()['id']}", headers=auth(rec.doc_a)).json()
    assert got["status"] == "corrected" and got["conclusion"] == "更正报告"
    with db.session() as s:
        assert [v.status for v in corrections.history(s, r1.json()["id"])] == ["final"]
    versions = client.get(f"/api/diagnostic-reports/{r1.json()['id']}/versions", headers=auth(rec.doc_a))
    assert versions.status_code == 200
    assert [(v["version"], v["status"], v["snapshot"]["conclusion"]) for v in versions.json()] == [
        (1, "final", "未见明显异常")]
    assert client.get(f"/api/diagnostic-reports/{r1.json()['id']}/versions",
                      headers=auth(rec.doc_c)).status_code == 403


def test_concurrent_corrections_each_keep_a_version(db, world):
    """Two senders correcting one report at once: both succeed, versions 1 and 2, no lost update."""
    from tests.factories import run_concurrently

    rec_id = register_patient(db, world.org_a, name="钱多")
    ident = uid()
    op = cli_principal()
    with db.session() as s:
        report_id = records.store_report(s, op, _data(world.org_a, rec_id, ident)).id
        s.commit()

    def correct(conclusion):
        with db.session() as s:
            records.store_report(s, op, _data(world.org_a, rec_id, ident, status="corrected", conclusion=conclusion))
            s.commit()

    assert run_concurrently(correct, [("更正一",), ("更正二",)]) == []
    with db.session() as s:
        versions = corrections.history(s, report_id)
        assert [v.version for v in versions] == [1, 2]
        final = s.get(DiagnosticReport, report_id).conclusion
        assert {versions[1].snapshot["conclusion"], final} == {"更正一", "更正二"}
