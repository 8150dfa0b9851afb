"""The checks at the vaccination desk (三查七对一验证, RULES R6.5) and the trace-code rules (R6.6), as pure
functions over plain data: the service gathers the facts, these say which check passes and why one fails.

Every check returns ticked or failed with a bilingual reason the desk shows as it is. The numbers (trace-code
length, observation minutes) come from the rule table ``immunization`` and are passed in.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from onetrip.immunization.forecast import DUE, OVERDUE, SeriesForecast, add_age

TRACE_CODE_LENGTH = 20  # R6.6 (the rule value trace_code_length overrides it)
OBSERVATION_MINUTES = 30  # R6.5 (the rule value observation_minutes overrides it)
_CODE_CHARS = re.compile(r"[0-9A-Za-z]+")

# The contraindication questions asked before every dose (R6.5 "check health and contraindications").
CONTRAINDICATIONS: tuple[tuple[str, str, str], ...] = (
    ("fever", "今天是否发热（≥37.5 °C）或患急性疾病？", "Fever (≥ 37.5 °C) or an acute illness today?"),
    ("allergy", "是否对该疫苗成分或既往接种有严重过敏？", "Severe allergy to a vaccine component or a previous dose?"),
    ("immune", "是否有免疫缺陷或正在使用免疫抑制剂？", "Immunodeficiency or immunosuppressive treatment?"),
    ("neuro", "是否有未控制的癫痫或其他进行性神经系统疾病？", "Uncontrolled epilepsy or a progressive neurological disease?"),
    ("reaction", "既往接种后是否有严重不良反应？", "A serious adverse event after an earlier vaccination?"),
)
CHECK_ORDER = ("code", "package", "lot", "expiry", "patient", "vaccine", "interval", "contraindications")


@dataclass(frozen=True)
class Check:
    key: str
    ok: bool
    reason: str = ""  # bilingual, shown at the desk when the check fails (or what was checked when it passes)


@dataclass(frozen=True)
class PackageFacts:
    """What the scan found: the package, its lot and product (None when the code is unknown)."""

    trace_code: str
    organization_id: str
    doses_left: int
    doses_total: int
    lot_number: str
    lot_status: str
    expiry: dt.date
    vaccine_code: str
    product_name: str
    holder: str


@dataclass(frozen=True)
class Verdict:
    checks: list[Check] = field(default_factory=list)
    dose_number: int | None = None

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]


def normalise_code(text: str) -> str:
    """A scanned code as typed by a keyboard-wedge scanner: spaces and separators (some print 4-digit groups)
    removed."""
    return re.sub(r"[\s\-]", "", text or "")


def code_check(code: str, length: int = TRACE_CODE_LENGTH) -> Check:
    # R6.6: the trace code of the smallest package has 20 characters.
    if len(code) != length or not _CODE_CHARS.fullmatch(code):
        return Check("code", False, f"追溯码须为 {length} 位字母或数字（扫描到 {len(code)} 位）/ the trace code must be "
                                    f"{length} letters or digits (scanned {len(code)})")
    return Check("code", True, f"追溯码格式正确 / trace code has {length} characters")


def package_checks(pkg: PackageFacts | None, clinic_id: str | None, today: dt.date) -> list[Check]:
    """Package (known here, a dose left), lot (not quarantined/expired) and expiry (R6.5 check the vaccine's
    batch and expiry; R6.6 a code used beyond its doses is an error)."""
    if pkg is None:
        return [Check("package", False, "未找到该追溯码的疫苗：请确认已入库 / no vaccine package with this trace code: "
                                        "receive it into stock first")]
    out = []
    if clinic_id is not None and pkg.organization_id != clinic_id:
        out.append(Check("package", False, "该疫苗不属于本门诊库存 / this package belongs to another clinic's stock"))
    elif pkg.doses_left <= 0:
        out.append(Check("package", False, f"该追溯码的 {pkg.doses_total} 剂已全部使用：不得超剂次使用 / all "
                                           f"{pkg.doses_total} dose(s) of this trace code have been used: it "
                                           f"cannot be used again"))
    else:
        out.append(Check("package", True, f"剩余 {pkg.doses_left}/{pkg.doses_total} 剂 / {pkg.doses_left} of "
                                          f"{pkg.doses_total} dose(s) left"))
    if pkg.lot_status == "quarantined":
        out.append(Check("lot", False, f"批号 {pkg.lot_number} 已隔离（冷链异常），不得使用 / lot {pkg.lot_number} is "
                                       f"quarantined (cold chain) and cannot be used"))
    elif pkg.lot_status == "expired":
        out.append(Check("lot", False, f"批号 {pkg.lot_number} 已标记过期 / lot {pkg.lot_number} is marked expired"))
    else:
        out.append(Check("lot", True, f"批号 {pkg.lot_number} 可用 / lot {pkg.lot_number} available"))
    if pkg.expiry < today:
        out.append(Check("expiry", False, f"疫苗已于 {pkg.expiry} 过期 / the vaccine expired on {pkg.expiry}"))
    else:
        out.append(Check("expiry", True, f"有效期至 {pkg.expiry} / expires {pkg.expiry}"))
    return out


def patient_check(patient_id: str, certificate_id: str | None) -> Check:
    # R6.5: the vaccination certificate is checked against the record (the child in front of the desk).
    if certificate_id is not None and certificate_id != patient_id:
        return Check("patient", False, "接种证与当前受种者不符：请核对儿童身份 / the vaccination certificate belongs "
                                       "to another child: check who is being vaccinated")
    return Check("patient", True, "受种者已核对 / recipient checked")


def dose_checks(vaccine_code: str, forecasts: list[SeriesForecast], today: dt.date,
                alt_groups: dict[str, str] | None = None) -> tuple[list[Check], int | None]:
    """Vaccine matches a due dose of the child (R6.5 match vaccine and dose), and the dose's earliest date
    (minimum age R6.1, intervals and live spacing R6.2) is not after today. ``alt_groups`` (vaccine code →
    alternative group) names the product chosen when another product of its group is scanned."""
    f = next((f for f in forecasts if f.vaccine == vaccine_code and f.dose is not None), None)
    chosen = other_alternative_chosen(vaccine_code, forecasts, alt_groups or {}) if f is None else None
    if chosen is not None:
        # R6.1 / R6.2: the product of the group's first dose is the choice; the others are not given after it.
        return [Check("vaccine", False, f"该儿童已选用 {chosen}（首剂已接种），不能改用 {vaccine_code} / {chosen} was "
                                        f"chosen for this child (its first dose was given): {vaccine_code} cannot "
                                        f"be given instead")], None
    if f is None:
        done = any(f.vaccine == vaccine_code for f in forecasts)
        why = "该儿童此疫苗已全程接种" if done else "该疫苗不在该儿童的免疫程序中"
        why_en = "the child has completed this vaccine's series" if done else \
            "this vaccine is not in the child's schedule now"
        return [Check("vaccine", False, f"{why}（{vaccine_code}）/ {why_en} ({vaccine_code})")], None
    ok = Check("vaccine", True, f"{vaccine_code} 第 {f.dose} 剂 / {vaccine_code} dose {f.dose}")
    if f.status in (DUE, OVERDUE) and f.earliest is not None and f.earliest <= today:
        return [ok, Check("interval", True, f"最早可种日 {f.earliest} / earliest date {f.earliest}")], f.dose
    return [ok, Check("interval", False, f"未到最早接种日期 {f.earliest}（月龄或间隔不足）/ too early: the earliest "
                                         f"date for dose {f.dose} is {f.earliest} (minimum age or interval)")], f.dose


def contraindication_check(answers: dict[str, bool]) -> Check:
    # R6.5: health and contraindications are checked before every dose; an unanswered question is a stop.
    missing = [k for k, _, _ in CONTRAINDICATIONS if k not in answers]
    if missing:
        return Check("contraindications", False, f"请回答全部禁忌问题（缺 {', '.join(missing)}）/ answer every "
                                                 f"contraindication question (missing: {', '.join(missing)})")
    yes = [(zh, en) for k, zh, en in CONTRAINDICATIONS if answers.get(k)]
    if yes:
        return Check("contraindications", False, "存在禁忌或需暂缓：" + "；".join(z for z, _ in yes) + " / "
                     "contraindication or deferral: " + "; ".join(e for _, e in yes))
    return Check("contraindications", True, "无禁忌 / no contraindication")


def verify(code: str, pkg: PackageFacts | None, clinic_id: str | None, patient_id: str,
           certificate_id: str | None, forecasts: list[SeriesForecast], answers: dict[str, bool],
           today: dt.date, length: int = TRACE_CODE_LENGTH, alt_groups: dict[str, str] | None = None) -> Verdict:
    """Every check of R6.5 for one scan, in the desk's order; a malformed or unknown code stops at that check."""
    checks = [code_check(code, length)]
    if not checks[0].ok:
        return Verdict(checks)
    checks += package_checks(pkg, clinic_id, today)
    if pkg is None:
        return Verdict(checks)
    checks.append(patient_check(patient_id, certificate_id))
    dose, number = dose_checks(pkg.vaccine_code, forecasts, today, alt_groups)
    checks += dose
    checks.append(contraindication_check(answers))
    return Verdict(checks, number)


