"""Pure functions over plain data for maternal and child health: each takes the rule values it applies as
arguments and cites its RULES §11 number in a comment (never shown to a user)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

# --- pregnancy care: booking, visit plan, five-colour risk, case management (issue 21 point 1) ---

# Five-colour risk grading (R11.2). The order of the four colours; purple is not on it (it is added to any).
RISK_ORDER = ("green", "yellow", "orange", "red")
PURPLE_FACTS = ("hepatitis", "syphilis", "hiv", "tb")
_TRUE = {"1", "true", "yes", "on", "y"}


@dataclass(frozen=True)
class RiskFacts:
    """What the record says about a pregnancy (R11.2's criteria). ``age`` in completed years on the grading day;
    ``bmi`` the (pre-pregnancy or booking) body-mass index."""

    age: int | None = None
    bmi: float | None = None
    scarred_uterus: bool = False  # 瘢痕子宫
    gdm: bool = False  # 妊娠期糖尿病
    twins: bool = False  # 双胎/多胎
    serious_complication: bool = False  # 严重妊娠合并症/并发症
    life_threatening: bool = False  # 继续妊娠可能危及生命
    hepatitis: bool = False
    syphilis: bool = False
    hiv: bool = False
    tb: bool = False

    FLAGS = ("scarred_uterus", "gdm", "twins", "serious_complication", "life_threatening", *PURPLE_FACTS)

    @classmethod
    def from_mapping(cls, data: dict, age: int | None = None) -> RiskFacts:
        """From stored or posted facts: unknown keys ignored, form booleans ("on", "true") read."""
        def flag(v: object) -> bool:
            return v if isinstance(v, bool) else str(v).strip().lower() in _TRUE
        bmi = data.get("bmi")
        try:
            bmi = float(bmi) if bmi not in (None, "") else None
        except (TypeError, ValueError):
            bmi = None
        given_age = data.get("age", age)
        return cls(age=int(given_age) if given_age not in (None, "") else None, bmi=bmi,
                   **{k: flag(data.get(k, False)) for k in cls.FLAGS})


@dataclass(frozen=True)
class Grade:
    colour: str  # green | yellow | orange | red
    purple: bool
    reasons: tuple[str, ...]  # codes the pages translate (risk.<code>)

    @property
    def colours(self) -> set[str]:
        return {self.colour, "purple"} if self.purple else {self.colour}

    @property
    def case_management(self) -> bool:
        # R11.2: orange and above go to case management.
        return RISK_ORDER.index(self.colour) >= RISK_ORDER.index("orange")


def grade(facts: RiskFacts, values: dict) -> Grade:
    """The five-colour grade of one pregnancy: the highest colour any fact reaches, purple added for an
    infectious disease. ``values``: the rule row risk_grading."""
    found: list[tuple[str, str]] = []
    age, bmi = facts.age, facts.bmi
    if age is not None:
        if age >= values["orange_age_min"]:  # R11.2 orange: age ≥ 40
            found.append(("orange", "age_40_plus"))
        elif age >= values["yellow_age_min"]:  # R11.2 yellow: age ≥ 35
            found.append(("yellow", "age_35_plus"))
        if age <= values["yellow_age_max"]:  # R11.2 yellow: age ≤ 18
            found.append(("yellow", "age_18_or_under"))
    if bmi is not None and bmi >= values["orange_bmi_min"]:  # R11.2 orange: BMI ≥ 28
        found.append(("orange", "bmi_28_plus"))
    for flag in ("scarred_uterus", "gdm", "twins"):  # R11.2 yellow: scarred uterus, GDM, twins
        if getattr(facts, flag):
            found.append(("yellow", flag))
    if facts.serious_complication:  # R11.2 orange: serious complications
        found.append(("orange", "serious_complication"))
    if facts.life_threatening:  # R11.2 red: continuing the pregnancy may endanger life
        found.append(("red", "life_threatening"))
    infections = [f for f in PURPLE_FACTS if getattr(facts, f)]  # R11.2 purple: combinable with any colour
    colour = max((c for c, _ in found), key=RISK_ORDER.index, default="green")  # R11.2: the highest wins
    return Grade(colour, bool(infections), tuple(r for _, r in found) + tuple(infections))


def age_on(birth: dt.date, day: dt.date) -> int:
    """Completed years on ``day``."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


# Dating and the visit plan (R11.1).
TERM_DAYS = 280  # Naegele: LMP + 280 days


@dataclass(frozen=True)
class DatingScan:
    """An early ultrasound: the gestational age it measured on its date."""

    date: dt.date
    weeks: int
    days: int = 0

    @property
    def ga_days(self) -> int:
        return self.weeks * 7 + self.days


def naegele(lmp: dt.date) -> dt.date:
    return lmp + dt.timedelta(days=TERM_DAYS)


def due_date(lmp: dt.date, scan: DatingScan | None, values: dict) -> tuple[dt.date, str]:
    """(EDD, source "lmp" | "ultrasound"). A dating scan before ``before_weeks`` whose gestational age differs from
    the LMP dating by more than ``tolerance_days`` replaces it (rule row edd_ultrasound, [U]); later scans are not
    used for dating."""
    edd = naegele(lmp)
    if scan is None or scan.ga_days >= values["before_weeks"] * 7:
        return edd, "lmp"
    by_lmp = (scan.date - lmp).days
    if abs(scan.ga_days - by_lmp) > values["tolerance_days"]:
        return scan.date + dt.timedelta(days=TERM_DAYS - scan.ga_days), "ultrasound"
    return edd, "lmp"


def gestational_days(edd: dt.date, day: dt.date) -> int:
    return TERM_DAYS - (edd - day).days


def gestational_age(edd: dt.date, day: dt.date) -> tuple[int, int]:
    """(completed weeks, days) on ``day`` for a pregnancy due on ``edd``."""
    return divmod(gestational_days(edd, day), 7)


def lmp_problem(lmp: dt.date, today: dt.date, max_weeks: int) -> str | None:
    """Why an LMP cannot be booked: in the future, or more than ``max_weeks`` ago (rule row lmp_max_weeks)."""
    if lmp > today:
        return "future"
    if (today - lmp).days > max_weeks * 7:
        return "too_old"
    return None


DONE, DUE, OVERDUE, UPCOMING, MISSED, NOT_NEEDED = "done", "due", "overdue", "upcoming", "missed", "not_needed"


@dataclass(frozen=True)
class Visit:
    kind: str  # antenatal | postpartum | day42
    date: dt.date


@dataclass(frozen=True)
class PlanWindow:
    key: str
    kind: str  # antenatal | postpartum | day42
    start: dt.date | None  # None: not known yet (the postpartum windows before delivery)
    end: dt.date | None
    state: str
    visit_date: dt.date | None = None


def _state(start: dt.date | None, end: dt.date | None, today: dt.date) -> str:
    if start is None or end is None or today < start:
        return UPCOMING
    return DUE if today <= end else OVERDUE


def plan(edd: dt.date, booked_on: dt.date, visits: list[Visit], today: dt.date, values: dict, *,
         delivered_on: dt.date | None = None, discharged_on: dt.date | None = None) -> list[PlanWindow]:
    """The visit plan of one pregnancy with each window's dates and state on ``today``. ``values``: the rule row
    pregnancy_visits. A window is done by a visit of its kind inside it; a window that ended before booking is
    missed (no alert); after delivery an antenatal window not done is missed (ended before) or not needed."""
    lmp = edd - dt.timedelta(days=TERM_DAYS)
    out: list[PlanWindow] = []
    # R11.1: first check before 13 weeks; 16–20, 21–24, 28–36, 37–40 weeks (each to the end of its last week).
    for w in values["antenatal"]:
        start = lmp + dt.timedelta(days=7 * w["from_week"])
        end = lmp + dt.timedelta(days=7 * w["to_week"] + 6)
        hit = next((v.date for v in visits if v.kind == "antenatal" and start <= v.date <= end), None)
        if hit is not None:
            state = DONE
        elif delivered_on is not None and start <= delivered_on:
            state = MISSED if end < delivered_on else NOT_NEEDED
        elif delivered_on is not None:
            state = NOT_NEEDED
        elif end < booked_on:
            state = MISSED
        else:
            state = _state(start, end, today)
        out.append(PlanWindow(w["key"], "antenatal", start, end, state, hit))
    # R11.1: postpartum home visit within 1 week of discharge; the 42-day check.
    pp = values["postpartum"]
    start = discharged_on
    end = None if start is None else start + dt.timedelta(days=pp["within_days"])
    hit = None if start is None else next(
        (v.date for v in visits if v.kind == "postpartum" and start <= v.date <= end), None)
    out.append(PlanWindow("postpartum", "postpartum", start, end, DONE if hit else _state(start, end, today), hit))
    d42 = values["day42"]
    start = None if delivered_on is None else delivered_on + dt.timedelta(days=d42["from_day"])
    end = None if delivered_on is None else delivered_on + dt.timedelta(days=d42["to_day"])
    hit = None if start is None else next(
        (v.date for v in visits if v.kind == "day42" and start <= v.date <= end), None)
    out.append(PlanWindow("day42", "day42", start, end, DONE if hit else _state(start, end, today), hit))
    return out


def antenatal_count_met(visits: list[Visit], values: dict) -> bool:
    # R11.1: at least 5 antenatal checks in all.
    return sum(1 for v in visits if v.kind == "antenatal") >= values["min_antenatal"]


# --- child health 0-6: check plan, WHO growth z-scores, screening reminders (issue 21 point 2) ---

CHILD_DONE, CHILD_DUE, CHILD_OVERDUE, CHILD_UPCOMING = "done", "due", "overdue", "upcoming"


def add_months_to(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` later (the month's last day when it has no such day)."""
    import calendar

    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class ChildCheckWindow:
    key: str
    kind: str  # check | hb | hearing
    target: dt.date
    start: dt.date
    end: dt.date


def child_check_windows(birth: dt.date, checks: list[dict], screenings: list[dict],
                        discharge: dt.date | None = None) -> list[ChildCheckWindow]:
    """The windows of the R11.3 check plan (rule values child_checks, child_screenings) of a child born on
    ``birth``; the newborn home visit counts from discharge (birth when not known)."""
    out: list[ChildCheckWindow] = []
    by_key: dict[str, ChildCheckWindow] = {}
    for c in checks:  # R11.3: newborn within 1 week of discharge; 满月 28–30 days; 3 … 36 months; 4, 5, 6 years
        base = (discharge or birth) if c.get("from") == "discharge" else birth
        target = add_months_to(base, int(c["months"])) if "months" in c else base + dt.timedelta(days=int(c["days"]))
        w = ChildCheckWindow(c["key"], "check", target, target - dt.timedelta(days=int(c.get("before", 0))),
                             target + dt.timedelta(days=int(c.get("after", 0))))
        by_key[w.key] = w
        out.append(w)
    for s in screenings:  # R11.3: Hb at 6–8, 18, 30 months; hearing at 6, 12, 24, 36 months
        if "check" in s:
            c = by_key[s["check"]]
            out.append(ChildCheckWindow(s["key"], s["kind"], c.target, c.start, c.end))
        else:
            start = add_months_to(birth, int(s["from_months"]))
            out.append(ChildCheckWindow(s["key"], s["kind"], start, start,
                                        add_months_to(birth, int(s["to_months"])) - dt.timedelta(days=1)))
    return out


def child_check_states(windows: list[ChildCheckWindow], done: list[tuple[str, dt.date, bool, bool]],
                       on: dt.date) -> list[tuple[ChildCheckWindow, str, dt.date | None]]:
    """Each window's state on ``on`` (R11.3): done / due (inside the window) / overdue (after it) / upcoming,
    and the date it was done. ``done``: the recorded checks as (check key, date, has Hb, has hearing result);
    a check is done by a record of its key; a screening by a result dated from its window's start and before
    the start of the next screening of the same kind."""
    out = []
    for i, w in enumerate(windows):
        when = None
        if w.kind == "check":
            dates = [d for key, d, _hb, _he in done if key == w.key]
        else:
            nxt = next((x.start for x in windows[i + 1:] if x.kind == w.kind), None)
            dates = [d for _key, d, hb, he in done if (hb if w.kind == "hb" else he)
                     and d >= w.start and (nxt is None or d < nxt)]
        if dates:
            when = min(dates)
            state = CHILD_DONE
        elif on < w.start:
            state = CHILD_UPCOMING
        elif on <= w.end:
            state = CHILD_DUE
        else:
            state = CHILD_OVERDUE
        out.append((w, state, when))
    return out


# --- 两癌 screening campaign (issue 21 point 5) ---
# RULES §11 holds no number for 两癌 screening: the ages 35–64 come from the issue text (issue 21 point 5, [S]);
# the interval and the follow-up deadlines are configurable defaults ([U], rule values two_cancers_campaign and
# positive_followup_days).

SCREENING_CERVICAL_RESULTS = ("negative", "positive", "unsatisfactory")  # HPV / cytology / VIA
SCREENING_BREAST_RESULTS = ("negative", "positive", "unsatisfactory")  # ultrasound / mammography
SCREENING_DIAGNOSES = ("benign", "precancerous", "cancer")  # precancerous and cancer need treatment
SCREENING_FOLLOWUP = ("none", "open", "overdue", "diagnosed", "treated", "lost")


def screening_years_reached(birth: dt.date, years: int) -> dt.date:
    """The day a woman born on ``birth`` turns ``years`` (a 29 February birthday: 28 February of a common year)."""
    try:
        return birth.replace(year=birth.year + years)
    except ValueError:
        return dt.date(birth.year + years, 2, 28)


def screening_age(birth: dt.date, on: dt.date) -> int:
    """Whole years on ``on`` (the birthday counts on its day)."""
    years = on.year - birth.year
    return years if screening_years_reached(birth, years) <= on else years - 1


def screening_eligible(birth: dt.date | None, sex: str, on: dt.date, min_age: int, max_age: int,
                       sex_required: str | None = "female") -> bool:
    """两癌 screening (issue 21 point 5, [S]; rule value two_cancers_campaign): a woman aged ``min_age`` to
    ``max_age`` whole years (both included) on the reference day ``on`` — 35 from her 35th birthday, still 64 on
    the day before her 65th."""
    if birth is None or (sex_required and sex != sex_required):
        return False
    return screening_years_reached(birth, min_age) <= on < screening_years_reached(birth, max_age + 1)


def screening_due_again(last_screened: dt.date | None, on: dt.date, interval_years: int | None) -> bool:
    """Due for screening on ``on`` ([U], rule value two_cancers_campaign.interval_years): never screened, no
    interval set, or the last screening at least ``interval_years`` ago (its anniversary counts as due)."""
    if last_screened is None or not interval_years:
        return True
    return screening_years_reached(last_screened, interval_years) <= on


def screening_breast_positive(result: str | None, birads: int | None) -> bool:
    """A breast result is positive when marked positive or BI-RADS 4 or 5 (issue 21 point 5, [U]: BI-RADS ≥ 4
    is the usual referral threshold; RULES §11 is silent)."""
    return result == "positive" or (birads is not None and birads >= 4)


def screening_breast_result(result: str | None, birads: int | None) -> str | None:
    """The breast result stored: the one given, else derived from BI-RADS (1–3 negative, 4–5 positive)."""
    if result:
        return result
    if birads is None:
        return None
    return "positive" if birads >= 4 else "negative"


def screening_positive(cervical: str | None, breast: str | None, birads: int | None) -> bool:
    """Either part positive makes the screening positive (to be followed to diagnosis and treatment)."""
    return cervical == "positive" or screening_breast_positive(breast, birads)


def screening_deadlines(positive_on: dt.date, diagnosis_days: int, treatment_days: int) -> tuple[dt.date, dt.date]:
    """Follow-up deadlines of a positive result dated ``positive_on`` ([U], rule value positive_followup_days):
    diagnosis and treatment, both counted from the result's day."""
    return positive_on + dt.timedelta(days=diagnosis_days), positive_on + dt.timedelta(days=treatment_days)


def screening_followup_state(positive: bool, *, diagnosis_deadline: dt.date | None, treatment_deadline: dt.date | None,
                             diagnosis_date: dt.date | None, diagnosis_result: str | None,
                             treatment_date: dt.date | None, lost: bool, on: dt.date) -> str:
    """The follow-up state of a screening on the day ``on`` (issue 21 point 5: positives followed to diagnosis
    and treatment with deadlines, [U]): none (not positive) | lost | treated | diagnosed | open | overdue. A
    deadline's own day is still in time; overdue from the next day. A benign diagnosis closes the follow-up; a
    precancerous or cancer diagnosis stays diagnosed until treated, overdue after the treatment deadline."""
    if not positive:
        return "none"
    if lost:
        return "lost"
    if treatment_date is not None:
        return "treated"
    if diagnosis_date is not None:
        if diagnosis_result in ("precancerous", "cancer") and treatment_deadline is not None \
                and on > treatment_deadline:
            return "overdue"
        return "diagnosed"
    if diagnosis_deadline is not None and on > diagnosis_deadline:
        return "overdue"
    return "open"


def screening_diagnosed_in_time(diagnosis_date: dt.date | None, diagnosis_deadline: dt.date | None) -> bool:
    """A positive followed to diagnosis within its deadline (the cockpit's "positives followed")."""
    return diagnosis_date is not None and diagnosis_deadline is not None and diagnosis_date <= diagnosis_deadline
