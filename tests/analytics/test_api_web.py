"""Encounters through FHIR, the indicator API, the cockpit pages, the report forms and the CLI."""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from onetrip.analytics import facts
from onetrip.analytics.indicators import INDICATORS
from onetrip.analytics.models import AnalyticsCatchment, AnalyticsReport, Encounter
from onetrip.cli.main import app as cli_app
from onetrip.outbox.models import OutboxEvent
from tests.analytics import fixture as fx_mod
from tests.factories import auth, signed_in_web, token


@pytest.fixture(scope="module")
def loaded(db, world):
    fx = fx_mod.load_all(db, world)
    with db.session() as s:
        facts.update(s)
        s.commit()
    return fx


@pytest.fixture(scope="module")
def mgr(client, world):
    return auth(token(client, world.users["mgr"]))




# --- FHIR Encounter --------------------------------------------------------------------------------

def _enc(record_id: str, org: str | None = None, cls: str = "AMB", **extra) -> dict:
    body = {"resourceType": "Encounter", "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": cls},
            "subject": {"reference": f"Patient/{record_id}"}, "period": {"start": "2026-11-02"}}
    body["serviceProvider"] = {"reference": f"Organization/{org}"} if org else {"display": "浙大一院"}
    body.update(extra)
    return body


def test_fhir_encounter_create_read_and_event(client, world, loaded, db):
    h = auth(token(client, world.users["doc_b"]))
    r = client.post("/fhir/R4/Encounter", json=_enc(loaded.record_id, world.org_b), headers=h)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["resourceType"] == "Encounter" and body["class"]["code"] == "AMB"
    assert {"url": "urn:onetrip:sd:organization-level", "valueCode": "primary"} in body["extension"]
    got = client.get(f"/fhir/R4/Encounter/{body['id']}", headers=h)
    assert got.status_code == 200 and got.json()["id"] == body["id"]
    with db.session() as s:
        ev = s.scalars(select(OutboxEvent).where(OutboxEvent.event_type == "encounter.recorded",
                                                 OutboxEvent.aggregate_id == body["id"])).one()
    assert set(ev.payload) == {"encounter_id", "organization_id", "organization_level", "department_id",
                               "visit_date", "in_county"}  # CONTRACTS.md
    assert ev.payload["in_county"] is True and ev.payload["visit_date"] == "2026-11-02"


def test_fhir_encounter_errors_are_operation_outcomes(client, world, loaded):
    h = auth(token(client, world.users["doc_b"]))
    bad_class = client.post("/fhir/R4/Encounter", json=_enc(loaded.record_id, world.org_b, cls="XYZ"), headers=h)
    other_org = client.post("/fhir/R4/Encounter", json=_enc(loaded.record_id, world.org_a), headers=h)
    invalid = client.post("/fhir/R4/Encounter", json={"resourceType": "Encounter", "status": 7}, headers=h)
    no_date = client.post("/fhir/R4/Encounter", json={**_enc(loaded.record_id, world.org_b), "period": {}}, headers=h)
    for r, code in ((bad_class, 400), (other_org, 403), (invalid, 400), (no_date, 400)):
        assert r.status_code == code, r.text
        assert r.json()["resourceType"] == "OperationOutcome"
    assert client.get("/fhir/R4/Encounter/nope", headers=h).status_code == 404


def test_outside_visit_is_recorded_without_an_institution(client, world, loaded, db):
    h = auth(token(client, world.users["admin"]))
    ext = [{"url": "urn:onetrip:sd:medical-community", "valueString": world.community_id}]
    r = client.post("/fhir/R4/Encounter", json=_enc(loaded.record_id, None, extension=ext), headers=h)
    assert r.status_code == 201, r.text
    with db.session() as s:
        e = s.get(Encounter, r.json()["id"])
    assert (e.organization_level, e.in_county, e.community_id) == ("outside", False, world.community_id)


# --- API -------------------------------------------------------------------------------------------

def test_indicator_registry(client, mgr):
    r = client.get("/api/indicators", headers=mgr)
    assert r.status_code == 200
    by_id = {i["id"]: i for i in r.json()}
    assert set(by_id) == {i.id for i in INDICATORS}
    assert by_id["recognition_rate"]["target"] == 0.8 and by_id["recognition_rate"]["confidence"] == "U"
    for i in by_id.values():
        assert i["name_zh"] and i["name_en"] and i["rule"] and i["unit"] and "period" in i["dimensions"]


