"""Worklists (due, overdue, lost to follow-up, alerts) per team and doctor; CSV/xlsx export with masked
identifiers; long prescriptions with proxy collection and delivery orders."""

from __future__ import annotations

import csv
import datetime as dt
import io

from sqlalchemy import select

from onetrip.family import common
from onetrip.family.followups import service as followups
from onetrip.family.models import LongPrescription
from onetrip.kit.principal import cli_principal
from onetrip.persons.models import Person
from tests.family.conftest import doctor_principal, enrolled, resident_id


def back(days: int) -> dt.date:
    return common.today() - dt.timedelta(days=days)


def test_worklist_buckets_order_and_export(client, db, fam, doc_headers):
    # Fresh team so the counts are ours alone.
    from tests.family.conftest import build_fam

    f2 = build_fam(db, type("W", (), {"org_a": fam.lead, "org_b": fam.org})())
    lost_pid, lost = enrolled(db, f2, enrolled_on=back(300), sign=False)
    overdue_pid, overdue = enrolled(db, f2, enrolled_on=back(300), sign=False)
    due_pid, due = enrolled(db, f2, enrolled_on=back(300), sign=False)
    _, fine = enrolled(db, f2, enrolled_on=back(300), sign=False)
    with db.session() as s:
        op = cli_principal()
        for reg, visit in ((lost, back(200)), (overdue, back(120)), (due, back(80)), (fine, back(10))):
            followups.record_followup(s, op, reg, visit_date=visit, sbp=130, dbp=80)  # controlled → +90 days
        s.commit()
    # lost: due 110 days ago (> 90); overdue: due 30 days ago; due: in 10 days; fine: in 80 days
    r = client.get(f"/api/family/worklist?team={f2.team}", headers=doc_headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [i["registry_id"] for i in body["items"]] == [lost, overdue, due]
    assert [i["bucket"] for i in body["items"]] == ["lost", "overdue", "due"]
    assert body["counts"] == {"managed": 4, "lost": 1, "overdue": 1, "due": 1, "controlled": 4}
    assert all("*" in i["id_number"] and "*" in i["name"] for i in body["items"])
    only = client.get(f"/api/family/worklist?team={f2.team}&only=overdue", headers=doc_headers).json()
    assert [i["registry_id"] for i in only["items"]] == [lost, overdue]
    lost_only = client.get(f"/api/family/worklist?team={f2.team}&only=lost", headers=doc_headers).json()
    assert [i["registry_id"] for i in lost_only["items"]] == [lost]
    by_doc = client.get(f"/api/family/worklist?doctor={f2.doctor}&organization={f2.org}", headers=doc_headers).json()
    assert len(by_doc["items"]) == 3
    assert client.get(f"/api/family/worklist?team={f2.team}&only=soon", headers=doc_headers).status_code == 400

    exp = client.get(f"/api/family/worklist.csv?team={f2.team}&only=overdue", headers=doc_headers)
    assert exp.status_code == 200 and exp.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(exp.content.decode("utf-8-sig"))))
    assert len(rows) == 3 and rows[0][0].startswith("姓名")
    with db.session() as s:
        p = s.get(Person, lost_pid)
        full = [p.id_number, p.phone or "NONE", p.name]
    text = exp.content.decode("utf-8-sig")
    assert not any(v in text for v in full if v and len(v) > 1)
    x = client.get(f"/api/family/worklist.xlsx?team={f2.team}", headers=doc_headers)
    assert x.status_code == 200 and x.content[:2] == b"PK"
    from openpyxl import load_workbook

    ws = load_workbook(io.BytesIO(x.content)).active
    assert ws.max_row == 4 and "*" in str(ws.cell(row=2, column=2).value)
    assert client.get(f"/api/family/worklist.pdf?team={f2.team}", headers=doc_headers).status_code == 400


def test_worklist_of_another_institution_is_refused(client, db, fam, world):
    from tests.factories import auth, token

    other = auth(token(client, world.users["doc_a"]))  # a clinician at the lead hospital
    assert client.get(f"/api/family/worklist?team={fam.team}", headers=other).status_code == 403


def test_long_prescription_proxy_collection_and_delivery(client, db, fam, doc_headers):
    pid, reg = enrolled(db, fam)
    with db.session() as s:
        for days in (60, 30):
            followups.record_followup(s, doctor_principal(fam), reg, visit_date=back(days), sbp=126, dbp=76,
                                    adherence="regular")
        s.commit()
        number = s.get(Person, pid).id_number
    items = [{"drug": "氨氯地平片", "drug_class": "antihypertensive", "dose": "5mg qd"}]
    r = client.post("/api/family/prescriptions", headers=doc_headers,
                    json={"person_id": pid, "items": items, "weeks": 12})
    assert r.status_code == 422 and "R4.2" in r.text  # no assessment, no confirmation
    bad = client.post("/api/family/prescriptions", headers=doc_headers, json={
        "person_id": pid, "items": [{"drug": "吗啡片", "drug_class": "narcotic"}], "weeks": 4})
    assert bad.status_code == 422 and "R4.3" in bad.text
    assert client.post("/api/family/prescriptions", headers=doc_headers,
                       json={"person_id": pid, "items": items, "weeks": 0}).status_code == 400
    ok = client.post("/api/family/prescriptions", headers=doc_headers, json={
        "person_id": pid, "items": items, "weeks": 12, "assessment": "血压控制稳定，依从性好",
        "patient_confirmed": True})
    assert ok.status_code == 201, ok.text
    rx = ok.json()
    proxy_id = resident_id(dt.date(1985, 5, 5), female=True)
    c = client.post(f"/api/family/prescriptions/{rx['id']}/collect", headers=doc_headers, json={
        "by_proxy": True, "patient_id_number": number, "collector_name": "王芳"})
    assert c.status_code == 400  # the proxy's ID is required (R4.4)
    c = client.post(f"/api/family/prescriptions/{rx['id']}/collect", headers=doc_headers, json={
        "by_proxy": True, "patient_id_number": number, "collector_name": "王芳", "collector_id_number": proxy_id})
    assert c.status_code == 200, c.text
    out = c.json()
    assert out["status"] == "collected" and out["collector_id_number"] != proxy_id and "*" in out["collector_id_number"]
    assert "*" in out["patient_id_number"]
    with db.session() as s:
        stored = s.get(LongPrescription, rx["id"])
        assert stored.collector_id_number == proxy_id and stored.patient_id_number == number  # both recorded
    # a second one goes home
    rx2 = client.post("/api/family/prescriptions", headers=doc_headers, json={
        "person_id": pid, "items": items, "weeks": 4}).json()
    d = client.post(f"/api/family/prescriptions/{rx2['id']}/delivery", headers=doc_headers,
                    json={"address": "浙江省诸暨市暨阳街道1号"})
    assert d.status_code == 201 and d.json()["status"] == "packed"
    did = d.json()["id"]
    assert client.post(f"/api/family/deliveries/{did}/status", headers=doc_headers,
                       json={"status": "delivered"}).status_code == 409  # no skipping
    assert client.post(f"/api/family/deliveries/{did}/status", headers=doc_headers,
                       json={"status": "sent", "tracking_no": "SF123"}).json()["status"] == "sent"
    assert client.post(f"/api/family/deliveries/{did}/status", headers=doc_headers,
                       json={"status": "delivered"}).json()["status"] == "delivered"
    with db.session() as s:
        assert s.scalars(select(LongPrescription.status).where(LongPrescription.id == rx2["id"])).one() == "delivered"
