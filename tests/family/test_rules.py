"""The pure rules (R3.3–R3.5, R4, R5) on plain data, edge by edge. The rule-table tests that change a
value in the database and see the outcome change are in test_rule_table.py."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from importlib import resources

from onetrip.family import rules
from onetrip.family.rules import Params, RxFacts, RxItem, Visit

P = Params()
D = dt.date(2026, 5, 1)


def hv(sbp, dbp, age=60, **kw) -> Visit:
    return Visit(programme=rules.HYPERTENSION, visit_date=D, age=age, sbp=sbp, dbp=dbp, **kw)


def dv(fpg, **kw) -> Visit:
    return Visit(programme=rules.DIABETES, visit_date=D, age=60, fasting_glucose=fpg, **kw)


def test_params_defaults_equal_the_seeded_rule_table():
    seeded = {r["key"]: r["value"] for r in json.loads(
        resources.files("onetrip.db.seeds").joinpath("rules_family.json").read_text("utf-8"))}
    assert Params.from_rule_values(seeded) == Params()
    assert all(k.startswith(("R3.", "R4.", "R5.", "reading_alert", "worklist")) for k in seeded)


def test_r35_at_target_edges_and_elderly_target():
    assert rules.at_target(hv(139, 89), P) and not rules.at_target(hv(140, 80), P)
    assert not rules.at_target(hv(130, 90), P)
    assert rules.at_target(hv(149, 80, age=65), P) and not rules.at_target(hv(149, 80, age=64), P)
    assert rules.at_target(dv(6.9), P) and not rules.at_target(dv(7.0), P)
    assert not rules.at_target(Visit(programme=rules.DIABETES, visit_date=D), P)  # not measured


def test_r34_urgent_reasons():
    assert rules.urgent_reasons(hv(180, 100), P) == ["R3.4:sbp"]
    assert rules.urgent_reasons(hv(185, 112), P) == ["R3.4:sbp", "R3.4:dbp"]
    assert rules.urgent_reasons(hv(179, 109), P) == []
    assert rules.urgent_reasons(dv(16.7), P) == ["R3.4:glucose_high"]
    assert rules.urgent_reasons(dv(3.9), P) == ["R3.4:glucose_low"]
    assert rules.urgent_reasons(dv(4.0), P) == []
    assert rules.urgent_reasons(hv(130, 80, symptoms=frozenset({"vomiting", "cough"})), P) == ["R3.4:symptom:vomiting"]
    assert rules.urgent_reasons(hv(142, 85, pregnant_or_lactating=True), P) == ["R3.4:pregnancy_bp"]


def test_r33_classification_and_next_due():
    c = rules.classify(hv(130, 80), 1, P)
    assert (c.code, c.action, c.next_due, c.consecutive_uncontrolled) == ("controlled", "continue",
                                                                          D + dt.timedelta(days=90), 0)
    c = rules.classify(hv(150, 95), 0, P)
    assert (c.code, c.action, c.next_due, c.consecutive_uncontrolled) == ("uncontrolled_first", "adjust",
                                                                          D + dt.timedelta(days=14), 1)
    c = rules.classify(hv(150, 95), 1, P)
    assert (c.code, c.action, c.consecutive_uncontrolled) == ("uncontrolled_repeat", "refer", 2)
    assert rules.classify(hv(130, 80, adverse_reaction=True), 0, P).code == "adverse_reaction"
    assert rules.classify(hv(130, 80, complication=True), 0, P).action == "refer"
    c = rules.classify(hv(185, 112), 0, P)
    assert c.code == "urgent" and c.action == "refer_urgent" and c.refer and "R3.4" in c.rules


def test_lost_and_worklist_buckets():
    today = dt.date(2026, 6, 1)
    assert rules.worklist_bucket(today - dt.timedelta(days=91), today, P) == "lost"
    assert rules.worklist_bucket(today - dt.timedelta(days=90), today, P) == "overdue"
    assert rules.worklist_bucket(today + dt.timedelta(days=14), today, P) == "due"
    assert rules.worklist_bucket(today + dt.timedelta(days=15), today, P) is None
    assert rules.on_schedule(today, today) and not rules.on_schedule(today, today - dt.timedelta(days=1))


def test_r53_key_groups():
    on = dt.date(2026, 6, 1)
    assert rules.key_groups(dt.date(1961, 6, 1), on, [], [], P) == ["elderly"]
    assert rules.key_groups(dt.date(1961, 6, 2), on, ["hypertension"], [], P) == ["hypertension"]
    assert rules.key_groups(dt.date(2019, 6, 2), on, [], [], P) == ["children_0_6"]
    assert rules.key_groups(dt.date(2019, 6, 1), on, [], [], P) == []  # 7 today
    assert rules.key_groups(dt.date(1995, 1, 1), on, ["diabetes"], ["pregnant", "bogus"], P, sex="2") == \
        ["diabetes", "pregnant"]
    assert rules.key_groups(dt.date(1995, 1, 1), on, [], ["pregnant"], P, sex="1") == []


def test_r51_term():
    assert rules.check_term(dt.date(2026, 1, 1), dt.date(2026, 12, 31), P) is None
    assert rules.check_term(dt.date(2026, 1, 1), dt.date(2026, 12, 30), P) is not None
    assert rules.check_term(dt.date(2024, 2, 29), dt.date(2025, 2, 27), P) is None


def test_r4_long_prescription():
    good = RxFacts(enrolled=True, latest_controlled=[True, True, False], adherence="regular")
    items = [RxItem("氨氯地平片", "antihypertensive")]
    assert rules.check_long_prescription(items, 12, good, assessment="stable", patient_confirmed=True, p=P) == []
    assert [x.code for x in rules.check_long_prescription(items, 13, good, assessment="x", patient_confirmed=True,
                                                           p=P)] == ["too-long"]
    assert {x.code for x in rules.check_long_prescription(items, 8, good, assessment="", patient_confirmed=False,
                                                           p=P)} == {"no-assessment", "no-confirmation"}
    assert rules.check_long_prescription(items, 4, RxFacts(False, [], None), assessment=None, patient_confirmed=False,
                                         p=P) == []  # within the default length: no R4.1/R4.2 extras
    unstable = RxFacts(enrolled=True, latest_controlled=[True, False], adherence="intermittent")
    assert {x.code for x in rules.check_long_prescription(items, 8, unstable, assessment="x", patient_confirmed=True,
                                                           p=P)} == {"not-stable", "adherence"}
    for cls in sorted(P.excluded_classes):
        probs = rules.check_long_prescription([RxItem("x", cls)], 4, good, assessment=None, patient_confirmed=False, p=P)
        assert [x.rule for x in probs] == ["R4.3"], cls
    tb = [RxItem("异烟肼", "antimicrobial", indication="tuberculosis")]
    assert rules.check_long_prescription(tb, 4, good, assessment=None, patient_confirmed=False, p=P) == []
    assert rules.check_long_prescription(tb, 4, good, assessment=None, patient_confirmed=False,
                                         p=replace(P, antimicrobial_exceptions=frozenset()))[0].rule == "R4.3"


def test_reading_alerts_and_trend():
    assert rules.reading_alerts(185, 112, None, P) == ["sbp_high", "dbp_high"]
    assert rules.reading_alerts(85, 50, 3.5, P) == ["sbp_low", "glucose_low"]
    assert rules.reading_alerts(130, 80, 6.0, P) == []
    today = dt.date(2026, 6, 30)
    values = [(today - dt.timedelta(days=d), 150.0) for d in range(14)] + \
             [(today - dt.timedelta(days=d), 130.0) for d in range(14, 28)]
    t = rules.trend(values, today)
    assert t == {"recent_mean": 150.0, "previous_mean": 130.0, "direction": "up", "count": 14}
