"""The analytics rule table and the pure formulas (each test fails if its rule changes)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from onetrip.analytics import formulas
from onetrip.analytics.encounters import organization_level
from onetrip.analytics.indicators import INDICATORS

SEED = {r["key"]: r for r in json.loads((Path(__file__).parents[2] / "src/onetrip/db/seeds/rules_analytics.json")
                                        .read_text("utf-8"))}


def test_seeded_definitions():
    assert SEED["standard_followups_per_year"]["value"] == 4  # R3.2 / R3.6
    assert SEED["primary_org_types"]["value"] == ["branch_centre", "station"]  # RULES §8 基层
    assert SEED["lookup_what_prefixes"]["confidence"] == "U"
    assert SEED["target.recognition_rate"]["value"] == 0.8
    assert SEED["target.primary_visit_rate"]["value"] == 0.65
    for ind in INDICATORS:  # every indicator has an operator-editable target row
        assert ind.target_key in SEED, ind.id
        assert SEED[ind.target_key]["rule_set"] == "analytics"


def test_rules_are_seeded_into_the_rule_table(db):
    from onetrip.rules.service import rule_values

    with db.session() as s:
        values = rule_values(s, "analytics")
    assert values["standard_followups_per_year"] == 4 and values["target.smart_booking_rate"] == 0.9


def test_recognition_rate_r1_7():
    assert formulas.recognition_rate(81, 19) == 0.81
    assert formulas.recognition_rate(0, 0) is None
    assert formulas.reminder_acceptance(1, 3) == 0.3333


def test_year_on_year_as_the_seeds_report_it():
    assert formulas.year_on_year(36_000, 28_140) == 0.2793  # 3.6万人次, +27.93 %
    assert formulas.year_on_year(5, 0) is None and formulas.year_on_year(None, 3) is None


def test_standard_management_r3_6():
    assert formulas.standard_management([4, 3, 5, 0], 4) == 2
    assert formulas.estimated_patients(1000, 0.12, None) == 120 and formulas.estimated_patients(1000, 0.12, 90) == 90


def test_organization_level_rules_section_8():
    primary = ["branch_centre", "station"]
    assert organization_level("station", primary) == "primary"
    assert organization_level("lead_hospital", primary) == "county"
    assert organization_level(None, primary) == "outside"


@given(st.lists(st.integers(min_value=0, max_value=60), min_size=1, max_size=200))
def test_median_from_histogram_equals_the_median(values):
    hist: dict[int, int] = {}
    for v in values:
        hist[v] = hist.get(v, 0) + 1
    assert formulas.median_from_histogram(hist) == float(statistics.median(values))
    assert formulas.median_from_histogram({}) is None