def minutes_left(given: dt.datetime, now: dt.datetime, minutes: int = OBSERVATION_MINUTES) -> int:
    # R6.5: 30-minute observation after the dose.
    left = minutes * 60 - (now - given).total_seconds()
    return max(0, int((left + 59) // 60))


# --- Cold chain (R6.7) ----------------------------------------------------------------------------------------

COLD_CHAIN_RANGE = {"min": 2, "max": 8, "frozen_max": -20}  # R6.7 (the rule value cold_chain_range overrides it)


def temperature_ok(celsius: float, frozen: bool, rng: dict | None = None) -> bool:
    # R6.7: vaccine fridges 2–8 °C; freezers ≤ −20 °C. Outside: an excursion (the fridge's lots are quarantined).
    r = {**COLD_CHAIN_RANGE, **(rng or {})}
    if frozen:
        return celsius <= float(r["frozen_max"])
    return float(r["min"]) <= celsius <= float(r["max"])


# --- AEFI reports (issue 20 point 5) ---

AEFI_SEVERITIES = ("general", "serious", "death")
AEFI_STATUSES = ("draft", "reported", "closed")
# The worklist's states of a report: a draft past its deadline is overdue, before it open.
AEFI_OVERDUE, AEFI_OPEN, AEFI_REPORTED, AEFI_CLOSED = "overdue", "open", "reported", "closed"
# Short symptom codes of a report (the reporting form's ticks), with the zh / en labels shown.
AEFI_SYMPTOMS: tuple[tuple[str, str, str], ...] = (
    ("fever", "发热", "Fever"),
    ("local-reaction", "局部红肿或硬结", "Local redness or induration"),
    ("rash", "皮疹", "Rash"),
    ("allergic", "过敏反应", "Allergic reaction"),
    ("convulsion", "惊厥", "Convulsion"),
    ("other", "其他", "Other"),
)
AEFI_REPORT_HOURS = {"default": 48, "urgent": 2}  # R6.7 (the rule value aefi_report_hours overrides it)


def aefi_urgent(severity: str, cluster: bool) -> bool:
    # R6.7: death, serious and cluster (群体性) events are reported within the short deadline.
    return bool(cluster) or severity in ("serious", "death")


def aefi_deadline(discovered_at: dt.datetime, severity: str, cluster: bool, values: dict | None = None
                  ) -> dt.datetime:
    """When the report is due: hours from discovery (R6.7: 48 h; 2 h for death, serious or cluster events)."""
    hours = {**AEFI_REPORT_HOURS, **(values or {})}
    return discovered_at + dt.timedelta(hours=float(hours["urgent" if aefi_urgent(severity, cluster) else "default"]))


def aefi_state(status: str, deadline_at: dt.datetime, now: dt.datetime) -> str:
    # R6.7: a report not made by its deadline is overdue until it is made.
    if status == "draft":
        return AEFI_OVERDUE if now > deadline_at else AEFI_OPEN
    return AEFI_REPORTED if status == "reported" else AEFI_CLOSED


def aefi_late(deadline_at: dt.datetime, reported_at: dt.datetime) -> bool:
    # R6.7: reported after the deadline.
    return reported_at > deadline_at


def aefi_minutes_left(deadline_at: dt.datetime, now: dt.datetime) -> int:
    """Whole minutes to the deadline (R6.7); negative once it has passed (the minutes past it)."""
    seconds = (deadline_at - now).total_seconds()
    return int(seconds // 60) if seconds >= 0 else -int((-seconds + 59) // 60)


# --- programmes and coverage (issue 20 point 6) ---

def age_reached(birth: dt.date, years: int) -> dt.date:
    """The day a person born on ``birth`` reaches ``years`` (a 29 February birthday falls on 28 February, the
    forecast's "n y" convention)."""
    return add_age(birth, f"{years}y")


def campaign_eligible(birth: dt.date | None, sex: str, on: dt.date, min_age: int | None, max_age: int | None,
                      sex_required: str | None) -> bool:
    """A campaign (the free influenza vaccination of elderly residents, seed; rule value influenza_campaign,
    [U]): aged at least ``min_age`` and at most ``max_age`` whole years on the reference day ``on`` — a birthday
    on that day counts as reached."""
    if birth is None or (sex_required and sex != sex_required):
        return False
    if min_age is not None and age_reached(birth, min_age) > on:
        return False
    return max_age is None or age_reached(birth, max_age + 1) > on


def cohort_eligible(birth: dt.date | None, sex: str, start: dt.date, end: dt.date, age: int,
                    sex_required: str | None) -> bool:
    """A cohort (HPV2 for girls at 13, RULES §6 2025 edition): reaching ``age`` between ``start`` and ``end``
    (both included)."""
    if birth is None or (sex_required and sex != sex_required):
        return False
    return start <= age_reached(birth, age) <= end


def programme_doses(open_programmes: list[tuple[str, str, dt.date, dt.date]], forecasts: list[SeriesForecast],
                    today: dt.date) -> list[SeriesForecast]:
    """Doses the desk may give because the person has an open programme invitation (code, vaccine, start, end),
    for vaccines the forecast does not hold (IIV; HPV2 stays the forecaster's). Due from the programme's start
    to its end (R6.5: the vaccine matches a dose the person is due)."""
    held = {f.vaccine for f in forecasts}
    out: list[SeriesForecast] = []
    for code, vaccine, start, end in open_programmes:
        if vaccine in held or not start <= today <= end:
            continue
        held.add(vaccine)
        out.append(SeriesForecast(series=vaccine, vaccine=vaccine, dose=1, status=DUE, earliest=start, due=start,
                                  latest=None, edition="programme", doses_recorded=0,
                                  reasons=(f"programme:{code}",)))
    return out


def reminder_due(f: SeriesForecast, today: dt.date, days_ahead: int) -> bool:
    """A childhood dose to remind the guardian of: not complete and due within ``days_ahead`` days (or already
    due or overdue) — issue 20 point 6; rule value reminder_days_ahead."""
    return f.dose is not None and f.due is not None and f.due <= today + dt.timedelta(days=days_ahead)


# --- cold chain pages and the manual-record check; desk lookup by ID; alternatives (issue 20 point 4) ---

MANUAL_RECORD = {"per_day": 2, "min_gap_hours": 6, "morning_before": "12:00"}  # R6.7 (rule value manual_record)
MANUAL_COMPLETE, MANUAL_MISSING_BOTH = "complete", "missing-both"
MANUAL_MISSING_MORNING, MANUAL_MISSING_AFTERNOON = "missing-morning", "missing-afternoon"
MANUAL_TOO_CLOSE, MANUAL_TOO_FEW = "too-close", "too-few"


@dataclass(frozen=True)
class ManualCheck:
    """One fridge's manual temperature record on one day: the status and the first morning / last afternoon
    record (local times), or None when that half of the day has none."""

    status: str
    morning: dt.time | None
    afternoon: dt.time | None
    count: int

    @property
    def complete(self) -> bool:
        return self.status == MANUAL_COMPLETE


def manual_record_check(times: list[dt.time], rule: dict | None = None) -> ManualCheck:
    """The manual record of one fridge on one day, from the local times (Asia/Shanghai) of its manual readings.

    R6.7: the temperature is recorded by hand at least in the morning and in the afternoon, at least
    ``min_gap_hours`` apart and ``per_day`` times in all. Morning = before ``morning_before``; the gap is
    measured between the first morning and the last afternoon record (the widest pair)."""
    r = {**MANUAL_RECORD, **(rule or {})}
    h, m = (int(x) for x in str(r["morning_before"]).split(":"))
    noon = dt.time(h, m)
    ordered = sorted(times)
    morning = next((t for t in ordered if t < noon), None)
    afternoon = next((t for t in reversed(ordered) if t >= noon), None)
    if morning is None and afternoon is None:
        status = MANUAL_MISSING_BOTH
    elif morning is None:
        status = MANUAL_MISSING_MORNING
    elif afternoon is None:
        status = MANUAL_MISSING_AFTERNOON
    elif _minutes(afternoon) - _minutes(morning) < float(r["min_gap_hours"]) * 60:
        status = MANUAL_TOO_CLOSE
    elif len(ordered) < int(r["per_day"]):
        status = MANUAL_TOO_FEW
    else:
        status = MANUAL_COMPLETE
    return ManualCheck(status, morning, afternoon, len(ordered))


def _minutes(t: dt.time) -> int:
    return t.hour * 60 + t.minute


def alternative_for(vaccine_code: str, forecasts: list[SeriesForecast]) -> str | None:
    """The series a scanned product may replace as the first dose of its alternative group, else None.

    R6.1 / R6.2 alternatives (JE-L / JE-I, HepA-L / HepA-I): until a dose of the group is given the
    forecast shows the first-ranked product with ``alternative-available:<other>``; the vaccinator may give
    the other product instead — that first dose is the group's choice, with its own ages and intervals."""
    for f in forecasts:
        if f.dose == 1 and f"alternative-available:{vaccine_code}" in f.reasons:
            return f.series
    return None


def other_alternative_chosen(vaccine_code: str, forecasts: list[SeriesForecast],
                             alt_groups: dict[str, str]) -> str | None:
    """The product already chosen for the scanned product's alternative group (R6.1 / R6.2: one product per
    group once a dose is given), else None."""
    group = alt_groups.get(vaccine_code)
    if group is None:
        return None
    for f in forecasts:
        if f.vaccine != vaccine_code and alt_groups.get(f.vaccine) == group and "alternative-chosen" in f.reasons:
            return f.vaccine
    return None
