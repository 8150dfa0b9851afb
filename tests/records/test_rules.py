"""RULES R1.4 / R1.6 as pure functions."""

from __future__ import annotations

import datetime as dt

import pytest

from onetrip.records import rules

DEFAULTS = {"validity_days.chemistry": 7, "validity_days.haematology": 3, "validity_days.CT": 30,
            "validity_days.MR": 30, "validity_days.XR": 30, "validity_days.US": 14}
NOW = dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC)


@pytest.mark.parametrize(("section", "age_days", "expected"), [
    ("chemistry", 6, True), ("chemistry", 8, False), ("haematology", 2, True), ("haematology", 4, False),
    ("CT", 29, True), ("CT", 31, False), ("US", 13, True), ("US", 15, False), (None, 1, False),
])
def test_r1_6_window_by_section(section, age_days, expected):
    days = rules.validity_days(DEFAULTS, ["2345-7"], section)
    assert rules.within_window(NOW - dt.timedelta(days=age_days), days, NOW) is expected


def test_r1_6_an_items_own_window_beats_its_section():
    windows = {**DEFAULTS, "validity_days.4548-4": 90}  # HbA1c
    assert rules.validity_days(windows, ["4548-4", None], "chemistry") == 90
    assert rules.validity_days(windows, [None, "LOCAL1"], "chemistry") == 7


def test_classify_and_mark():
    assert rules.classify(["LAB", "HM"]) == ("lab", "haematology")
    assert rules.classify(["RUS"]) == ("ultrasound", "US")
    assert rules.classify(["whatever"]) == ("other", None)
    assert rules.is_recognition_mark("HR") and rules.is_recognition_mark("浙HR")
    assert not rules.is_recognition_mark(None) and not rules.is_recognition_mark("H")
