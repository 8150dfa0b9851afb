"""Vaccination coverage — 累计接种率 and 及时接种率 per dose × township × birth cohort (issue 20 point 6), on SQLite and
PostgreSQL: a hand-made cohort of seven children in two townships (and one without an address) whose figures are
worked out by hand below; the pure functions, the interface's single query, the cockpit API and panel, and the
report form (xlsx and csv) all give those figures. Children too young for a dose are in no denominator, doses
after the assessment date and entered-in-error doses do not count."""

from __future__ import annotations

import csv
import datetime as dt
import io
from itertools import count

import pytest
from openpyxl import load_workbook
from sqlalchemy import select, update

from onetrip.immunization import coverage as cov
from onetrip.immunization import coverage_service, interface
from onetrip.immunization.forecast import Dose
from onetrip.immunization.models import Vaccination, VaccineLot, VaccinePackage, VaccineProduct
from onetrip.immunization.schedule import load_seed
from onetrip.kit.clock import local_datetime
from onetrip.persons.models import PatientRecord, Person
from tests.factories import auth, register_patient, signed_in_web, token, with_statements

D = dt.date.fromisoformat
ASSESSED = D("2026-12-01")
A, B = "测试城关镇", "测试青溪街道"
DOSES = ["HepB-1", "HepB-3", "MMR-1", "MPSV-A-2", "DTaP-4"]


def _h(*dates: str, code: str) -> list[tuple[str, str]]:
    return [(code, d) for d in dates]


# (name, birth, township, completed doses, entered-in-error doses)
CHILDREN = [
    ("甲一", "2025-01-10", A, _h("2025-01-10", "2025-02-12", "2025-07-15", code="HepB") + [("MMR", "2025-09-20")]
     + _h("2025-07-10", "2025-10-15", code="MPSV-A") + _h("2025-03-10", "2025-05-10", "2025-07-10", "2026-08-01",
                                                          code="DTaP"), []),
    ("甲二", "2025-03-05", A, _h("2025-03-07", "2025-04-10", "2026-02-01", code="HepB") + [("MMR", "2026-04-01")]
     + _h("2025-09-05", "2026-05-01", code="MPSV-A") + _h("2025-06-05", "2025-07-05", "2025-08-05", code="DTaP"), []),
    ("乙三", "2025-06-20", B, _h("2025-06-20", "2025-07-25", code="HepB") + [("MMR", "2026-12-10")],
     [("HepB", "2026-01-01")]),  # MMR after the assessment date; HepB-3 entered in error
    ("乙四", "2025-11-15", B, _h("2025-11-15", "2025-12-20", "2026-11-20", code="HepB") + [("MMR", "2026-08-01")], []),
    ("甲五", "2025-12-20", A, _h("2025-12-20", "2026-01-25", "2026-07-01", code="HepB") + [("MMR", "2026-08-25")]
     + _h("2026-06-25", "2026-10-01", code="MPSV-A"), []),
    ("丙六", "2025-08-08", None, [("HepB", "2025-08-08")], []),
    ("乙七", "2026-05-01", B, [("HepB", "2026-05-01")], []),
]

# Worked out by hand (docs/immunization.md has the definitions): (dose, township, cohort) →
# (vaccinated, eligible, on time, due by age). DTaP-4 (18 m) is too young for 乙三, 乙四, 甲五, 丙六: no B or
# unknown row, and 甲五 is not in the A row; MMR-1 and MPSV-A-2 are too young for 乙七 (2026 cohort).
EXPECTED = {
    ("HepB-1", A, "2025"): (3, 3, 2, 3), ("HepB-1", B, "2025"): (2, 2, 2, 2), ("HepB-1", "unknown", "2025"): (1, 1, 1, 1),
    ("HepB-1", B, "2026"): (1, 1, 1, 1),
    ("HepB-3", A, "2025"): (3, 3, 2, 2), ("HepB-3", B, "2025"): (1, 2, 0, 2), ("HepB-3", "unknown", "2025"): (0, 1, 0, 1),
    ("HepB-3", B, "2026"): (0, 1, 0, 0),
    ("MMR-1", A, "2025"): (3, 3, 1, 2), ("MMR-1", B, "2025"): (1, 2, 1, 2), ("MMR-1", "unknown", "2025"): (0, 1, 0, 1),
    ("MPSV-A-2", A, "2025"): (3, 3, 2, 3), ("MPSV-A-2", B, "2025"): (0, 2, 0, 2),
    ("MPSV-A-2", "unknown", "2025"): (0, 1, 0, 1),
    ("DTaP-4", A, "2025"): (1, 2, 0, 0),
}


