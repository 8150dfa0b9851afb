"""Each classification and prescription rule read from the ``family`` rule table: the test records the
same follow-up (or issues the same prescription) before and after changing the value in the table, and
the outcome changes. If the code ignored the table (a hard-coded number), these tests fail."""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager

import pytest

from onetrip.family import common, contracts, prescriptions
from onetrip.family.figures import service as figures
from onetrip.family.followups import service as followups
from onetrip.family.worklist import service as worklist
from onetrip.kit.errors import Unprocessable
from onetrip.kit.principal import cli_principal
from onetrip.rules.service import rule_values, set_rule
from tests.family.conftest import doctor_principal, enrolled


@contextmanager
def rule(db, key: str, value):
    """Set ``family.<key>`` for today, restore it afterwards."""
    with db.session() as s:
        old = rule_values(s, "family")[key]
        set_rule(s, "family", key, value, by="test")
        s.commit()
    try:
        yield
    finally:
        with db.session() as s:
            set_rule(s, "family", key, old, by="test")
            s.commit()


def followup(db, fam, programme="hypertension", *, birth=dt.date(1970, 1, 1), prior: list[dict] | None = None,
             **values):
    """A fresh enrolled patient, optional earlier follow-ups, then the follow-up under test."""
    _, reg = enrolled(db, fam, programme, birth=birth)
    with db.session() as s:
        for i, p in enumerate(prior or []):
            followups.record_followup(s, doctor_principal(fam), reg,
                                    visit_date=common.today() - dt.timedelta(days=30 - i), **p)
        fu = followups.record_followup(s, doctor_principal(fam), reg, **values)
        s.commit()
        return fu


CASES = [
    # (rule key, new value, follow-up, outcome before, outcome after, what we compare)
    ("R3.5_target_sbp", 150, {"sbp": 145, "dbp": 80}, "uncontrolled_first", "controlled", "classification"),
    ("R3.5_target_dbp", 95, {"sbp": 130, "dbp": 92}, "uncontrolled_first", "controlled", "classification"),
    ("R3.5_target_fasting_glucose", 8.0, {"fasting_glucose": 7.5}, "uncontrolled_first", "controlled",
     "classification"),
    ("R3.4_urgent_sbp", 200, {"sbp": 185, "dbp": 100}, "urgent", "uncontrolled_first", "classification"),
    ("R3.4_urgent_dbp", 120, {"sbp": 150, "dbp": 112}, "urgent", "uncontrolled_first", "classification"),
    ("R3.4_urgent_glucose_high", 20.0, {"fasting_glucose": 17.0}, "urgent", "uncontrolled_first", "classification"),
    ("R3.4_urgent_glucose_low", 3.0, {"fasting_glucose": 3.5}, "urgent", "controlled", "classification"),
    ("R3.4_urgent_symptoms", [], {"sbp": 130, "dbp": 80, "symptoms": ["vomiting"]}, "urgent", "controlled",
     "classification"),
    ("R3.2_followup_interval_days", 60, {"sbp": 130, "dbp": 80}, 90, 60, "days_to_next"),
    ("R3.3_recheck_days", 7, {"sbp": 150, "dbp": 95}, 14, 7, "days_to_next"),
]


@pytest.mark.parametrize(("key", "value", "values", "before", "after", "what"), CASES, ids=[c[0] for c in CASES])
def test_classification_rule_follows_the_table(db, fam, key, value, values, before, after, what):
    programme = "diabetes" if "fasting_glucose" in values else "hypertension"

    def outcome():
        fu = followup(db, fam, programme, **values)
        return fu.classification if what == "classification" else (fu.next_due_date - fu.visit_date).days

    assert outcome() == before
    with rule(db, key, value):
        assert outcome() == after


def test_r33_refer_after_uncontrolled_follows_the_table(db, fam):
    prior = [{"sbp": 150, "dbp": 95}]
    assert followup(db, fam, prior=prior, sbp=150, dbp=95).classification == "uncontrolled_repeat"
    with rule(db, "R3.3_refer_after_uncontrolled", 3):
        assert followup(db, fam, prior=prior, sbp=150, dbp=95).classification == "uncontrolled_first"


def test_r35_elderly_target_follows_the_table(db, fam):
    elderly = dt.date(1940, 1, 1)
    assert followup(db, fam, birth=elderly, sbp=145, dbp=80).classification == "controlled"
    with rule(db, "R3.5_elderly_age", 90):
        assert followup(db, fam, birth=elderly, sbp=145, dbp=80).classification == "uncontrolled_first"
    with rule(db, "R3.5_elderly_target_sbp", 140):
        assert followup(db, fam, birth=elderly, sbp=145, dbp=80).classification == "uncontrolled_first"


# --- long prescriptions (R4) ----------------------------------------------------------------------

def stable_patient(db, fam) -> str:
    pid, reg = enrolled(db, fam)
    with db.session() as s:
        for days in (60, 30):
            followups.record_followup(s, cli_principal(), reg, visit_date=common.today() - dt.timedelta(days=days),
                                    sbp=128, dbp=78, adherence="regular")
        s.commit()
    return pid


