"""Family-doctor and chronic-care rules — pure functions over plain data (STYLE 4).

Every number comes from the ``family`` rule table (db/seeds/rules_family.json); its key starts with the
RULES.md number it implements, so an operator can change a threshold without a release and the tests
change the value in the table to see the outcome change.

R3.3  classification after each follow-up and the next due date       → ``classify``
R3.4  urgent-referral triggers                                          → ``urgent_reasons``
R3.5  at target (controlled), lost to follow-up                         → ``at_target``, ``is_lost``
R4.1  long-prescription eligibility; R4.2 length, assessment and confirmation; R4.3 excluded classes
                                                                        → ``check_long_prescription``
R5.1  contract term                                                     → ``check_term``
R5.3  key groups (重点人群)                                             → ``key_groups``
Self-check reading alerts (thresholds from R3.4 [U])                    → ``reading_alerts``
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

HYPERTENSION, DIABETES = "hypertension", "diabetes"
PROGRAMMES = (HYPERTENSION, DIABETES)

# Key groups (重点人群, R5.3). Derived ones come from age and registries; the others are declared at
# signing (the contract records them) because their source registries are other domains'.
ELDERLY, CHILDREN, PREGNANT = "elderly", "children_0_6", "pregnant"
DECLARABLE_GROUPS = ("pregnant", "disabled", "severe_mental_illness", "tuberculosis", "low_income")
KEY_GROUPS = (ELDERLY, HYPERTENSION, DIABETES, CHILDREN, *DECLARABLE_GROUPS)

# Classification codes (R3.3).
CONTROLLED = "controlled"
UNCONTROLLED_FIRST = "uncontrolled_first"
ADVERSE_REACTION = "adverse_reaction"
UNCONTROLLED_REPEAT = "uncontrolled_repeat"
COMPLICATION = "complication"
URGENT = "urgent"


@dataclass(frozen=True)
class Params:
    """The ``family`` rule table as typed values (defaults = the seeded values)."""

    target_min_age: int = 35  # R3.1
    interval_days: int = 90  # R3.2
    glucose_tests_per_year: int = 4  # R3.2
    recheck_days: int = 14  # R3.3
    refer_after_uncontrolled: int = 2  # R3.3
    urgent_sbp: float = 180  # R3.4
    urgent_dbp: float = 110
    urgent_glucose_high: float = 16.7
    urgent_glucose_low: float = 3.9
    urgent_symptoms: frozenset[str] = frozenset({"altered_consciousness", "severe_headache", "severe_dizziness",
                                                 "vomiting", "blurred_vision", "chest_tightness", "cannot_lie_flat"})
    target_sbp: float = 140  # R3.5
    target_dbp: float = 90
    elderly_age: int = 65
    elderly_target_sbp: float = 150
    target_fasting_glucose: float = 7.0
    lost_after_days: int = 90
    standard_followups: int = 4  # R3.6
    hypertension_prevalence: float = 0.275
    diabetes_prevalence: float = 0.119
    prevalence_min_age: int = 18
    stable_followups: int = 2  # R4.1
    default_max_weeks: int = 4  # R4.2
    long_max_weeks: int = 12
    excluded_classes: frozenset[str] = frozenset({"toxic", "radioactive", "narcotic", "psychotropic_1",
                                                  "psychotropic_2", "antimicrobial", "special_storage"})  # R4.3
    antimicrobial_exceptions: frozenset[str] = frozenset({"tuberculosis", "chronic_infection"})
    min_term_years: int = 1  # R5.1
    renewal_window_days: int = 30
    key_elderly_age: int = 65  # R5.3
    key_child_max_age: int = 6
    alert_sbp_high: float = 180
    alert_dbp_high: float = 110
    alert_sbp_low: float = 90
    alert_glucose_high: float = 16.7
    alert_glucose_low: float = 3.9
    due_days: int = 14

    @classmethod
    def from_rule_values(cls, v: dict[str, object]) -> Params:
        d = cls()

        def num(key: str, default: float) -> float:
            return float(v.get(key, default))  # type: ignore[arg-type]

        def whole(key: str, default: int) -> int:
            return int(v.get(key, default))  # type: ignore[arg-type]

        def names(key: str, default: frozenset[str]) -> frozenset[str]:
            return frozenset(v.get(key, default))  # type: ignore[arg-type]

        return cls(
            target_min_age=whole("R3.1_target_min_age", d.target_min_age),
            interval_days=whole("R3.2_followup_interval_days", d.interval_days),
            glucose_tests_per_year=whole("R3.2_glucose_tests_per_year", d.glucose_tests_per_year),
            recheck_days=whole("R3.3_recheck_days", d.recheck_days),
            refer_after_uncontrolled=whole("R3.3_refer_after_uncontrolled", d.refer_after_uncontrolled),
            urgent_sbp=num("R3.4_urgent_sbp", d.urgent_sbp), urgent_dbp=num("R3.4_urgent_dbp", d.urgent_dbp),
            urgent_glucose_high=num("R3.4_urgent_glucose_high", d.urgent_glucose_high),
            urgent_glucose_low=num("R3.4_urgent_glucose_low", d.urgent_glucose_low),
            urgent_symptoms=names("R3.4_urgent_symptoms", d.urgent_symptoms),
            target_sbp=num("R3.5_target_sbp", d.target_sbp), target_dbp=num("R3.5_target_dbp", d.target_dbp),
            elderly_age=whole("R3.5_elderly_age", d.elderly_age),
            elderly_target_sbp=num("R3.5_elderly_target_sbp", d.elderly_target_sbp),
            target_fasting_glucose=num("R3.5_target_fasting_glucose", d.target_fasting_glucose),
            lost_after_days=whole("R3.5_lost_after_days", d.lost_after_days),
            standard_followups=whole("R3.6_standard_followups", d.standard_followups),
            hypertension_prevalence=num("R3.6_hypertension_prevalence", d.hypertension_prevalence),
            diabetes_prevalence=num("R3.6_diabetes_prevalence", d.diabetes_prevalence),
            prevalence_min_age=whole("R3.6_prevalence_min_age", d.prevalence_min_age),
            stable_followups=whole("R4.1_stable_followups", d.stable_followups),
            default_max_weeks=whole("R4.2_default_max_weeks", d.default_max_weeks),
            long_max_weeks=whole("R4.2_long_max_weeks", d.long_max_weeks),
            excluded_classes=names("R4.3_excluded_classes", d.excluded_classes),
            antimicrobial_exceptions=names("R4.3_antimicrobial_exceptions", d.antimicrobial_exceptions),
            min_term_years=whole("R5.1_min_term_years", d.min_term_years),
            renewal_window_days=whole("R5.1_renewal_window_days", d.renewal_window_days),
            key_elderly_age=whole("R5.3_elderly_age", d.key_elderly_age),
            key_child_max_age=whole("R5.3_child_max_age", d.key_child_max_age),
            alert_sbp_high=num("reading_alert_sbp_high", d.alert_sbp_high),
            alert_dbp_high=num("reading_alert_dbp_high", d.alert_dbp_high),
            alert_sbp_low=num("reading_alert_sbp_low", d.alert_sbp_low),
            alert_glucose_high=num("reading_alert_glucose_high", d.alert_glucose_high),
            alert_glucose_low=num("reading_alert_glucose_low", d.alert_glucose_low),
            due_days=whole("worklist_due_days", d.due_days),
        )


def age_on(birth_date: dt.date | None, on: dt.date) -> int | None:
    """Completed years on ``on``."""
    if birth_date is None:
        return None
    return on.year - birth_date.year - ((on.month, on.day) < (birth_date.month, birth_date.day))


# --- R3.4 / R3.5 ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Visit:
    """What a follow-up measured and found (plain data for the rules)."""

    programme: str
    visit_date: dt.date
    age: int | None = None
    sbp: float | None = None
    dbp: float | None = None
    fasting_glucose: float | None = None
    random_glucose: float | None = None
    symptoms: frozenset[str] = frozenset()
    adverse_reaction: bool = False
    complication: bool = False  # new or worse complication
    pregnant_or_lactating: bool = False


def at_target(v: Visit, p: Params) -> bool:
    """R3.5: hypertension BP <140/90 (age ≥65: SBP <150); diabetes fasting glucose <7.0 mmol/L. A visit
    without the measurement its programme needs is not at target (it cannot be shown to be)."""
    if v.programme == HYPERTENSION:
        if v.sbp is None or v.dbp is None:
            return False
        sbp_target = p.elderly_target_sbp if v.age is not None and v.age >= p.elderly_age else p.target_sbp
        return v.sbp < sbp_target and v.dbp < p.target_dbp
    if v.fasting_glucose is None:
        return False
    return v.fasting_glucose < p.target_fasting_glucose


def urgent_reasons(v: Visit, p: Params) -> list[str]:
    """R3.4: the reasons for an urgent referral (empty = none). Codes: ``R3.4:sbp``, ``R3.4:dbp``,
    ``R3.4:glucose_high``, ``R3.4:glucose_low``, ``R3.4:symptom:<name>``, ``R3.4:pregnancy_bp``."""
    out = []
    if v.sbp is not None and v.sbp >= p.urgent_sbp:
        out.append("R3.4:sbp")
    if v.dbp is not None and v.dbp >= p.urgent_dbp:
        out.append("R3.4:dbp")
    glucose = [g for g in (v.fasting_glucose, v.random_glucose) if g is not None]
    if any(g >= p.urgent_glucose_high for g in glucose):
        out.append("R3.4:glucose_high")
    if any(g <= p.urgent_glucose_low for g in glucose):
        out.append("R3.4:glucose_low")
    out.extend(f"R3.4:symptom:{s}" for s in sorted(v.symptoms & p.urgent_symptoms))
    if v.pregnant_or_lactating and v.sbp is not None and v.dbp is not None and \
            (v.sbp >= p.target_sbp or v.dbp >= p.target_dbp):
        out.append("R3.4:pregnancy_bp")
    return out


# --- R3.3 -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Classification:
    code: str  # CONTROLLED, UNCONTROLLED_FIRST, ADVERSE_REACTION, UNCONTROLLED_REPEAT, COMPLICATION, URGENT
    controlled: bool  # R3.5 at target
    action: str  # continue | adjust | refer | refer_urgent
    next_due: dt.date
    consecutive_uncontrolled: int
    urgent_reasons: tuple[str, ...] = ()
    rules: tuple[str, ...] = field(default=("R3.3", "R3.5"))

    @property
    def refer(self) -> bool:
        return self.action in ("refer", "refer_urgent")


def classify(v: Visit, previous_uncontrolled: int, p: Params) -> Classification:
    """R3.3 after a follow-up. ``previous_uncontrolled`` = consecutive uncontrolled follow-ups before this one.

    - R3.4 urgent trigger → urgent referral, follow up within ``recheck_days`` (R2.5: within 2 weeks);
    - controlled → continue, next visit as scheduled (visit + ``interval_days``, R3.2);
    - new/worse complication, or the ``refer_after_uncontrolled``-th consecutive uncontrolled → refer,
      follow up within ``recheck_days``;
    - first uncontrolled or an adverse drug reaction → adjust treatment, follow up within ``recheck_days``.
    """
    controlled = at_target(v, p)
    run = 0 if controlled else previous_uncontrolled + 1
    recheck = v.visit_date + dt.timedelta(days=p.recheck_days)
    urgent = urgent_reasons(v, p)
    if urgent:
        return Classification(URGENT, controlled, "refer_urgent", recheck, run, tuple(urgent), ("R3.3", "R3.4", "R3.5"))
    if v.complication:
        return Classification(COMPLICATION, controlled, "refer", recheck, run)
    if controlled and not v.adverse_reaction:
        return Classification(CONTROLLED, True, "continue", v.visit_date + dt.timedelta(days=p.interval_days), 0)
    if not controlled and run >= p.refer_after_uncontrolled:
        return Classification(UNCONTROLLED_REPEAT, False, "refer", recheck, run)
    if v.adverse_reaction:
        return Classification(ADVERSE_REACTION, controlled, "adjust", recheck, run)
    return Classification(UNCONTROLLED_FIRST, False, "adjust", recheck, run)


def on_schedule(visit_date: dt.date, due: dt.date | None) -> bool:
    """R3.2: a follow-up on or before its due date (a first follow-up always is)."""
    return due is None or visit_date <= due


def is_lost(next_due: dt.date | None, today: dt.date, p: Params) -> bool:
    """R3.5: overdue by more than ``lost_after_days`` → lost to follow-up (失访), counted not at target."""
    return next_due is not None and (today - next_due).days > p.lost_after_days


def worklist_bucket(next_due: dt.date | None, today: dt.date, p: Params) -> str | None:
    """lost | overdue | due (within ``due_days``) | None (not yet due)."""
    if next_due is None:
        return "due"
    if is_lost(next_due, today, p):
        return "lost"
    if next_due < today:
        return "overdue"
    if (next_due - today).days <= p.due_days:
        return "due"
    return None


# --- R5 ---------------------------------------------------------------------------------------------

def key_groups(birth_date: dt.date | None, on: dt.date, programmes: Iterable[str], declared: Iterable[str],
               p: Params, sex: str | None = None) -> list[str]:
    """R5.3 key groups (重点人群): ≥65 (elderly), children 0–6, hypertension and diabetes (enrolled in the
    registry), plus declared groups (pregnant — only for women, disabled, severe mental illness,
    tuberculosis, low income). Sorted in the order of ``KEY_GROUPS``."""
    out: set[str] = set()
    age = age_on(birth_date, on)
    if age is not None and age >= p.key_elderly_age:
        out.add(ELDERLY)
    if age is not None and 0 <= age <= p.key_child_max_age:
        out.add(CHILDREN)
    out.update(g for g in programmes if g in PROGRAMMES)
    for g in declared:
        if g == PREGNANT and sex == "1":
            continue
        if g in DECLARABLE_GROUPS:
            out.add(g)
    return [g for g in KEY_GROUPS if g in out]


def add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def check_term(start: dt.date, end: dt.date, p: Params) -> str | None:
    """R5.1: a term of at least ``min_term_years`` (end is the last day covered). None = fine."""
    if end < start:
        return "end before start"
    if end < add_years(start, p.min_term_years) - dt.timedelta(days=1):
        return f"term shorter than {p.min_term_years} year(s)"
    return None


# --- R4 ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RxItem:
    drug: str
    drug_class: str | None = None  # toxic, narcotic, psychotropic_1, antimicrobial, ... or a normal class
    indication: str | None = None  # for antimicrobials: tuberculosis, chronic_infection


@dataclass(frozen=True)
class RxFacts:
    """What the prescriber knows about the patient (R4.1)."""

    enrolled: bool  # clear diagnosis: in a chronic-disease registry
    latest_controlled: Sequence[bool]  # newest first
    adherence: str | None  # regular | intermittent | none (latest follow-up)


@dataclass(frozen=True)
class RxProblem:
    rule: str
    code: str
    message: str


def long_rx_eligible(f: RxFacts, p: Params) -> list[RxProblem]:
    """R4.1: clear diagnosis, stable control (the latest ``stable_followups`` follow-ups controlled) and
    good adherence."""
    out = []
    if not f.enrolled:
        out.append(RxProblem("R4.1", "no-diagnosis", "未纳入慢病管理（诊断不明确）/ not enrolled in a chronic-disease "
                                                     "registry (no clear diagnosis)"))
    recent = list(f.latest_controlled[: p.stable_followups])
    if len(recent) < p.stable_followups or not all(recent):
        out.append(RxProblem("R4.1", "not-stable", f"最近 {p.stable_followups} 次随访未全部控制 / the latest "
                                                   f"{p.stable_followups} follow-ups were not all controlled"))
    if f.adherence != "regular":
        out.append(RxProblem("R4.1", "adherence", "服药依从性不佳 / medication adherence is not regular"))
    return out


def check_long_prescription(items: Sequence[RxItem], weeks: int, facts: RxFacts, *, assessment: str | None,
                            patient_confirmed: bool, p: Params) -> list[RxProblem]:
    """R4.2–R4.3 (and R4.1 beyond the default length). Empty = the prescription may be issued."""
    out: list[RxProblem] = []
    if weeks < 1:
        out.append(RxProblem("R4.2", "weeks", "处方周数至少为 1 / at least 1 week"))
    if weeks > p.long_max_weeks:
        out.append(RxProblem("R4.2", "too-long", f"长期处方最长 {p.long_max_weeks} 周 / a long prescription runs "
                                                 f"at most {p.long_max_weeks} weeks"))
    if weeks > p.default_max_weeks:
        out.extend(long_rx_eligible(facts, p))
        if not (assessment or "").strip():
            out.append(RxProblem("R4.2", "no-assessment", f"超过 {p.default_max_weeks} 周需记录评估 / more than "
                                                          f"{p.default_max_weeks} weeks needs a recorded assessment"))
        if not patient_confirmed:
            out.append(RxProblem("R4.2", "no-confirmation", f"超过 {p.default_max_weeks} 周需患者确认 / more than "
                                                            f"{p.default_max_weeks} weeks needs the patient's confirmation"))
    for it in items:
        cls = (it.drug_class or "").strip()
        if cls in p.excluded_classes:
            if cls == "antimicrobial" and (it.indication or "") in p.antimicrobial_exceptions:
                continue
            out.append(RxProblem("R4.3", "excluded-class", f"{it.drug}：{cls} 类药品不得开具长期处方 / {it.drug}: "
                                                           f"{cls} drugs may not be on a long prescription"))
    if not items:
        out.append(RxProblem("R4.2", "no-items", "处方无药品 / the prescription has no items"))
    return out


# --- self-check readings ----------------------------------------------------------------------------

def reading_alerts(sbp: float | None, dbp: float | None, glucose: float | None, p: Params) -> list[str]:
    """Out-of-range self-check readings that alert the team (thresholds from R3.4, [U] for home readings):
    ``sbp_high``, ``dbp_high``, ``sbp_low``, ``glucose_high``, ``glucose_low``."""
    out = []
    if sbp is not None and sbp >= p.alert_sbp_high:
        out.append("sbp_high")
    if dbp is not None and dbp >= p.alert_dbp_high:
        out.append("dbp_high")
    if sbp is not None and sbp < p.alert_sbp_low:
        out.append("sbp_low")
    if glucose is not None and glucose >= p.alert_glucose_high:
        out.append("glucose_high")
    if glucose is not None and glucose <= p.alert_glucose_low:
        out.append("glucose_low")
    return out


def trend(values: Sequence[tuple[dt.date, float]], today: dt.date, days: int = 14) -> dict[str, float | str | None]:
    """Pre-visit trend: mean of the last ``days`` days against the ``days`` before; ``direction`` up /
    down / flat (±3 %), or None without both windows."""
    recent = [v for d, v in values if 0 <= (today - d).days < days]
    before = [v for d, v in values if days <= (today - d).days < 2 * days]
    a = sum(recent) / len(recent) if recent else None
    b = sum(before) / len(before) if before else None
    direction = None
    if a is not None and b is not None and b:
        change = (a - b) / b
        direction = "up" if change > 0.03 else "down" if change < -0.03 else "flat"
    return {"recent_mean": round(a, 1) if a is not None else None,
            "previous_mean": round(b, 1) if b is not None else None, "direction": direction,
            "count": len(recent)}
