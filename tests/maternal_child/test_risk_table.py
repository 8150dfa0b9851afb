"""Five-colour pregnancy risk grading (RULES R11.2, 2017 规范), written from the rule before the code.

R11.2: green low; yellow general (age ≥ 35 or ≤ 18, scarred uterus, GDM, twins); orange higher (age ≥ 40,
BMI ≥ 28, serious complications); red high (continuing the pregnancy may endanger life); purple infectious
disease (hepatitis, syphilis, HIV, TB), combinable with any colour. The highest of green < yellow < orange < red
wins; purple is added. The numbers come from the rule row ``risk_grading`` (passed in as ``values``).
"""

from __future__ import annotations

import json
from importlib import resources

import pytest

from onetrip.maternal_child.rules import RiskFacts, grade

SEED = {r["key"]: r for r in json.loads(
    resources.files("onetrip.db.seeds").joinpath("rules_maternal_child.json").read_text("utf-8"))}
VALUES = {"yellow_age_min": 35, "yellow_age_max": 18, "orange_age_min": 40, "orange_bmi_min": 28}

# (case, facts, expected colours, expected reason codes)
TABLE: list[tuple[str, dict, set[str], set[str]]] = [
    ("healthy 28-year-old", {"age": 28, "bmi": 22.0}, {"green"}, set()),
    ("age 34: still green", {"age": 34, "bmi": 23.5}, {"green"}, set()),
    ("age 35 exactly: yellow", {"age": 35}, {"yellow"}, {"age_35_plus"}),
    ("age 19: green", {"age": 19}, {"green"}, set()),
    ("age 18 exactly: yellow", {"age": 18}, {"yellow"}, {"age_18_or_under"}),
    ("age 16: yellow", {"age": 16}, {"yellow"}, {"age_18_or_under"}),
    ("age 39: yellow, not orange", {"age": 39}, {"yellow"}, {"age_35_plus"}),
    ("age 40 exactly: orange", {"age": 40}, {"orange"}, {"age_40_plus"}),
    ("BMI 27.9: green", {"age": 30, "bmi": 27.9}, {"green"}, set()),
    ("BMI 28 exactly: orange", {"age": 30, "bmi": 28.0}, {"orange"}, {"bmi_28_plus"}),
    ("scarred uterus", {"age": 30, "scarred_uterus": True}, {"yellow"}, {"scarred_uterus"}),
    ("GDM", {"age": 27, "gdm": True}, {"yellow"}, {"gdm"}),
    ("twins", {"age": 25, "twins": True}, {"yellow"}, {"twins"}),
    ("serious complication", {"age": 25, "serious_complication": True}, {"orange"}, {"serious_complication"}),
    ("life-threatening condition", {"age": 25, "life_threatening": True}, {"red"}, {"life_threatening"}),
    ("hepatitis B only: green + purple", {"age": 26, "hepatitis": True}, {"green", "purple"}, {"hepatitis"}),
    ("syphilis with age 36: yellow + purple", {"age": 36, "syphilis": True}, {"yellow", "purple"},
     {"age_35_plus", "syphilis"}),
    ("HIV with BMI 30: orange + purple", {"age": 30, "bmi": 30.2, "hiv": True}, {"orange", "purple"},
     {"bmi_28_plus", "hiv"}),
    ("TB with a life-threatening condition: red + purple", {"age": 30, "tb": True, "life_threatening": True},
     {"red", "purple"}, {"tb", "life_threatening"}),
    ("two infections: one purple", {"age": 30, "hepatitis": True, "syphilis": True}, {"green", "purple"},
     {"hepatitis", "syphilis"}),
    ("scarred uterus and twins: still yellow", {"age": 30, "scarred_uterus": True, "twins": True}, {"yellow"},
     {"scarred_uterus", "twins"}),
    ("yellow and orange facts: orange wins", {"age": 36, "gdm": True, "bmi": 31}, {"orange"},
     {"age_35_plus", "gdm", "bmi_28_plus"}),
    ("orange and red facts: red wins", {"age": 41, "serious_complication": True, "life_threatening": True},
     {"red"}, {"age_40_plus", "serious_complication", "life_threatening"}),
    ("everything at once", {"age": 42, "bmi": 29, "scarred_uterus": True, "gdm": True, "twins": True,
                            "serious_complication": True, "life_threatening": True, "hepatitis": True,
                            "syphilis": True, "hiv": True, "tb": True}, {"red", "purple"},
     {"age_40_plus", "bmi_28_plus", "scarred_uterus", "gdm", "twins", "serious_complication", "life_threatening",
      "hepatitis", "syphilis", "hiv", "tb"}),
    ("nothing known: green", {}, {"green"}, set()),
]


@pytest.mark.parametrize(("case", "facts", "colours", "reasons"), TABLE, ids=[t[0] for t in TABLE])
def test_grade_table(case, facts, colours, reasons):
    g = grade(RiskFacts(**facts), VALUES)
    assert g.colours == colours, case
    assert set(g.reasons) == reasons, case
    assert g.purple == ("purple" in colours)
    assert g.colour in {"green", "yellow", "orange", "red"}
    assert g.case_management == (g.colour in {"orange", "red"})  # R11.2: orange and above


def test_table_is_big_enough_and_covers_every_colour():
    assert len(TABLE) >= 20
    seen = set().union(*(t[2] for t in TABLE))
    assert seen == {"green", "yellow", "orange", "red", "purple"}


def test_thresholds_are_rule_data():
    """Changing the rule values moves the boundaries: nothing is hard-coded in grade()."""
    assert grade(RiskFacts(age=35), {**VALUES, "yellow_age_min": 36}).colour == "green"
    assert grade(RiskFacts(age=38), {**VALUES, "orange_age_min": 38}).colour == "orange"
    assert grade(RiskFacts(age=20), {**VALUES, "yellow_age_max": 20}).colour == "yellow"
    assert grade(RiskFacts(bmi=27.0), {**VALUES, "orange_bmi_min": 27}).colour == "orange"


def test_seeded_rule_row_matches_r11_2():
    row = SEED["risk_grading"]
    assert row["rule_set"] == "maternal_child" and row["confidence"] == "S" and "R11.2" in row["citation"]
    assert row["value"] == VALUES


def test_facts_from_a_mapping_ignore_unknown_keys_and_read_booleans():
    f = RiskFacts.from_mapping({"gdm": "true", "twins": False, "bmi": "28.4", "weight": 60, "hiv": "on"})
    assert f.gdm and not f.twins and f.hiv and f.bmi == pytest.approx(28.4)
    assert grade(f, VALUES).colours == {"orange", "purple"}