def _figures(cells) -> dict:
    return {(c.dose, c.township, c.cohort): (c.vaccinated, c.eligible, c.timely, c.timely_eligible) for c in cells}


def _rows(children) -> list[cov.ChildRow]:
    return [cov.ChildRow(D(b), t, tuple(Dose(v, D(d)) for v, d in done)) for _, b, t, done, _ in children]


# --- pure functions -------------------------------------------------------------------------------------------

def test_hand_made_cohort_numerators_denominators_and_rates():
    tgts = cov.targets(load_seed(), ASSESSED, DOSES, "1m")
    assert [t.key for t in tgts] == DOSES
    cells = cov.coverage(_rows(CHILDREN), tgts, ASSESSED)
    assert _figures(cells) == EXPECTED
    hepb1_a = next(c for c in cells if (c.dose, c.township, c.cohort) == ("HepB-1", A, "2025"))
    assert hepb1_a.cumulative_rate == 1.0 and hepb1_a.timely_rate == pytest.approx(2 / 3)  # 甲二 got it on day 2
    dtap4 = next(c for c in cells if c.dose == "DTaP-4")
    assert dtap4.cumulative_rate == 0.5 and dtap4.timely_rate is None  # nobody is past 24 m yet
    district = {(c.dose, c.cohort): (c.vaccinated, c.eligible, c.timely, c.timely_eligible)
                for c in cov.totals(cells)}
    assert district[("MMR-1", "2025")] == (4, 6, 2, 5)


def test_too_young_late_window_and_month_cohorts():
    tgts = cov.targets(load_seed(), ASSESSED, ["MMR-1", "MPSV-A-2"], "1m")
    baby = cov.ChildRow(D("2026-05-01"), A, (Dose("MMR", D("2026-11-30")),))  # given before 8 m: not counted
    assert cov.coverage([baby], tgts, ASSESSED) == []  # too young for both: in no denominator
    # MPSV-A-2 has no complete-before age: on time = before 9 m + the window (rule data).
    kid = cov.ChildRow(D("2025-06-01"), A, (Dose("MPSV-A", D("2025-12-01")), Dose("MPSV-A", D("2026-04-15"))))
    wide = cov.targets(load_seed(), ASSESSED, ["MPSV-A-2"], "2m")
    assert _figures(cov.coverage([kid], tgts[1:], ASSESSED))[("MPSV-A-2", A, "2025")] == (1, 1, 0, 1)
    assert _figures(cov.coverage([kid], wide, ASSESSED))[("MPSV-A-2", A, "2025")] == (1, 1, 1, 1)
    by_month = cov.coverage(_rows(CHILDREN[:2]), tgts[:1], ASSESSED, by="month")
    assert {c.cohort for c in by_month} == {"2025-01", "2025-03"}
    assert cov.cohort_bounds("2025-02") == (D("2025-02-01"), D("2025-02-28"), "month")
    for bad in ("25", "2025-13", "2025/03", ""):
        with pytest.raises(ValueError):
            cov.cohort_bounds(bad)
    # The 2021 edition in force: DTaP-3 at 5 m; a DT dose counts in the DTaP series (R6.4).
    old = {t.key: t for t in cov.targets(load_seed(), D("2024-06-01"), ["DTaP-3", "DTaP-5", "HPV2-1"])}
    assert old["DTaP-3"].min_age == "5m" and "DT" in old["DTaP-5"].codes and "HPV2-1" not in old


# --- the database, the cockpit API, the panel and the report form ---------------------------------------------

_codes = count(1)


@pytest.fixture(scope="module")
def seeded(db, world, schedule_seeded):
    """The seven children as registered persons with their doses recorded at clinic A."""
    with db.session() as s:
        prod = VaccineProduct(vaccine_code="HepB", name="覆盖率测试疫苗", holder="示例生物", specification="0.5 mL",
                              doses_per_package=1)
        s.add(prod)
        s.flush()
        lot = VaccineLot(product_id=prod.id, lot_number="COV1", expiry=D("2030-01-01"))
        s.add(lot)
        s.flush()
        pkg = VaccinePackage(trace_code=f"7{next(_codes):019d}", lot_id=lot.id, organization_id=world.org_a,
                             doses_total=1, doses_left=0, received_at=local_datetime(D("2025-01-01"), "08:00"))
        s.add(pkg)
        s.commit()
        ids = (prod.id, pkg.id, pkg.trace_code)
    for name, birth, town, done, wrong in CHILDREN:
        rec_id = register_patient(db, world.org_a, name=f"覆盖{name}", sex="1", birth_date=D(birth))
        with db.session() as s:
            rec = s.get(PatientRecord, rec_id)
            s.execute(update(Person).where(Person.id == rec.person_id).values(street=town))
            for (code, day), status in [(x, "completed") for x in done] + [(x, "entered-in-error") for x in wrong]:
                s.add(Vaccination(person_id=rec.person_id, patient_record_id=rec_id, organization_id=world.org_a,
                                  vaccine_code=code, dose_number=1, product_id=ids[0], holder="示例生物",
                                  package_id=ids[1], trace_code=ids[2], lot_number="COV1", expiry=D("2030-01-01"),
                                  occurred_at=local_datetime(D(day), "10:00"), vaccinator_id="t",
                                  vaccinator_name="t", site="left-deltoid", route="IM", status=status,
                                  error_reason="wrong child" if status != "completed" else None))
            s.commit()
    with db.session() as s:  # the doses the test reports (the seeded rule value lists more)
        from onetrip.rules.service import set_rule

        set_rule(s, "immunization", "coverage_doses", DOSES, effective_from=D("2020-01-01"), by="test")
        s.commit()
    return True