def issue(db, fam, pid, weeks, *, drug_class="antihypertensive", assessment="病情稳定，依从性好", confirmed=True,
          indication=None):
    with db.session() as s:
        try:
            prescriptions.issue_long_prescription(s, doctor_principal(fam), person_id=pid, weeks=weeks,
                                            items=[{"drug": "氨氯地平片", "drug_class": drug_class,
                                                    "indication": indication}],
                                            assessment=assessment, patient_confirmed=confirmed)
        except Unprocessable as e:
            s.rollback()
            return e.expression
        s.commit()
        return "issued"


def test_r42_long_max_weeks_follows_the_table(db, fam):
    pid = stable_patient(db, fam)
    assert issue(db, fam, pid, 12) == "issued"
    with rule(db, "R4.2_long_max_weeks", 8):
        assert issue(db, fam, pid, 12) == ["too-long"]


def test_r42_default_max_weeks_follows_the_table(db, fam):
    pid = stable_patient(db, fam)
    assert issue(db, fam, pid, 6, assessment=None, confirmed=False) == ["no-assessment", "no-confirmation"]
    with rule(db, "R4.2_default_max_weeks", 6):
        assert issue(db, fam, pid, 6, assessment=None, confirmed=False) == "issued"


def test_r41_stable_followups_follows_the_table(db, fam):
    pid = stable_patient(db, fam)  # two controlled follow-ups
    assert issue(db, fam, pid, 8) == "issued"
    with rule(db, "R4.1_stable_followups", 3):
        assert issue(db, fam, pid, 8) == ["not-stable"]


def test_r43_excluded_classes_follow_the_table(db, fam):
    pid = stable_patient(db, fam)
    assert issue(db, fam, pid, 4, drug_class="narcotic") == ["excluded-class"]
    with rule(db, "R4.3_excluded_classes", ["toxic"]):
        assert issue(db, fam, pid, 4, drug_class="narcotic") == "issued"


def test_r43_antimicrobial_exceptions_follow_the_table(db, fam):
    pid = stable_patient(db, fam)
    assert issue(db, fam, pid, 4, drug_class="antimicrobial", indication="tuberculosis") == "issued"
    with rule(db, "R4.3_antimicrobial_exceptions", []):
        assert issue(db, fam, pid, 4, drug_class="antimicrobial", indication="tuberculosis") == ["excluded-class"]


def test_r51_min_term_follows_the_table(db, fam):
    from onetrip.kit.errors import BadRequest
    from tests.family.conftest import resident

    pid = resident(db, fam)
    start = common.today()
    with db.session() as s, pytest.raises(BadRequest):
        contracts.sign_contract(s, cli_principal(), person_id=pid, team_id=fam.team, start_date=start,
                              end_date=start + dt.timedelta(days=200))
    with rule(db, "R5.1_min_term_years", 0), db.session() as s:
        c = contracts.sign_contract(s, cli_principal(), person_id=pid, team_id=fam.team, start_date=start,
                                  end_date=start + dt.timedelta(days=200))
        assert c.status == "active"
        s.rollback()


# --- worklist, figures and self-check thresholds -----------------------------------------------------

def test_r35_lost_after_days_follows_the_table(db, fam):
    _, reg = enrolled(db, fam, enrolled_on=common.today() - dt.timedelta(days=400))
    with db.session() as s:  # controlled 150 days ago → due 60 days ago
        followups.record_followup(s, cli_principal(), reg, visit_date=common.today() - dt.timedelta(days=150),
                                sbp=120, dbp=75)
        s.commit()

    def bucket():
        with db.session() as s:
            items = worklist.build(s, cli_principal(), team_id=fam.team, limit=500)["items"]
            return next(i["bucket"] for i in items if i["registry_id"] == reg)

    assert bucket() == "overdue"
    with rule(db, "R3.5_lost_after_days", 30):
        assert bucket() == "lost"


def test_r36_standard_followups_follows_the_table(db, fam):
    _, reg = enrolled(db, fam, enrolled_on=dt.date(common.today().year, 1, 1))
    with db.session() as s:
        for days in (3, 2, 1):
            followups.record_followup(s, cli_principal(), reg, visit_date=common.today() - dt.timedelta(days=days),
                                    sbp=120, dbp=75)
        s.commit()

    def standard():
        with db.session() as s:
            figs = figures.compute_figures(s, cli_principal(), level="team")
            return figs["programmes"]["hypertension"]["by"][fam.team]["standard"]

    before = standard()
    with rule(db, "R3.6_standard_followups", 3):
        assert standard() == before + 1


@pytest.mark.parametrize(("key", "value", "reading", "before", "after"), [
    ("reading_alert_sbp_high", 190, {"sbp": 182, "dbp": 95}, ["sbp_high"], []),
    ("reading_alert_dbp_high", 115, {"sbp": 150, "dbp": 111}, ["dbp_high"], []),
    ("reading_alert_sbp_low", 80, {"sbp": 85, "dbp": 55}, ["sbp_low"], []),
    ("reading_alert_glucose_high", 20.0, {"glucose": 17.0}, ["glucose_high"], []),
    ("reading_alert_glucose_low", 3.0, {"glucose": 3.5}, ["glucose_low"], []),
])
def test_reading_alert_thresholds_follow_the_table(db, fam, key, value, reading, before, after):
    from onetrip.family.readings import store_reading

    pid, _ = enrolled(db, fam)

    def alerts():
        with db.session() as s:
            r, _ = store_reading(s, cli_principal(), person_id=pid, measured_at=None, **reading)
            s.commit()
            return r.alerts

    assert alerts() == before
    with rule(db, key, value):
        assert alerts() == after
