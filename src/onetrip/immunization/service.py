"""The schedule table (seed, read) and the forecast for a child: plain data in, plain data out.

Services flush, never commit (STYLE 2). Reading a registered child's record goes through identity's audited
read (the access policy A1–A6 and an audit event); a forecast over data the caller sends reads nothing stored.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from onetrip.identity import service as identity
from onetrip.immunization import repository as repo
from onetrip.immunization.forecast import LIVE_SPACING_DAYS, Dose, Schedule, SeriesForecast, add_age, forecast
from onetrip.immunization.models import ScheduleDose
from onetrip.immunization.schedule import RULE_SET, rows_from_dicts, seed_rows, transition_from_rule
from onetrip.kit.errors import ApiError, BadRequest
from onetrip.kit.identifiers import SEX_TO_FHIR
from onetrip.kit.principal import Principal
from onetrip.rules.service import rule_values


class ScheduleUnavailable(ApiError):
    """The schedule table is empty or an operator's row / rule value does not parse: the forecast cannot run."""

    status, code = 503, "exception"


def seed_schedule(session: Session) -> int:
    """Insert the seeded rows that are missing (by edition, series, dose); an operator's changes are never
    overwritten."""
    data = seed_rows()
    rows = rows_from_dicts(data)  # checked before anything is written
    existing = repo.schedule_keys(session)
    added = 0
    for d, row in zip(data, rows, strict=True):
        if (row.edition, row.series, row.dose_number) in existing:
            continue
        session.add(ScheduleDose(
            edition=row.edition, effective_from=row.effective_from, series=row.series, dose_number=row.dose_number,
            vaccine_code=row.vaccine_code, min_age=row.min_age, complete_before=row.complete_before,
            intervals=[{"from_dose": i.from_dose, "min": i.min} for i in row.intervals],
            live_injectable=row.live_injectable, sex=row.sex, alt_group=row.alt_group, alt_rank=row.alt_rank,
            citation=d.get("citation"), note=d.get("note"), updated_by="seed"))
        added += 1
    session.flush()
    return added


def schedule(session: Session) -> Schedule:
    """The operator's table as the forecaster's plain rows (every edition)."""
    rows = repo.schedule_doses(session)
    if not rows:
        raise ScheduleUnavailable("免疫程序表为空：请运行 onetrip db upgrade / the immunisation schedule table is empty: "
                              "run `onetrip db upgrade` to load it")
    try:
        return Schedule(rows_from_dicts({c: getattr(r, c) for c in (
            "edition", "effective_from", "series", "dose_number", "vaccine_code", "min_age", "complete_before",
            "intervals", "live_injectable", "sex", "alt_group", "alt_rank")} for r in _schedule_order(rows)))
    except (KeyError, TypeError, ValueError) as e:
        raise ScheduleUnavailable(f"免疫程序表有错误行，请修正 / a row of the immunisation schedule table "
                                  f"(imm_schedule_dose) is malformed — fix it: {e}") from None


def _schedule_order(rows: list[ScheduleDose]) -> list[ScheduleDose]:
    """Series in the order the programme lists them: by the first dose's minimum age, then name."""
    ref = dt.date(2000, 1, 1)
    first = {}
    for r in rows:
        if r.dose_number == 1:
            first.setdefault((r.edition, r.series), add_age(ref, r.min_age))
    return sorted(rows, key=lambda r: (r.effective_from, r.edition, first.get((r.edition, r.series), ref),
                                       r.series, r.dose_number))


@dataclass(frozen=True)
class Child:
    birth: dt.date
    sex: str  # female | male | other | unknown
    record_id: str | None = None  # the registered Patient read (audited), if any


def registered_child(session: Session, principal: Principal, record_id: str) -> Child:
    """A registered patient's birth date and sex, through the audited, access-checked read."""
    rec = identity.read(session, principal, record_id)
    if rec.birth_date is None:
        raise BadRequest("该患者没有出生日期：请补全登记或在 patient 中给出 Patient 资源 / the registered patient has no "
                         "birth date: complete the registration or send a Patient resource in `patient`",
                         expression=["patient"])
    return Child(rec.birth_date, SEX_TO_FHIR.get(rec.sex, "unknown"), rec.id)


def forecast_child(session: Session, child: Child, assessed: dt.date, history: list[Dose]) -> list[SeriesForecast]:
    """The forecast with the schedule table and the rule values in force on the assessment date."""
    values = rule_values(session, RULE_SET, on=assessed)
    try:
        transitions = [transition_from_rule(values["dtap_transition"])] if "dtap_transition" in values else []
        spacing = int(values.get("live_injectable_spacing_days", LIVE_SPACING_DAYS))
    except (KeyError, TypeError, ValueError):
        raise ScheduleUnavailable(
            "规则值 immunization.dtap_transition 或 live_injectable_spacing_days 格式错误 / the rule value "
            "immunization.dtap_transition must be {\"series\": \"DTaP\", \"born_before\": \"YYYY-MM-DD\", "
            "\"edition\": \"2021\" or \"2025\"} and live_injectable_spacing_days a whole number: fix it with "
            "`onetrip rules set immunization ...`") from None
    return forecast(child.birth, child.sex, assessed, history, schedule(session), transitions=transitions,
                    live_spacing_days=spacing)