def _expected_json(cohort: str | None = None, township: str | None = None) -> dict:
    return {k: v for k, v in EXPECTED.items() if (cohort is None or k[2] == cohort)
            and (township is None or k[1] == township)}


def _api_figures(rows: list[dict]) -> dict:
    return {(r["dose"], r["township"], r["cohort"]): (r["cumulative"]["numerator"], r["cumulative"]["denominator"],
                                                      r["timely"]["numerator"], r["timely"]["denominator"])
            for r in rows}


def test_interface_reads_in_one_query_and_skips_entered_in_error(db, seeded):
    coverage_service._CACHE.clear()
    res, statements = with_statements(db, lambda s: interface.coverage(s, assessed=ASSESSED))
    assert _figures(res.cells) == EXPECTED  # the entered-in-error HepB-3 of 乙三 is not counted (B: 1 of 2)
    assert res.townships == sorted([A, B]) + ["unknown"] and res.cohorts == ["2025", "2026"] and res.doses == DOSES
    children_reads = [q for q in statements if "imm_vaccination" in q and "JOIN" in q.upper()]
    # rule values, schedule, the data's version (two aggregates), the children: no N+1
    assert len(children_reads) == 1 and len(statements) <= 6


def test_the_figures_are_read_once_until_a_dose_or_a_person_changes(db, world, seeded):
    coverage_service._CACHE.clear()
    first, _ = with_statements(db, lambda s: interface.coverage(s, assessed=ASSESSED))
    again, statements = with_statements(db, lambda s: interface.coverage(s, assessed=ASSESSED, township=A))
    assert not [q for q in statements if "JOIN" in q.upper()]  # served from the cache: no children query
    assert _figures(again.cells) == {k: v for k, v in EXPECTED.items() if k[1] == A}
    # a dose marked entered-in-error changes the figures at once
    with db.session() as s:
        counted = s.scalars(select(Vaccination).join(Person, Person.id == Vaccination.person_id).where(
            Person.street == A, Vaccination.status == "completed", Vaccination.vaccine_code == "MMR")).first()
        assert counted is not None
        counted.status = "entered-in-error"
        s.commit()
    try:
        after, statements = with_statements(db, lambda s: interface.coverage(s, assessed=ASSESSED))
        assert [q for q in statements if "JOIN" in q.upper()]
        assert _figures(after.cells) != _figures(first.cells)
    finally:
        with db.session() as s:
            s.get(Vaccination, counted.id).status = "completed"
            s.commit()
    back, _ = with_statements(db, lambda s: interface.coverage(s, assessed=ASSESSED))
    assert _figures(back.cells) == EXPECTED
    # a child moving to another township too
    with db.session() as s:
        mover = s.scalars(select(Person).where(Person.street == A)).first()
        mover.street = B
        s.commit()
    try:
        moved, _ = with_statements(db, lambda s: interface.coverage(s, assessed=ASSESSED))
        assert _figures(moved.cells) != EXPECTED
    finally:
        with db.session() as s:
            s.get(Person, mover.id).street = A
            s.commit()


@pytest.fixture(scope="module")
def mgr(client, world):
    return auth(token(client, world.users["mgr"]))


