"""The pure recognition rules, each tied to RULES §1."""

from __future__ import annotations

import datetime as dt

from onetrip.recognition import rules

NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
CMP = rules.OrderItem("CMP", "24323-8", "lab", 7)
CT = rules.OrderItem("CT-HEAD", "24725-4", "imaging", 30)
TOP = rules.Issuer("3A", "mc1")
BRANCH = rules.Issuer("1A", "mc1")
OTHER_COUNTY = rules.Issuer("1A", "mc2")


def prior(*, days=1.0, mark="HR", issuer=TOP, category="lab", code="24323-8", local=None, data=True):
    return rules.PriorResult("p", code, local, category, NOW - dt.timedelta(days=days), mark, data, issuer)


def test_window_edge_r1_6():
    assert rules.failures(CMP, TOP, prior(days=7), {}, 7, NOW) == []
    late = rules.PriorResult("p", "24323-8", None, "lab", NOW - dt.timedelta(days=7, seconds=1), "HR", True, TOP)
    assert rules.failures(CMP, TOP, late, {}, 7, NOW) == ["window"]
    assert "window" in rules.failures(CMP, TOP, prior(days=1), {}, None, NOW)  # no window known → not offered


def test_ineligible_issuer_r1_4():
    assert rules.failures(CMP, TOP, prior(mark=None), {}, 7, NOW) == ["mark"]
    assert rules.failures(CMP, TOP, prior(mark="AB"), {}, 7, NOW) == ["mark"]
    assert rules.failures(CMP, TOP, prior(mark="浙HR"), {}, 7, NOW) == []
    no_qc = rules.Issuer("3A", "mc1", qc_passed=False)
    assert rules.failures(CMP, TOP, prior(issuer=no_qc), {}, 7, NOW) == ["mark"]


def test_lower_accepts_higher_and_same_grade_r1_5():
    assert rules.tier_allows(BRANCH, TOP, "lab") is True  # 一级 accepts 三级
    assert rules.tier_allows(TOP, BRANCH, "lab") is False  # 三级 does not accept 一级 lab
    assert rules.tier_allows(rules.Issuer("3B", None), rules.Issuer("3A", None), "lab") is True  # same grade
    assert rules.failures(CMP, TOP, prior(issuer=BRANCH), {}, 7, NOW) == ["tier"]


def test_community_imaging_r1_5():
    assert rules.tier_allows(TOP, BRANCH, "imaging") is True  # same community, imaging
    assert rules.tier_allows(TOP, BRANCH, "ultrasound") is True
    assert rules.tier_allows(TOP, OTHER_COUNTY, "imaging") is False  # other community, lower grade
    assert rules.failures(CT, TOP, prior(issuer=BRANCH, category="imaging", code="24725-4"), {}, 30, NOW) == []


def test_same_or_equivalent_item_r1_2():
    assert rules.same_item(CMP, "24323-8", None, {})
    assert rules.same_item(CMP, None, "CMP", {})
    assert rules.same_item(CMP, None, "SH-CMP", {"SH-CMP": "24323-8"})  # catalogue mapping local → standard
    assert not rules.same_item(CMP, "2345-7", "GLU", {"GLU": "2345-7"})
    assert rules.failures(CMP, TOP, prior(code="2345-7"), {}, 7, NOW) == ["item"]


def test_conclusion_alone_not_recognised_r1_1():
    assert rules.failures(CMP, TOP, prior(data=False), {}, 7, NOW) == ["data"]
    assert rules.carries_data("imaging", False) is True


def test_override_reasons_r1_3():
    reasons = {"07": False, "99": True}
    assert rules.override_error(None, reasons, None) == "reason"
    assert rules.override_error("42", reasons, None) == "reason"
    assert rules.override_error("07", reasons, None) is None
    assert rules.override_error("99", reasons, " ") == "disease"
    assert rules.override_error("99", reasons, "2型糖尿病") is None


def test_item_scope_r1_6():
    """R1.6 scope: a community-scoped item is recognised only inside the orderer's medical community; city and
    province scopes reach every member institution; an unknown scope is as narrow as community."""
    assert rules.scope_allows("community", BRANCH, TOP) is True
    assert rules.scope_allows("community", OTHER_COUNTY, TOP) is False
    assert rules.scope_allows("community", rules.Issuer("3A", None), rules.Issuer("3A", None)) is False
    assert rules.scope_allows("city", OTHER_COUNTY, TOP) is True
    assert rules.scope_allows("province", OTHER_COUNTY, TOP) is True
    assert rules.scope_allows("street", OTHER_COUNTY, TOP) is False
    assert rules.failures(CMP, OTHER_COUNTY, prior(), {}, 7, NOW, "community") == ["scope"]
    assert rules.failures(CMP, OTHER_COUNTY, prior(), {}, 7, NOW, "city") == []
