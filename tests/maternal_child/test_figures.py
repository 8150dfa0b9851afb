"""Maternal and child figures in the cockpit (issue 21 point 6), on SQLite and PostgreSQL: a hand-made institution
with seven pregnancies, six children and a 两癌 campaign, whose numerators and denominators are worked out by hand
below; the pure functions, the interface (one query per figure family), the API, the cockpit page and the report
form (xlsx and csv) all give those figures; a clinician is refused."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import json
from pathlib import Path

import pytest
from openpyxl import load_workbook

from onetrip.maternal_child import figures as fig
from onetrip.maternal_child import interface
from onetrip.maternal_child.models import ChildCheck, Pregnancy, PregnancyVisit, Screening, ScreeningCampaign
from onetrip.persons.models import PatientRecord
from onetrip.registry.models import Organization
from tests.factories import auth, register_patient, signed_in_web, token, with_statements

D = dt.date.fromisoformat
SEED = Path(__file__).parents[2] / "src/onetrip/db/seeds/rules_maternal_child.json"
API = "/api/maternal-child-figures"
_n = itertools.count(1)

# (lmp, booked_on, delivery, discharge, outcome, antenatal checks incl. booking, postpartum visit); edd = lmp + 280,
# so the gestational age at booking is booked_on − lmp.
PREGNANCIES = [
    ("2025-01-01", "2025-03-01", "2025-10-05", "2025-10-08", "live_birth", 5, "2025-10-12"),  # P1 59 d; ≥5; pp 4 d
    ("2025-01-01", "2025-04-15", "2025-10-01", "2025-10-03", "live_birth", 4, "2025-10-12"),  # P2 104 d; 4; pp 9 d
    ("2024-12-01", "2025-02-20", None, None, None, 1, None),                                   # P3 81 d, not delivered
    ("2024-03-01", "2024-05-01", "2025-01-10", "2025-01-12", "stillbirth", 6, None),          # P4 booked 2024; no pp
    ("2025-01-20", "2025-03-10", "2025-04-01", "2025-04-01", "miscarriage", 1, None),         # P5 49 d; not a delivery
    ("2025-05-01", "2025-07-31", None, None, None, 1, None),                                   # P6 exactly 91 d: late
    ("2025-04-01", "2025-05-01", "2026-01-05", "2026-01-07", "live_birth", 5, "2026-01-08"),  # P7 delivered in 2026
]
# (birth, [(check key, date)])
CHILDREN = [
    ("2025-01-15", [("newborn", "2025-01-16"), ("m1", "2025-02-12"), ("m3", "2025-04-15"), ("m6", "2025-07-16"),
                    ("m8", "2025-09-15")]),                                            # C1 < 3: all due done
    ("2024-06-10", [("newborn", "2024-06-11"), ("m8", "2025-02-11"), ("m12", "2025-06-12")]),  # C2 < 3: m18 missing
    ("2021-03-01", [("y4", "2025-03-20")]),                                              # C3 4 y: y4 done
    ("2019-05-01", [("y5", "2024-05-03")]),                                              # C4 6 y: y6 (2025-05) missing
    ("2018-02-01", [("y6", "2024-02-03")]),                                              # C5 7 y by 2025: out
    ("2025-11-20", [("newborn", "2026-01-05")]),                                         # C6 no check by 2025-12-31
]
# Worked out by hand: key → (numerator, denominator) per period.
EXPECTED = {
    "2025": {"early_booking": (4, 6), "antenatal_checks": (2, 3), "postpartum_visits": (1, 3),
             "child_system_management": (1, 2), "child_health_management": (2, 4),
             "two_cancers_screening": (2, 3), "two_cancers_followup": (1, 2)},
    "2025-10": {"early_booking": (0, 0), "antenatal_checks": (1, 2), "postpartum_visits": (1, 2),
                "child_system_management": (0, 0), "child_health_management": (0, 0),
                "two_cancers_screening": (2, 3), "two_cancers_followup": (1, 2)},
    "2025-06": {"early_booking": (0, 0), "antenatal_checks": (0, 0), "postpartum_visits": (0, 0),
                "child_system_management": (1, 1), "child_health_management": (1, 1),
                "two_cancers_screening": (2, 3), "two_cancers_followup": (1, 2)},
}


def _values() -> dict:
    return {r["key"]: r["value"] for r in json.loads(SEED.read_text(encoding="utf-8"))}


def _pairs(figs) -> dict:
    return {f["key"]: (f["numerator"], f["denominator"]) for f in figs}


# --- pure functions -------------------------------------------------------------------------------------------

def _preg_rows() -> list[fig.PregnancyRow]:
    return [fig.PregnancyRow(D(b), D(lmp) + dt.timedelta(days=280), d and D(d), dis and D(dis), o, n, pp and D(pp))
            for lmp, b, d, dis, o, n, pp in PREGNANCIES]


def _child_rows(end: dt.date) -> list[fig.ChildRow]:
    out = []
    for i, (birth, checks) in enumerate(CHILDREN):
        done = frozenset(k for k, d in checks if D(d) <= end)
        if done and D(birth) > fig.rules.add_months_to(end, -84):
            out.append(fig.ChildRow(f"c{i}", D(birth), done))
    return out


@pytest.mark.parametrize("period", sorted(EXPECTED))
def test_hand_made_numerators_and_denominators(period):
    start, end = fig.period_bounds(period)
    totals = {"screened": 2, "eligible": 3, "followed_in_time": 1, "positives": 2}
    figs = fig.compute(_preg_rows(), _child_rows(end), totals, start, end, D("2026-12-01"), _values())
    got = {f.key: f for f in figs}
    assert {k: (f.numerator, f.denominator) for k, f in got.items()} == EXPECTED[period]
    for f in figs:
        assert f.rate == (f.numerator / f.denominator if f.denominator else None)
        assert (f.as_dict()["no_data"] is None) == bool(f.denominator)
    if period == "2025":
        assert got["early_booking"].rate == pytest.approx(4 / 6) and got["postpartum_visits"].rate == pytest.approx(1 / 3)


def test_period_bounds_and_checks_not_yet_due():
    assert fig.period_bounds("2026") == (D("2026-01-01"), D("2026-12-31"))
    assert fig.period_bounds("2024-02") == (D("2024-02-01"), D("2024-02-29"))
    for bad in ("26", "2026-13", "2026/10", "", "2026-1", "1899", "2200"):
        with pytest.raises(ValueError):
            fig.period_bounds(bad)
    # A check whose target day is after "today" is not due yet: C1's m12 (2026-01-15) seen on 2026-01-10.
    c1 = fig.ChildRow("c1", D("2025-01-15"), frozenset({"newborn", "m1", "m3", "m6", "m8"}))
    values = _values()
    early = fig.child_management([c1], D("2026-01-01"), D("2026-01-31"), D("2026-01-10"), values["child_checks"],
                                 36, "k", "k", "k")
    assert (early.numerator, early.denominator) == (0, 0)
    later = fig.child_management([c1], D("2026-01-01"), D("2026-01-31"), D("2026-01-20"), values["child_checks"],
                                 36, "k", "k", "k")
    assert (later.numerator, later.denominator) == (0, 1)


# --- the database, the API, the page and the report form ------------------------------------------------------

@pytest.fixture(scope="module")
def org(db, world) -> str:
    """A fresh institution holding only the hand-made rows (the shared database holds other tests' rows)."""
    n = next(_n)
    with db.session() as s:
        o = Organization(code=f"MCHF{n}{world.org_a_code[-6:]}", name=f"妇幼指标测试院{n}", org_type="branch_centre")
        s.add(o)
        s.commit()
        return o.id


def _woman(db, org_id: str, birth: str) -> tuple[str, str]:
    rec_id = register_patient(db, org_id, name=f"指标{next(_n)}", sex="2", birth_date=D(birth),
                              phone=f"137{next(_n):08d}")
    with db.session() as s:
        return rec_id, s.get(PatientRecord, rec_id).person_id


@pytest.fixture(scope="module")
def seeded(db, org) -> str:
    for lmp, booked, delivery, discharge, outcome, antenatal, pp in PREGNANCIES:
        rec_id, pid = _woman(db, org, "1997-05-01")
        with db.session() as s:
            p = Pregnancy(person_id=pid, patient_record_id=rec_id, organization_id=org, lmp=D(lmp),
                          edd=D(lmp) + dt.timedelta(days=280), edd_source="lmp", booked_on=D(booked),
                          status="delivered" if delivery else "active", facts={}, risk_colour="green",
                          risk_reasons=[], delivery_date=delivery and D(delivery),
                          discharge_date=discharge and D(discharge), delivery_outcome=outcome, created_by="t")
            s.add(p)
            s.flush()
            for i in range(antenatal):
                s.add(PregnancyVisit(pregnancy_id=p.id, person_id=pid, kind="antenatal",
                                     visit_date=D(booked) + dt.timedelta(days=14 * i), findings={}, facts={}))
            if pp:
                s.add(PregnancyVisit(pregnancy_id=p.id, person_id=pid, kind="postpartum", visit_date=D(pp),
                                     findings={}, facts={}))
                s.add(PregnancyVisit(pregnancy_id=p.id, person_id=pid, kind="postpartum",  # a later one: min wins
                                     visit_date=D(pp) + dt.timedelta(days=20), findings={}, facts={}))
            s.commit()
    for birth, checks in CHILDREN:
        rec_id = register_patient(db, org, name=f"儿童{next(_n)}", sex="1", birth_date=D(birth))
        with db.session() as s:
            pid = s.get(PatientRecord, rec_id).person_id
            for key, day in checks:
                s.add(ChildCheck(person_id=pid, patient_record_id=rec_id, organization_id=org, check_key=key,
                                 check_date=D(day), age_days=(D(day) - D(birth)).days, zscores={}, flags=[]))
            s.commit()
    women = [_woman(db, org, b) for b in ("1980-03-01", "1975-01-01", "1985-07-01")]  # 45, 50, 39: eligible
    with db.session() as s:
        c = ScreeningCampaign(code=f"FIG{next(_n)}{org[:8]}", name="指标测试两癌", organization_id=org,
                              start_date=D("2025-06-01"), end_date=D("2025-09-30"), reference_date=D("2025-06-01"),
                              min_age=35, max_age=64, sex="female", interval_years=None, created_by="t")
        s.add(c)
        s.flush()
        for (rec_id, pid), diagnosed in zip(women[:2], ("2025-07-01", "2025-08-01"), strict=True):
            s.add(Screening(campaign_id=c.id, person_id=pid, patient_record_id=rec_id, status="screened",
                            cervical_method="HPV", cervical_result="positive", cervical_date=D("2025-06-10"),
                            positive=True, positive_on=D("2025-06-10"), diagnosis_deadline=D("2025-07-10"),
                            treatment_deadline=D("2025-09-08"), diagnosis_date=D(diagnosed),
                            diagnosis_result="benign", followup_status="diagnosed"))
        s.commit()
    return org


def test_interface_gives_the_hand_made_figures_in_one_query_per_family(db, seeded):
    res, statements = with_statements(db, lambda s: interface.mch_figures(s, seeded, "2025"))
    assert _pairs(res["figures"]) == EXPECTED["2025"]
    assert res["from"] == "2025-01-01" and res["to"] == "2025-12-31"
    assert len([q for q in statements if "mch_pregnancy_visit" in q]) == 1  # visits joined, no N+1
    assert len([q for q in statements if "mch_child_check" in q]) == 1
    with db.session() as s:  # the district holds at least the institution's rows
        district = _pairs(interface.mch_figures(s, None, "2025")["figures"])
    for k, (num, den) in EXPECTED["2025"].items():
        assert district[k][1] >= den and district[k][0] >= num


@pytest.fixture(scope="module")
def mgr(client, world):
    return auth(token(client, world.users["mgr"]))


def test_api_returns_the_figures_and_refuses_a_clinician(client, mgr, world, seeded):
    for period, expected in EXPECTED.items():
        r = client.get(API, params={"period": period, "organization": seeded}, headers=mgr)
        assert r.status_code == 200, r.text
        body = r.json()
        assert _pairs(body["figures"]) == expected and body["period"] == period
    oct_ = {f["key"]: f for f in client.get(API, params={"period": "2025-10", "organization": seeded},
                                            headers=mgr).json()["figures"]}
    assert oct_["early_booking"]["rate"] is None and oct_["early_booking"]["no_data"]["zh"] == "本期无建册孕妇"
    assert oct_["antenatal_checks"]["rate"] == pytest.approx(0.5) and oct_["antenatal_checks"]["no_data"] is None
    doc = auth(token(client, world.users["doc_a"]))
    denied = client.get(API, params={"period": "2025"}, headers=doc)
    assert denied.status_code == 403 and denied.json()["resourceType"] == "OperationOutcome"
    assert client.get(f"{API}/export", headers=doc).status_code == 403
    for params in ({"period": "25"}, {"period": "2025-13"}, {"period": "1899"}, {"organization": "no such'org"}):
        bad = client.get(API, params=params, headers=mgr)
        assert bad.status_code in (400, 422), bad.text
        assert bad.json()["resourceType"] == "OperationOutcome"
    unknown = client.get(API, params={"organization": "f" * 32}, headers=mgr)
    assert unknown.status_code == 404 and unknown.json()["resourceType"] == "OperationOutcome"


def test_report_form_export_contains_the_figures(client, mgr, seeded):
    r = client.get(f"{API}/export", params={"period": "2025", "organization": seeded, "format": "csv"}, headers=mgr)
    assert r.status_code == 200 and r.content.startswith("\ufeff".encode())
    lines = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert "2025年" in lines[0][0] and "妇幼指标测试院" in lines[0][0]
    assert {x[1]: (int(x[2]), int(x[3])) for x in lines[2:]} == EXPECTED["2025"]
    x = client.get(f"{API}/export", params={"period": "2025-10", "organization": seeded}, headers=mgr)
    assert x.status_code == 200 and x.headers["content-type"].startswith("application/vnd.openxmlformats")
    ws = load_workbook(io.BytesIO(x.content)).active
    rows = {ws.cell(r, 2).value.split(" ")[0]: (ws.cell(r, 3).value, ws.cell(r, 4).value, ws.cell(r, 5).value,
                                                ws.cell(r, 7).value) for r in range(4, 11)}
    assert rows["产前检查率（≥5次）"][:3] == (1, 2, 0.5)
    assert rows["早孕建册率"][:3] == (0, 0, None) and "无数据" in rows["早孕建册率"][3]
    assert ws.print_title_rows == "$3:$3" and ws.page_setup.orientation == "landscape"
    bad = client.get(f"{API}/export", params={"format": "pdf"}, headers=mgr)
    assert bad.status_code in (400, 422) and bad.json()["resourceType"] == "OperationOutcome"


def test_cockpit_page_shows_the_table_and_errors_inline(app, world, seeded):
    c = signed_in_web(app, world.users["mgr"])
    r = c.get("/ui/cockpit/maternal-child", params={"period": "2025", "organization": seeded, "lang": "en"})
    assert r.status_code == 200, r.text
    html = r.text
    for key, (num, den) in EXPECTED["2025"].items():
        row = html.split(f'data-key="{key}"', 1)[1].split("</tr>", 1)[0]
        assert f'class="numerator">{num}<' in row and f'class="denominator">{den}<' in row
    row = html.split('data-key="early_booking"', 1)[1].split("</tr>", 1)[0]
    assert "66.67%" in row
    month = c.get("/ui/cockpit/maternal-child", params={"period": "2025-10", "organization": seeded}).text
    assert "无数据" in month.split('data-key="early_booking"', 1)[1].split("</tr>", 1)[0]
    assert f"/ui/cockpit/maternal-child/export?period=2025&amp;organization={seeded}" in html
    assert 'href="/ui/cockpit/maternal-child"' in c.get("/ui/cockpit").text  # linked from the cockpit
    bad = c.get("/ui/cockpit/maternal-child", params={"period": "20x5"})
    assert bad.status_code == 400 and 'id="mch-error"' in bad.text and 'value="20x5"' in bad.text
    export = c.get("/ui/cockpit/maternal-child/export", params={"period": "2025", "organization": seeded,
                                                                "format": "csv"})
    assert export.status_code == 200 and "早孕建册率" in export.content.decode("utf-8-sig")
    doc = signed_in_web(app, world.users["doc_a"])
    assert doc.get("/ui/cockpit/maternal-child").status_code == 403