def test_values_by_dimension(client, mgr, world, loaded):
    r = client.get("/api/indicators/primary_visit_rate/values", headers=mgr,
                   params={"period": "month", "from": "2026-10-01", "to": "2026-10-31", "group_by": "community"})
    assert r.status_code == 200, r.text
    assert [(v["group"], v["value"], v["numerator"], v["denominator"]) for v in r.json()["values"]] == [
        (world.community_id, 0.75, 3, 4)]
    r = client.get("/api/indicators/referrals_up/values", headers=mgr,
                   params={"period": "year", "from": "2025-01-01", "to": "2026-12-31", "organization": world.org_b})
    assert [(v["period"], v["value"]) for v in r.json()["values"]] == [("2025", 1), ("2026", 2)]


@pytest.mark.parametrize("params", [{"group_by": "ward"}, {"period": "week"}, {"from": "2026-13-01"},
                                    {"from": "2026-11-01", "to": "2026-10-01"}])
def test_bad_parameters_are_4xx(client, mgr, params):
    r = client.get("/api/indicators/referrals_up/values", headers=mgr, params=params)
    assert 400 <= r.status_code < 500
    assert client.get("/api/indicators/nope/values", headers=mgr).status_code == 404


def test_clinicians_cannot_read_indicators(client, world):
    r = client.get("/api/indicators", headers=auth(token(client, world.users["doc_a"])))
    assert r.status_code == 403 and r.json()["resourceType"] == "OperationOutcome"


def test_cockpit_json(client, mgr, world, loaded):
    r = client.get("/api/cockpit", headers=mgr, params={"month": "2026-10"})
    assert r.status_code == 200, r.text
    d = r.json()
    tiles = {t["id"]: t for t in d["tiles"]}
    assert tiles["primary_visit_rate"]["value"] == 0.75 and tiles["primary_visit_rate"]["change"] == 0.25
    assert tiles["referrals_up"]["change"] == 1.0 and tiles["recognition_rate"]["met"] is False
    assert d["drill"]["level"] == "community" and d["drill"]["rows"][0]["group"] == world.community_id
    assert len(d["trend"]["months"]) == 12 and d["trend"]["months"][-1] == "2026-10"
    drill = client.get("/api/cockpit", headers=mgr, params={"month": "2026-10", "community": world.community_id,
                                                            "drill": "smart_booking_rate"}).json()
    assert drill["drill"]["level"] == "organization"
    assert [(x["group"], x["value"]) for x in drill["drill"]["rows"]] == [(world.org_a, 0.75)]
    dept = client.get("/api/cockpit", headers=mgr, params={"month": "2026-10", "community": world.community_id,
                                                           "organization": world.org_a,
                                                           "drill": "smart_booking_rate"}).json()
    assert dept["drill"]["level"] == "department" and dept["drill"]["rows"][0]["group"] == loaded_dept(client)


def loaded_dept(client) -> str:
    return client.app.state.sessionmaker().scalar(select(Encounter.department_id).where(
        Encounter.department_id.is_not(None)))


# --- web -------------------------------------------------------------------------------------------

def test_cockpit_page_for_managers_only(app, world, loaded):
    c = signed_in_web(app, world.users["mgr"])
    r = c.get("/ui/cockpit?month=2026-10")
    assert r.status_code == 200
    assert "指标驾驶舱" in r.text and "基层就诊率" in r.text and "75.00%" in r.text and "同比" in r.text
    assert "/static/js/echarts.min.js" in r.text and "cdn" not in r.text.lower()
    wall = c.get("/ui/cockpit?month=2026-10&wall=1&refresh=60")
    assert 'class="wide cockpit wall"' in wall.text and 'data-wall="60"' in wall.text
    en = c.get("/ui/cockpit?month=2026-10&lang=en")
    assert "Primary-care visit share" in en.text and "Indicator cockpit" in en.text
    assert c.get("/ui/cockpit/static/cockpit.js").status_code == 200
    assert c.get("/ui/cockpit/static/../web.py").status_code == 404
    denied = signed_in_web(app, world.users["doc_a"]).get("/ui/cockpit")
    assert denied.status_code == 403


# --- reports ---------------------------------------------------------------------------------------

