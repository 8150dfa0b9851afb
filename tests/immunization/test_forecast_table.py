"""The forecaster against a hand-made table of children (issue 20, acceptance 1).

Every expected value below was worked out by hand from RULES §6 (R6.1 ages and complete-before ages, R6.2
intervals, R6.4 catch-up) and the issue's conventions — "n m" = birth date + n calendar months, clamped to the
month's last day; earliest = the latest of the minimum age, every interval from earlier doses of the series and
28 days after each recorded dose of another injectable live vaccine; status notdue / overdue / due / complete —
not by running the code. Pure: no database; the schedule is the seed JSON the database is loaded from.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pytest

from onetrip.immunization.forecast import (
    Dose,
    Transition,
    add_age,
    forecast,
)
from onetrip.immunization.schedule import load_seed

SCHEDULE = load_seed()
TO_2025 = Transition(series="DTaP", born_before=dt.date(2025, 1, 1), edition="2025")  # the seeded default
STAY_2021 = Transition(series="DTaP", born_before=dt.date(2025, 1, 1), edition="2021")


def d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


@dataclass(frozen=True)
class Exp:
    """Expected forecast of one series: next dose, its vaccine, earliest (= due: RULES §6 ages are minimum
    ages and the recommended ages at once), complete-before date (latest) and status."""

    dose: int | None
    vaccine: str
    earliest: str | None
    status: str
    latest: str | None = None


@dataclass
class Child:
    name: str
    birth: str
    sex: str
    history: list[tuple[str, str]]
    assessed: str
    expect: dict[str, Exp]
    absent: set[str] = field(default_factory=set)
    transition: Transition = TO_2025


COMPLETE_2018_GIRL = [  # the whole 2021 programme, on time
    ("HepB", "2018-03-01"), ("BCG", "2018-03-01"), ("HepB", "2018-04-01"), ("IPV", "2018-05-01"),
    ("IPV", "2018-06-01"), ("DTaP", "2018-06-01"), ("bOPV", "2018-07-01"), ("DTaP", "2018-07-01"),
    ("DTaP", "2018-08-01"), ("HepB", "2018-09-01"), ("MPSV-A", "2018-09-01"), ("MMR", "2018-11-01"),
    ("JE-L", "2018-11-01"), ("MPSV-A", "2018-12-01"), ("DTaP", "2019-09-01"), ("MMR", "2019-09-01"),
    ("HepA-L", "2019-09-01"), ("JE-L", "2020-03-01"), ("MPSV-AC", "2021-03-01"), ("bOPV", "2022-03-01"),
    ("DT", "2024-03-01"), ("MPSV-AC", "2024-03-01"),
]

CHILDREN = [
    # --- birth and the first month ---------------------------------------------------------------------------
    Child("newborn on the day of birth", "2025-03-10", "female", [], "2025-03-10", {
        "HepB": Exp(1, "HepB", "2025-03-10", "due", "2025-03-11"),  # R6.1: within 24 h = birth + 1 day
        "BCG": Exp(1, "BCG", "2025-03-10", "due", "2025-06-10"),
        "Polio": Exp(1, "IPV", "2025-05-10", "notdue"),
        "DTaP": Exp(1, "DTaP", "2025-05-10", "notdue"),  # 2025 edition: DTaP-1 at 2 m
    }),
    Child("HepB-1 missed: overdue the next day", "2025-03-10", "male", [], "2025-03-11", {
        "HepB": Exp(1, "HepB", "2025-03-10", "overdue", "2025-03-11"),
        "BCG": Exp(1, "BCG", "2025-03-10", "due", "2025-06-10"),
    }),
    Child("one month: HepB-2 due at 1 m", "2025-01-15", "female",
          [("HepB", "2025-01-15"), ("BCG", "2025-01-15")], "2025-02-15", {
              "HepB": Exp(2, "HepB", "2025-02-15", "due"),  # 1 m beats dose 1 + 28 d (02-12)
              "BCG": Exp(None, "BCG", None, "complete"),
              "Polio": Exp(1, "IPV", "2025-03-15", "notdue"),
          }),
    Child("BCG on its complete-before date is overdue", "2025-01-10", "male", [("HepB", "2025-01-10")],
          "2025-04-10", {"BCG": Exp(1, "BCG", "2025-01-10", "overdue", "2025-04-10")}),
    Child("BCG the day before its complete-before date is due", "2025-01-10", "male", [("HepB", "2025-01-10")],
          "2025-04-09", {"BCG": Exp(1, "BCG", "2025-01-10", "due", "2025-04-10")}),
    # --- HepB dose 3: >= 60 d after dose 2 and >= 4 m after dose 1 (R6.2) ------------------------------------
    Child("HepB 4-month rule decides (late start)", "2024-06-01", "female",
          [("HepB", "2025-01-10"), ("HepB", "2025-02-07")], "2025-04-20", {
              # 6 m = 2024-12-01; dose 2 + 60 d = 2025-04-08; dose 1 + 4 m = 2025-05-10
              "HepB": Exp(3, "HepB", "2025-05-10", "notdue", "2025-06-01"),
          }),
    Child("HepB 4-month rule: due on the day", "2024-06-01", "female",
          [("HepB", "2025-01-10"), ("HepB", "2025-02-07")], "2025-05-10", {
              "HepB": Exp(3, "HepB", "2025-05-10", "due", "2025-06-01"),
          }),
    Child("HepB 60-day rule decides", "2024-06-01", "male",
          [("HepB", "2025-01-10"), ("HepB", "2025-03-20")], "2025-05-12", {
              # dose 2 + 60 d = 2025-05-19 > dose 1 + 4 m = 2025-05-10
              "HepB": Exp(3, "HepB", "2025-05-19", "notdue", "2025-06-01"),
          }),
    Child("HepB-3 past 12 months is overdue", "2024-01-05", "male",
          [("HepB", "2024-01-05"), ("HepB", "2024-02-05")], "2025-03-01", {
              "HepB": Exp(3, "HepB", "2024-07-05", "overdue", "2025-01-05"),
          }),
    # --- month-end arithmetic --------------------------------------------------------------------------------
    Child("born on the 31st: 6 m = 28 February", "2025-08-31", "female",
          [("HepB", "2025-08-31"), ("BCG", "2025-08-31"), ("HepB", "2025-10-01"), ("IPV", "2025-10-31"),
           ("DTaP", "2025-10-31"), ("IPV", "2025-11-30"), ("bOPV", "2025-12-31"), ("DTaP", "2025-12-31")],
          "2026-02-27", {
              "HepB": Exp(3, "HepB", "2026-02-28", "notdue", "2026-08-31"),
              "DTaP": Exp(3, "DTaP", "2026-02-28", "notdue", "2026-08-31"),
              "MPSV-A": Exp(1, "MPSV-A", "2026-02-28", "notdue"),
              "Polio": Exp(4, "bOPV", "2029-08-31", "notdue", "2030-08-31"),
          }),
    Child("born on 29 February: 2 y = 28 February, HepA-I-2 six months after dose 1", "2024-02-29", "female",
          [("HepA-I", "2025-09-01")], "2026-03-01", {
              # 2 y = 2026-02-28; dose 1 + 6 m = 2026-03-01
              "HepA-I": Exp(2, "HepA-I", "2026-03-01", "due"),
          }, absent={"HepA-L"}),
    # --- live injectable vaccines: same day or >= 28 d apart --------------------------------------------------
    Child("MMR then JE-L 10 days later: pushed to MMR + 28 d", "2025-01-20", "male",
          [("MMR", "2025-09-20")], "2025-09-30", {
              "JE-L": Exp(1, "JE-L", "2025-10-18", "notdue", "2026-01-20"),
              "MMR": Exp(2, "MMR", "2026-07-20", "notdue", "2027-01-20"),
          }, absent={"JE-I"}),
    Child("MMR-1 and JE-L-1 due together do not push each other", "2025-01-20", "female", [], "2025-10-01", {
        "MMR": Exp(1, "MMR", "2025-09-20", "due", "2026-01-20"),
        "JE-L": Exp(1, "JE-L", "2025-09-20", "due", "2026-01-20"),
    }),
    Child("HepA-L recorded pushes JE-L-2", "2023-05-10", "female",
          [("JE-L", "2024-01-10"), ("MMR", "2024-01-10"), ("MMR", "2024-11-10"), ("HepA-L", "2025-05-01")],
          "2025-05-12", {
              "JE-L": Exp(2, "JE-L", "2025-05-29", "notdue", "2026-05-10"),  # 2 y = 2025-05-10 < HepA-L + 28 d
              "HepA-L": Exp(None, "HepA-L", None, "complete"),
              "MMR": Exp(None, "MMR", None, "complete"),
          }, absent={"HepA-I", "JE-I"}),
    # --- alternatives: once one is chosen --------------------------------------------------------------------
    Child("JE-I chosen: dose 2 seven days after dose 1, JE-L no longer forecast", "2025-01-20", "male",
          [("JE-I", "2025-09-22")], "2025-09-25", {
              "JE-I": Exp(2, "JE-I", "2025-09-29", "notdue"),
          }, absent={"JE-L"}),
    Child("JE-I chosen: dose 2 has no complete-before age, so due, never overdue", "2025-01-20", "male",
          [("JE-I", "2025-09-22")], "2026-06-01", {
              "JE-I": Exp(2, "JE-I", "2025-09-29", "due"),
          }, absent={"JE-L"}),
    # --- polio is one series: IPV 1-2, bOPV 3-4 ----------------------------------------------------------------
    Child("after two IPV the third polio dose is bOPV", "2025-01-10", "female",
          [("IPV", "2025-03-10"), ("IPV", "2025-04-10")], "2025-05-12", {
              "Polio": Exp(3, "bOPV", "2025-05-10", "due", "2026-01-10"),
          }),
    Child("polio dose 4 at 4 y, overdue from 5 y", "2021-01-10", "male",
          [("IPV", "2021-03-10"), ("IPV", "2021-04-10"), ("bOPV", "2021-05-10")], "2026-01-10", {
              "Polio": Exp(4, "bOPV", "2025-01-10", "overdue", "2026-01-10"),
          }),
    # --- catch-up never restarts (R6.4) ----------------------------------------------------------------------
    Child("catch-up: DTaP dose 2 after a long gap, not dose 1 again", "2023-01-10", "female",
          [("DTaP", "2023-04-10")], "2025-02-01", {
              "DTaP": Exp(2, "DTaP", "2023-05-10", "due"),  # dose 2 has no complete-before age
              "Polio": Exp(1, "IPV", "2023-03-10", "due"),
              "HepB": Exp(1, "HepB", "2023-01-10", "overdue", "2023-01-11"),
              "MMR": Exp(1, "MMR", "2023-09-10", "overdue", "2024-01-10"),
          }),
    Child("catch-up: a late MMR-1 pushes MMR-2 and JE-L-1", "2022-01-05", "male",
          [("MMR", "2025-02-20")], "2025-03-01", {
              "MMR": Exp(2, "MMR", "2025-03-20", "notdue", "2024-01-05"),  # notdue wins: earliest is ahead
              "JE-L": Exp(1, "JE-L", "2025-03-20", "notdue", "2023-01-05"),
          }),
    Child("MPSV-A dose 2 three months after a late dose 1", "2025-01-31", "female",
          [("MPSV-A", "2025-08-15")], "2025-11-01", {
              "MPSV-A": Exp(2, "MPSV-A", "2025-11-15", "notdue"),  # 9 m = 2025-10-31
          }),
    Child("MPSV-AC dose 2 three years after dose 1", "2019-05-05", "male",
          [("MPSV-AC", "2022-06-01")], "2025-05-06", {
              "MPSV-AC": Exp(2, "MPSV-AC", "2025-06-01", "notdue", "2026-05-05"),
          }),
    # --- editions and the DTaP change (children born before 2025) ----------------------------------------
    Child("2021 edition in force on 2024-12-31: DTaP-1 at 3 m", "2024-10-15", "male", [], "2024-12-31", {
        "DTaP": Exp(1, "DTaP", "2025-01-15", "notdue"),
    }, absent={"HPV2"}),
    Child("2025 edition from 2025-01-01: DTaP-1 at 2 m", "2024-10-15", "male", [], "2025-01-01", {
        "DTaP": Exp(1, "DTaP", "2024-12-15", "due"),
    }),
    Child("born 2024, DTaP begun on the 2021 schedule, transition to 2025: dose 3 at 6 m", "2024-09-10", "female",
          [("DTaP", "2024-12-10"), ("DTaP", "2025-01-10")], "2025-02-12", {
              "DTaP": Exp(3, "DTaP", "2025-03-10", "notdue", "2025-09-10"),
          }),
    Child("born 2024, operator keeps the 2021 DTaP schedule: dose 3 at 5 m", "2024-09-10", "female",
          [("DTaP", "2024-12-10"), ("DTaP", "2025-01-10")], "2025-02-12", {
              "DTaP": Exp(3, "DTaP", "2025-02-10", "due", "2025-09-10"),
          }, transition=STAY_2021),
    Child("born 2019, four DTaP: dose 5 is DTaP from 2025 (replaces DT)", "2019-03-01", "male",
          [("DTaP", "2019-06-01"), ("DTaP", "2019-07-01"), ("DTaP", "2019-08-01"), ("DTaP", "2020-09-01")],
          "2025-03-05", {"DTaP": Exp(5, "DTaP", "2025-03-01", "due", "2026-03-01")}),
    Child("born 2019, operator keeps 2021: dose 5 is DT", "2019-03-01", "male",
          [("DTaP", "2019-06-01"), ("DTaP", "2019-07-01"), ("DTaP", "2019-08-01"), ("DTaP", "2020-09-01")],
          "2025-03-05", {"DTaP": Exp(5, "DT", "2025-03-01", "due", "2026-03-01")}, transition=STAY_2021),
    Child("born 2019, assessed in 2024 (2021 edition): dose 5 is DT", "2019-03-01", "male",
          [("DTaP", "2019-06-01"), ("DTaP", "2019-07-01"), ("DTaP", "2019-08-01"), ("DTaP", "2020-09-01")],
          "2024-06-01", {"DTaP": Exp(5, "DT", "2025-03-01", "notdue", "2026-03-01")}),
    Child("a DT given under the 2021 edition completes the DTaP series in 2025 (every dose counts)",
          "2018-03-01", "female", COMPLETE_2018_GIRL, "2025-06-01", {
              s: Exp(None, v, None, "complete") for s, v in (
                  ("HepB", "HepB"), ("BCG", "BCG"), ("Polio", "bOPV"), ("DTaP", "DTaP"), ("MPSV-A", "MPSV-A"),
                  ("MMR", "MMR"), ("JE-L", "JE-L"), ("HepA-L", "HepA-L"), ("MPSV-AC", "MPSV-AC"))
          } | {"HPV2": Exp(1, "HPV2", "2031-03-01", "notdue")}, absent={"JE-I", "HepA-I"}),
    # --- HPV2 for girls at 13 (2025 edition) ---------------------------------------------------------------
    Child("girl of 13 in 2025: HPV2 dose 1 due", "2012-06-15", "female", [], "2025-07-01", {
        "HPV2": Exp(1, "HPV2", "2025-06-15", "due"),
    }),
    Child("boy of 13 in 2025: no HPV2", "2012-06-15", "male", [], "2025-07-01", {}, absent={"HPV2"}),
    Child("girl of 13 in 2024 (2021 edition): no HPV2 yet", "2011-06-15", "female", [], "2024-07-01", {},
          absent={"HPV2"}),
    Child("HPV2 dose 2 six months after dose 1", "2012-06-15", "female", [("HPV2", "2025-07-01")], "2025-12-01", {
        "HPV2": Exp(2, "HPV2", "2026-01-01", "notdue"),
    }),
]


def test_the_table_is_big_enough():
    assert len(CHILDREN) >= 25


@pytest.mark.parametrize("child", CHILDREN, ids=[c.name for c in CHILDREN])
def test_forecast(child: Child):
    history = [Dose(code, d(day)) for code, day in child.history]
    out = {f.series: f for f in forecast(d(child.birth), child.sex, d(child.assessed), history, SCHEDULE,
                                         transitions=[child.transition])}
    for series, exp in child.expect.items():
        assert series in out, f"{series} missing from {sorted(out)}"
        got = out[series]
        assert (got.dose, got.vaccine, got.status) == (exp.dose, exp.vaccine, exp.status), (series, got)
        assert got.earliest == (d(exp.earliest) if exp.earliest else None), (series, got)
        assert got.due == got.earliest, (series, got)
        if exp.status != "complete":
            assert got.latest == (d(exp.latest) if exp.latest else None), (series, got)
    for series in child.absent:
        assert series not in out, (series, out.get(series))


def test_month_arithmetic():
    """'n m' keeps the day of month, or takes the month's last day when it does not exist."""
    assert add_age(d("2025-08-31"), "6m") == d("2026-02-28")
    assert add_age(d("2024-08-31"), "6m") == d("2025-02-28")
    assert add_age(d("2023-08-31"), "6m") == d("2024-02-29")
    assert add_age(d("2024-02-29"), "1y") == d("2025-02-28")
    assert add_age(d("2025-01-31"), "1m") == d("2025-02-28")
    assert add_age(d("2025-01-31"), "13m") == d("2026-02-28")
    assert add_age(d("2025-12-15"), "1m") == d("2026-01-15")
    assert add_age(d("2025-03-10"), "0d") == d("2025-03-10")
    assert add_age(d("2025-03-10"), "28d") == d("2025-04-07")


