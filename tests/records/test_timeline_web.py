"""The results timeline page: reachable from the patient page, read through the access policy (403 page and an
audited denial for a stranger institution), audited for the reader, with validity and recognition marks, the
ECharts data for repeated values, and English on request."""

from __future__ import annotations

import datetime as dt
import json
import re

from sqlalchemy import select

from onetrip.audit.models import AuditEvent
from onetrip.kit.principal import cli_principal
from onetrip.persons.models import PatientRecord
from onetrip.records import service as records
from onetrip.records.schemas import ImagingStudyIn
from tests.factories import auth, register_patient
from tests.recognition.test_check import _report
from tests.records.conftest import resident_id
from tests.records.helpers import LIS, uid


def test_timeline_page(client, db, world, rec):
    rec_a = register_patient(db, world.org_a, name="冯敏", id_number=resident_id())
    op = cli_principal()
    with db.session() as s:
        for days, v in ((60, 5.1), (20, 6.3), (1, 7.4)):
            records.store_report(s, op, _report(world.org_a, record=rec_a, days=days, obs=(v,)))
        records.ingest_imaging_study(s, op, ImagingStudyIn(
            organization_id=world.org_a, patient_record_id=rec_a, identifier_system=LIS + ".study",
            identifier_value=uid(), modality="US", started_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=2)))
        person = s.get(PatientRecord, rec_a).person_id
        s.commit()
    h = auth(rec.doc_a)
    patient = client.get(f"/ui/patients/{rec_a}", headers=h)
    assert f'href="/ui/persons/{person}/results"' in patient.text

    r = client.get(f"/ui/persons/{person}/results", headers=h)
    assert r.status_code == 200
    assert r.text.count('class="result"') == 4
    assert "<strong>7.4</strong> mmol/L" in r.text  # the values of each lab report
    assert "有效期内（7 天）" in r.text and "已过期（有效期 7 天）" in r.text and "有影像，尚无报告" in r.text
    data = json.loads(re.search(r'<script type="application/json" id="trend-data">(.*?)</script>', r.text, re.S)[1])
    assert [p[1] for p in data[0]["points"]] == [5.1, 6.3, 7.4] and data[0]["code"] == "2345-7"
    assert '<script src="/static/js/echarts.min.js"' in r.text
    assert "<script>" not in r.text  # CSP: no inline script
    with db.session() as s:
        whats = set(s.scalars(select(AuditEvent.entity_what).where(AuditEvent.entity_person_id == person,
                                                                   AuditEvent.subtype == "read")))
    assert f"Person/{person}/timeline" in whats and f"Person/{person}/trend?code=2345-7" in whats

    lab_only = client.get(f"/ui/persons/{person}/results?kind=lab", headers=h)
    assert lab_only.text.count('class="result"') == 3
    us_only = client.get(f"/ui/persons/{person}/results?kind=ultrasound", headers=h)
    assert us_only.text.count('class="result"') == 1 and "trend-data" not in us_only.text
    en = client.get(f"/ui/persons/{person}/results?lang=en", headers=h)
    assert "within window (7 days)" in en.text and "Results across institutions" in en.text

    denied = client.get(f"/ui/persons/{person}/results", headers=auth(rec.doc_c))
    assert denied.status_code == 403 and "trend-data" not in denied.text
    with db.session() as s:
        assert s.scalar(select(AuditEvent.outcome).where(
            AuditEvent.entity_person_id == person, AuditEvent.entity_what == f"Person/{person}/timeline",
            AuditEvent.outcome != "0")) == "4"