def test_reports_on_demand_idempotent_and_printable(client, mgr, world, db, loaded):
    r = client.post("/api/reports", headers=mgr, params={"kind": "monthly", "period": "2026-10"})
    assert r.status_code == 201, r.text
    made = r.json()["generated"]
    assert len(made) == 6  # district + 2 institutions, xlsx + csv
    again = client.post("/api/reports", headers=mgr, params={"kind": "monthly", "period": "2026-10"})
    assert again.json()["generated"] == []
    xlsx = next(m for m in made if m["scope"] == world.org_b and m["format"] == "xlsx")
    f = client.get(xlsx["url"], headers=mgr)
    assert f.status_code == 200 and "attachment" in f.headers["content-disposition"]
    ws = load_workbook(io.BytesIO(f.content)).active
    assert ws["A1"].value.endswith("2026年10月指标月报表") and "测试分院" in ws["A1"].value
    assert ws.page_setup.orientation == "landscape" and str(ws.page_setup.paperSize) == "9"  # A4
    assert ws.print_area and ws.print_title_rows
    assert ws["B4"].border.left.style == "thin" and ws.column_dimensions["B"].width == 34
    rows = {ws.cell(row=r, column=2).value.split("\n")[0]: r for r in range(4, ws.max_row + 1)
            if ws.cell(row=r, column=2).value and "\n" in str(ws.cell(row=r, column=2).value)}
    assert "上转人次" in rows and "基层就诊率" not in rows  # district-only indicators left out of an institution form
    up = rows["上转人次"]
    assert ws.cell(row=up, column=6).value == 2 and ws.cell(row=up, column=7).value == 1
    csv_row = next(m for m in made if m["scope"] == "district" and m["format"] == "csv")
    text = client.get(csv_row["url"], headers=mgr).content.decode("utf-8")
    assert text.startswith("\ufeff")
    lines = {row[0]: row for row in csv.reader(io.StringIO(text.lstrip("\ufeff"))) if row}
    assert lines["primary_visit_rate"][6] == "0.75"
    archive = client.get("/api/reports", headers=mgr).json()
    assert len(archive) == 6 and "content" not in archive[0]
    assert client.post("/api/reports", headers=mgr, params={"kind": "monthly", "period": "2026-Q4"}).status_code == 400


def test_report_page_button_and_archive(app, world, loaded):
    c = signed_in_web(app, world.users["mgr"])
    page = c.get("/ui/cockpit/reports")
    assert page.status_code == 200 and "历史报表" in page.text
    r = c.post("/ui/cockpit/reports", data={"kind": "quarterly", "period": "2026-Q4"})
    assert r.status_code == 303 and r.headers["location"].endswith("made=6")
    page = c.get(r.headers["location"])
    assert "2026-Q4_district_quarterly.xlsx" in page.text


def test_cli_catchment(cli_env, db, world, loaded):
    r = cli_env.invoke(cli_app, ["analytics", "catchment", world.org_b_code, "--residents", "12000",
                                 "--hypertension", "1500"])
    assert r.exit_code == 0, r.output
    with db.session() as s:
        c = s.get(AnalyticsCatchment, world.org_b)
        assert (c.residents, c.hypertension_estimated, c.diabetes_estimated) == (12000, 1500, None)
        c.residents, c.hypertension_estimated, c.diabetes_estimated = 10, 4, 2  # the fixture's values again
        s.commit()
    bad = cli_env.invoke(cli_app, ["analytics", "catchment", "NOPE", "--residents", "1"])
    assert bad.exit_code == 2 and "NOPE" in bad.output


def test_cli_report_and_schedule(cli_env, db, loaded):
    r = cli_env.invoke(cli_app, ["analytics", "report", "--month", "2026-09"])
    assert r.exit_code == 0, r.output
    again = cli_env.invoke(cli_app, ["analytics", "report", "--month", "2026-09"])
    assert "--replace" in again.output
    bad = cli_env.invoke(cli_app, ["analytics", "report"])
    assert bad.exit_code == 2 and "--month" in bad.output
    s1 = cli_env.invoke(cli_app, ["analytics", "schedule", "--today", "2026-10-03"])
    assert s1.exit_code == 0, s1.output
    assert "6 generated" in s1.output  # 2026-09 exists (above); the 2026-Q3 quarterly forms are new: 3 × 2 files
    s2 = cli_env.invoke(cli_app, ["analytics", "schedule", "--today", "2026-10-03"])
    assert "0 generated" in s2.output
    with db.session() as s:
        periods = set(s.scalars(select(AnalyticsReport.period)))
    assert {"2026-09", "2026-Q3"} <= periods
    assert cli_env.invoke(cli_app, ["analytics", "rebuild"]).exit_code == 0
    st = cli_env.invoke(cli_app, ["analytics", "status"])
    assert st.exit_code == 0 and "outbox_behind" in st.output
    bad_date = cli_env.invoke(cli_app, ["analytics", "schedule", "--today", "soon"])
    assert bad_date.exit_code == 2 and "YYYY-MM-DD" in bad_date.output