def test_reasons_are_machine_readable_and_name_what_decided():
    """The live-spacing case says so in its reasons (codes, never rule numbers)."""
    out = {f.series: f for f in forecast(d("2025-01-20"), "male", d("2025-09-30"), [Dose("MMR", d("2025-09-20"))],
                                         SCHEDULE, transitions=[TO_2025])}
    reasons = out["JE-L"].reasons
    assert "earliest:live-spacing:MMR" in reasons
    assert "alternative-available:JE-I" in reasons
    assert all("R6" not in r for f in out.values() for r in f.reasons)
    hepb = {f.series: f for f in forecast(d("2024-06-01"), "female", d("2025-04-20"),
                                          [Dose("HepB", d("2025-01-10")), Dose("HepB", d("2025-02-07"))],
                                          SCHEDULE, transitions=[TO_2025])}["HepB"]
    assert "earliest:interval:dose-1" in hepb.reasons


def test_recorded_doses_beyond_the_series_still_complete_it():
    history = [Dose("BCG", d("2025-01-10")), Dose("BCG", d("2025-02-10"))]
    out = {f.series: f for f in forecast(d("2025-01-10"), "female", d("2025-03-01"), history, SCHEDULE,
                                         transitions=[TO_2025])}
    assert out["BCG"].status == "complete"


def test_a_new_edition_is_data():
    """An operator's edition (a later effective date, BCG moved to 1 m) is used from its date on."""
    from dataclasses import replace

    extra = [replace(r, edition="2027", effective_from=d("2027-01-01"),
                     min_age="1m" if r.series == "BCG" else r.min_age)
             for r in SCHEDULE if r.edition == "2025"]
    sched = [*SCHEDULE, *extra]
    before = {f.series: f for f in forecast(d("2026-12-01"), "male", d("2026-12-01"), [], sched,
                                            transitions=[TO_2025])}
    after = {f.series: f for f in forecast(d("2027-01-01"), "male", d("2027-01-01"), [], sched,
                                           transitions=[TO_2025])}
    assert before["BCG"].earliest == d("2026-12-01")
    assert after["BCG"].earliest == d("2027-02-01")
    assert after["BCG"].edition == "2027"