def test_cockpit_api_returns_the_hand_made_figures(client, mgr, world, seeded):
    r = client.get("/api/coverage", params={"date": "2026-12-01", "cohort": "2025"}, headers=mgr)
    assert r.status_code == 200, r.text
    body = r.json()
    assert _api_figures(body["rows"]) == _expected_json("2025")
    mmr = next(t for t in body["totals"] if t["dose"] == "MMR-1" and t["cohort"] == "2025")
    assert mmr["cumulative"] == {"numerator": 4, "denominator": 6, "rate": pytest.approx(4 / 6)}
    assert mmr["timely"] == {"numerator": 2, "denominator": 5, "rate": pytest.approx(0.4)}
    only_b = client.get("/api/coverage", params={"date": "2026-12-01", "township": B}, headers=mgr).json()
    assert _api_figures(only_b["rows"]) == _expected_json(township=B)
    unknown = client.get("/api/coverage", params={"date": "2026-12-01", "township": "unknown"}, headers=mgr).json()
    assert _api_figures(unknown["rows"]) == _expected_json(township="unknown")
    months = client.get("/api/coverage", params={"date": "2026-12-01", "cohort": "2025-03"}, headers=mgr).json()
    assert {r["cohort"] for r in months["rows"]} == {"2025-03"} and months["by"] == "month"
    doc = auth(token(client, world.users["doc_a"]))
    denied = client.get("/api/coverage", headers=doc)
    assert denied.status_code == 403 and denied.json()["resourceType"] == "OperationOutcome"
    for params in ({"cohort": "25"}, {"by": "week"}, {"date": "not-a-date"}):
        bad = client.get("/api/coverage", params=params, headers=mgr)
        assert bad.status_code in (400, 422), bad.text
        assert bad.json()["resourceType"] == "OperationOutcome"


def test_report_form_export_contains_the_figures(client, mgr, seeded):
    r = client.get("/api/coverage/export", params={"date": "2026-12-01", "cohort": "2025", "format": "csv"},
                   headers=mgr)
    assert r.status_code == 200 and r.content.startswith("\ufeff".encode())
    lines = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert "2025" in lines[0][0]
    got = {(x[0], "unknown" if x[1].startswith("未知") else x[1], x[2]): tuple(int(v) for v in (x[3], x[4], x[6], x[7]))
           for x in lines[2:]}
    assert got == _expected_json("2025")
    x = client.get("/api/coverage/export", params={"date": "2026-12-01", "cohort": "2025"}, headers=mgr)
    assert x.status_code == 200 and x.headers["content-type"].startswith("application/vnd.openxmlformats")
    ws = load_workbook(io.BytesIO(x.content)).active
    rows = {(ws.cell(r, 2).value, ws.cell(r, 3).value): (ws.cell(r, 5).value, ws.cell(r, 6).value,
                                                          ws.cell(r, 7).value, ws.cell(r, 10).value)
            for r in range(4, 4 + len(got))}
    assert rows[("MMR-1", A)] == (3, 3, 1.0, 0.5)
    assert rows[("HepB-3", B)] == (1, 2, 0.5, 0.0)
    assert ws.print_title_rows == "$3:$3" and ws.page_setup.orientation == "landscape"
    bad = client.get("/api/coverage/export", params={"format": "pdf"}, headers=mgr)
    assert bad.status_code == 400 and bad.json()["resourceType"] == "OperationOutcome"




def test_cockpit_panel_shows_the_figures_and_errors_inline(app, world, seeded):
    c = signed_in_web(app, world.users["mgr"])
    r = c.get("/ui/cockpit/coverage", params={"date": "2026-12-01", "cohort": "2025", "lang": "en"})
    assert r.status_code == 200, r.text
    html = r.text
    assert f'data-dose="HepB-3" data-township="{B}" data-cohort="2025"' in html
    row = html.split(f'data-dose="HepB-3" data-township="{B}" data-cohort="2025"', 1)[1].split("</tr>", 1)[0]
    assert "50.00%" in row and "1 / 2" in row and "0.00%" in row and "0 / 2" in row
    total = html.split('id="coverage-totals"', 1)[1].split('data-dose="MMR-1" data-cohort="2025"', 1)[1]
    assert "66.67%" in total.split("</tr>", 1)[0] and "4 / 6" in total.split("</tr>", 1)[0]
    assert "/ui/cockpit/coverage/export?date=2026-12-01&amp;cohort=2025" in html
    assert 'href="/ui/cockpit/coverage"' in c.get("/ui/cockpit").text  # linked from the cockpit
    bad = c.get("/ui/cockpit/coverage", params={"cohort": "20x5"})
    assert bad.status_code == 400 and 'id="coverage-error"' in bad.text and 'value="20x5"' in bad.text
    export = c.get("/ui/cockpit/coverage/export", params={"date": "2026-12-01", "format": "csv"})
    assert export.status_code == 200 and "HepB-1" in export.content.decode("utf-8-sig")
    doc = signed_in_web(app, world.users["doc_a"])
    assert doc.get("/ui/cockpit/coverage").status_code == 403
