"""Honest figures on the cockpit and the report forms (issue 25 point 6): growth from nothing reads 新增 / new,
every rate has a figure for every month with data (or 无数据 with the reason), the forms and pages cite the
official indicator names rather than internal rule numbers, and report files are filed by year/month/form."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

import pytest
from openpyxl import load_workbook

from onetrip.analytics import facts, formulas, reports, service
from onetrip.analytics.indicators import BY_ID, INDICATORS, basis
from onetrip.cli.main import app as cli_app
from tests.analytics import fixture as fx_mod
from tests.factories import auth, signed_in_web, token

INTERNAL = re.compile(r"RULES §|R\d+\.\d+")
# September 2026, a second month of appointments: 1 precise of 2 live (the cancelled one does not count).
SEPTEMBER = [(dt.date(2026, 9, 14), dt.date(2026, 9, 10), True, "fulfilled"),
             (dt.date(2026, 9, 15), dt.date(2026, 9, 10), False, "booked"),
             (dt.date(2026, 9, 16), dt.date(2026, 9, 10), True, "cancelled")]


@pytest.fixture(scope="module")
def loaded(db, world):
    fx = fx_mod.load_all(db, world)
    with db.session() as s:
        facts.update(s)
        s.commit()
    fx_mod.load_appointments(db, world, fx, rows=SEPTEMBER)  # after a first update: the incremental path
    with db.session() as s:
        facts.update(s)
        s.commit()
    return fx


@pytest.fixture(scope="module")
def mgr(client, world):
    return auth(token(client, world.users["mgr"]))




# --- growth from nothing -----------------------------------------------------------------------------

@pytest.mark.parametrize(("current", "previous", "relative", "expected"), [
    (5, 0, True, (None, "new")),  # counts: from 0 there is no percentage
    (5, None, True, (None, "new")),
    (0, 0, True, (None, "relative")),  # nothing then, nothing now: no change to show
    (3, 2, True, (0.5, "relative")),
    (0.4, None, False, (None, "new")),  # a rate with no figure last year
    (0.4, 0.0, False, (0.4, "points")),  # a rate of 0 % is a figure: +40 pp
    (None, 3, True, (None, "relative")),
])
def test_change_reads_new_when_the_earlier_value_is_zero_or_missing(current, previous, relative, expected):
    assert formulas.change(current, previous, relative=relative) == expected


def test_growth_from_zero_is_new_on_the_cockpit_and_in_the_forms(client, app, mgr, world, loaded):
    # October 2026: one downward referral; October 2025: none.
    tiles = {t["id"]: t for t in client.get("/api/cockpit", headers=mgr, params={"month": "2026-10"}).json()["tiles"]}
    down = tiles["referrals_down"]
    assert (down["value"], down["previous"], down["change"], down["change_kind"]) == (1, 0, None, "new")
    assert tiles["referrals_up"]["change_kind"] == "relative" and tiles["referrals_up"]["change"] == 1.0

    c = signed_in_web(app, world.users["mgr"])
    html = c.get("/ui/cockpit?month=2026-10").text
    tile = re.search(r'data-indicator="referrals_down">(.*?)</article>', html, re.S).group(1)
    assert "同比 新增" in tile and "%" not in tile and "inf" not in tile.lower()
    tile_en = re.search(r'data-indicator="referrals_down">(.*?)</article>',
                        c.get("/ui/cockpit?month=2026-10&lang=en").text, re.S).group(1)
    assert "YoY new" in tile_en

    made = client.post("/api/reports", headers=mgr, params={"kind": "monthly", "period": "2026-10"}).json()
    xlsx = next(m for m in made["generated"] if m["scope"] == "district" and m["format"] == "xlsx")
    ws = load_workbook(io.BytesIO(client.get(xlsx["url"], headers=mgr).content)).active
    row = next(r for r in range(4, ws.max_row + 1) if str(ws.cell(row=r, column=2).value).startswith("下转人次"))
    assert ws.cell(row=row, column=8).value == "新增 new"
    up = next(r for r in range(4, ws.max_row + 1) if str(ws.cell(row=r, column=2).value).startswith("上转人次"))
    assert ws.cell(row=up, column=8).value == "+100.00%"
    csv_file = next(m for m in made["generated"] if m["scope"] == "district" and m["format"] == "csv")
    lines = {r[0]: r for r in csv.reader(io.StringIO(client.get(csv_file["url"], headers=mgr).text.lstrip("\ufeff")))
             if r}
    assert lines["referrals_down"][8] == "新增 new" and lines["referrals_down"][9] == "new"


# --- every month of every rate -------------------------------------------------------------------------

def test_two_months_of_data_give_both_months_values(db, loaded):
    with db.session() as s:
        rows = service.values(s, "smart_booking_rate", period="month", start=dt.date(2026, 9, 1),
                              end=dt.date(2026, 10, 31))
        keys, monthly = service.monthly(s, [BY_ID["smart_booking_rate"], BY_ID["no_show_rate"]],
                                        dt.date(2026, 8, 1), dt.date(2026, 10, 31))
    assert [(r["period"], r["value"]) for r in rows] == [("2026-09", 0.5), ("2026-10", 0.75)]
    assert keys == ["2026-08", "2026-09", "2026-10"]
    smart = {c["period"]: c for c in monthly[0]["cells"]}
    assert smart["2026-09"]["value"] == 0.5 and smart["2026-10"]["value"] == 0.75
    assert smart["2026-08"]["value"] is None and "未取消的预约数" in smart["2026-08"]["no_data"]["zh"]
    noshow = {c["period"]: c["value"] for c in monthly[1]["cells"]}
    assert noshow == {"2026-08": None, "2026-09": 0.0, "2026-10": 0.3333}  # 0 no-shows of 1 done in September


def test_cockpit_shows_every_rate_by_month_or_no_data_with_the_reason(client, app, mgr, world, loaded):
    d = client.get("/api/cockpit", headers=mgr, params={"month": "2026-10"}).json()
    months = d["monthly"]["months"]
    assert len(months) == 12 and months[-2:] == ["2026-09", "2026-10"]
    rows = {r["id"]: r["cells"] for r in d["monthly"]["rows"]}
    assert set(rows) == {i.id for i in INDICATORS if i.unit == "ratio"}  # every rate, not only the trend's four
    assert [c["value"] for c in rows["smart_booking_rate"][-2:]] == [0.5, 0.75]
    for ind_id, cells in rows.items():  # each month: a figure, or no figure with the reason — never a bare gap
        assert all((c["value"] is None) == (c["no_data"] is not None) for c in cells), ind_id
    html = signed_in_web(app, world.users["mgr"]).get("/ui/cockpit?month=2026-10").text
    row = re.search(r'<tr data-indicator="smart_booking_rate">(.*?)</tr>', html, re.S).group(1)
    assert re.search(r'data-period="2026-09"[^>]*>50.00%<', row) and re.search(r'data-period="2026-10"[^>]*>75.00%<', row)
    assert re.search(r'class="no-data muted" data-period="2026-08" title="本期分母为 0：没有未取消的预约数">无数据<', row)


# --- official names, no internal codes ----------------------------------------------------------------

def test_basis_cites_the_official_indicator_names():
    assert basis(BY_ID["primary_visit_rate"])[0] == "紧密型县域医共体监测指标（2024）：基层就诊率"
    for ind in INDICATORS:
        zh, en = basis(ind)
        assert ind.name_zh in zh and ind.name_en in en
        assert not INTERNAL.search(zh + en), ind.id
    assert INTERNAL.search("RULES §8") and INTERNAL.search("R1.7")  # the pattern itself catches what it must


def test_no_form_or_cockpit_page_shows_internal_rule_codes(client, app, mgr, world, loaded):
    made = client.post("/api/reports", headers=mgr, params={"kind": "quarterly", "period": "2026-Q4"}).json()
    assert len(made["generated"]) == 6
    for m in made["generated"]:
        content = client.get(m["url"], headers=mgr).content
        if m["format"] == "csv":
            text = content.decode("utf-8")
        else:
            ws = load_workbook(io.BytesIO(content)).active
            text = "\n".join(str(c.value) for row in ws.iter_rows() for c in row if c.value is not None)
            assert "依据\nBasis" in text
        assert "紧密型县域医共体监测指标（2024）" in text or m["scope"] != "district"
        assert not INTERNAL.search(text), (m["filename"], INTERNAL.search(text).group(0))
    c = signed_in_web(app, world.users["mgr"])
    pages = {}
    for url in ("/ui/cockpit?month=2026-10", "/ui/cockpit?month=2026-10&wall=1",
                f"/ui/cockpit?month=2026-10&community={world.community_id}&drill=smart_booking_rate",
                "/ui/cockpit/reports", "/ui/cockpit?month=2026-10&lang=en"):  # the English switch last (it sticks)
        r = c.get(url)
        assert r.status_code == 200, url
        assert not INTERNAL.search(r.text), (url, INTERNAL.search(r.text).group(0))
        pages[url] = r.text
    assert "依据: 紧密型县域医共体监测指标（2024）：基层就诊率" in pages["/ui/cockpit?month=2026-10"]
    assert "Monitoring indicators of close-knit county medical communities (2024): Primary-care visit share" in \
        pages["/ui/cockpit?month=2026-10&lang=en"]


# --- folders by year / month / form --------------------------------------------------------------------

def test_report_files_are_filed_by_year_month_and_form(client, app, mgr, world, loaded, cli_env, tmp_path):
    client.post("/api/reports", headers=mgr, params={"kind": "monthly", "period": "2026-10"})
    client.post("/api/reports", headers=mgr, params={"kind": "quarterly", "period": "2026-Q4"})
    archive = client.get("/api/reports", headers=mgr).json()
    folders = {(a["period"], a["folder"]) for a in archive}
    assert ("2026-10", "2026/10/monthly") in folders and ("2026-Q4", "2026/Q4/quarterly") in folders
    assert all(a["folder"].startswith(a["period"][:4] + "/") for a in archive)

    page = signed_in_web(app, world.users["mgr"]).get("/ui/cockpit/reports").text
    section = re.search(r'<tbody class="report-folder" data-folder="2026/10/monthly">(.*?)</tbody>', page, re.S).group(1)
    assert "2026-10_district_monthly.xlsx" in section and "quarterly" not in section

    r = cli_env.invoke(cli_app, ["analytics", "report", "--month", "2026-09", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert written and all(w.startswith("2026/09/monthly/") for w in written), written
    assert "2026/09/monthly/2026-09_district_monthly.xlsx" in written
    assert not [p for p in tmp_path.iterdir() if p.is_file()]  # nothing left in one flat folder
    assert {reports.folder(r) for r in _archive(client)} >= {"2026/09/monthly", "2026/10/monthly", "2026/Q4/quarterly"}


def _archive(client):
    with client.app.state.sessionmaker() as s:
        return reports.archive(s)
