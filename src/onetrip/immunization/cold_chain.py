"""The cold chain as the clinic sees it (issue 20 point 4, RULES R6.7): each fridge with its range, last reading,
today's manual morning / afternoon record and open alarms with the lots they hold in quarantine; the
manual-record worklist; a fridge's readings of the last days.

Reads only (no patient data: nothing to audit); the writes — a manual reading, releasing an alarm, a new
fridge — are service.manual_reading / release_alarm / create_fridge. Days are Asia/Shanghai days
(kit.clock, the one time-zone helper).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from onetrip.immunization import repository as repo
from onetrip.immunization import rules, service
from onetrip.immunization.models import ColdChainAlarm, Fridge, TemperatureReading, VaccineLot, VaccineProduct
from onetrip.kit import clock
from onetrip.kit.errors import NotFound
from onetrip.kit.principal import Principal

HISTORY_DAYS = 7


@dataclass(frozen=True)
class AlarmView:
    alarm: ColdChainAlarm
    lots: list[tuple[VaccineLot, VaccineProduct]]


@dataclass(frozen=True)
class FridgeView:
    fridge: Fridge
    range: dict[str, Any]  # the rule value cold_chain_range in force
    last: TemperatureReading | None
    manual_today: list[TemperatureReading]
    manual: rules.ManualCheck
    alarms: list[AlarmView]


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The local day [00:00, next 00:00) as aware UTC."""
    return clock.local_datetime(day, "00:00"), clock.local_datetime(day + dt.timedelta(days=1), "00:00")


def _rule(session: Session, day: dt.date, key: str, default: dict) -> dict:
    value = service._values(session, day).get(key)
    return {**default, **value} if isinstance(value, dict) else dict(default)


def manual_checks(session: Session, fridges: list[Fridge], day: dt.date
                  ) -> dict[str, tuple[rules.ManualCheck, list[TemperatureReading]]]:
    """Per fridge: the R6.7 manual-record check of the day and that day's manual readings."""
    rule = _rule(session, day, "manual_record", rules.MANUAL_RECORD)
    since, until = day_bounds(day)
    readings = repo.fridge_readings(session, [f.id for f in fridges], since, until, source="manual")
    out = {}
    for f in fridges:
        mine = [r for r in readings if r.fridge_id == f.id]
        times = [clock.as_utc(r.measured_at).astimezone(clock.LOCAL_TZ).time() for r in mine]
        out[f.id] = (rules.manual_record_check(times, rule), mine)
    return out


def overview(session: Session, principal: Principal, now: dt.datetime | None = None) -> list[FridgeView]:
    """Every fridge of the caller's clinic (the operator without a clinic: every clinic's)."""
    now = now or clock.utcnow()
    today = clock.local_date(now)
    fridges = repo.clinic_fridges(session, service._clinic_or_all(principal, None))
    rng = _rule(session, today, "cold_chain_range", rules.COLD_CHAIN_RANGE)
    checks = manual_checks(session, fridges, today)
    open_by_fridge: dict[str, list[ColdChainAlarm]] = {}
    for a in repo.open_alarms(session, organization_id=service._clinic_or_all(principal, None)):
        open_by_fridge.setdefault(a.fridge_id, []).append(a)
    return [FridgeView(f, rng, repo.last_reading(session, f.id), checks[f.id][1], checks[f.id][0],
                       [AlarmView(a, repo.lots_with_products(session, list(a.lot_ids)))
                        for a in open_by_fridge.get(f.id, [])])
            for f in fridges]


def manual_worklist(session: Session, principal: Principal, day: dt.date
                    ) -> list[tuple[Fridge, rules.ManualCheck]]:
    """The fridges whose manual record of ``day`` is incomplete (R6.7), by name."""
    fridges = repo.clinic_fridges(session, service._clinic_or_all(principal, None))
    checks = manual_checks(session, fridges, day)
    return [(f, checks[f.id][0]) for f in fridges if not checks[f.id][0].complete]


@dataclass(frozen=True)
class FridgeHistory:
    fridge: Fridge
    range: dict[str, Any]
    readings: list[TemperatureReading]  # oldest first
    days: list[tuple[dt.date, rules.ManualCheck]]  # newest first
    alarms: list[ColdChainAlarm]


def fridge_history(session: Session, principal: Principal, fridge_id: str, days: int = HISTORY_DAYS,
                   now: dt.datetime | None = None) -> FridgeHistory:
    """A fridge's readings of the last ``days`` local days (today included) and each day's manual check."""
    fridge = session.get(Fridge, fridge_id)
    if fridge is None:
        raise NotFound("冰箱不存在 / fridge not found")
    service._clinic(principal, fridge.organization_id)
    today = clock.local_date(now or clock.utcnow())
    first = today - dt.timedelta(days=days - 1)
    readings = repo.fridge_readings(session, [fridge.id], day_bounds(first)[0], day_bounds(today)[1])
    rule = _rule(session, today, "manual_record", rules.MANUAL_RECORD)
    per_day: dict[dt.date, list[dt.time]] = {}
    for r in readings:
        if r.source == "manual":
            local = clock.as_utc(r.measured_at).astimezone(clock.LOCAL_TZ)
            per_day.setdefault(local.date(), []).append(local.time())
    checks = [(first + dt.timedelta(days=i), rules.manual_record_check(per_day.get(first + dt.timedelta(days=i), []),
                                                                       rule))
              for i in range(days)][::-1]
    alarms = [a for a in repo.alarms(session, fridge.organization_id, None, limit=50) if a.fridge_id == fridge.id]
    return FridgeHistory(fridge, _rule(session, today, "cold_chain_range", rules.COLD_CHAIN_RANGE), readings,
                         checks, alarms)


def sparkline(readings: list[TemperatureReading], rng: dict[str, Any], frozen: bool, width: int = 600,
              height: int = 120) -> dict[str, Any]:
    """Points of an inline SVG line of the readings (x by time, y by °C), with the allowed band's y-values."""
    if not readings:
        return {"points": "", "band": None, "width": width, "height": height, "dots": []}
    temps = [r.celsius for r in readings]
    lo_band = float(rng["min"]) if not frozen else float(rng["frozen_max"]) - 10
    hi_band = float(rng["max"]) if not frozen else float(rng["frozen_max"])
    lo, hi = min([*temps, lo_band]) - 1, max([*temps, hi_band]) + 1
    t0 = clock.as_utc(readings[0].measured_at).timestamp()
    span = max(clock.as_utc(readings[-1].measured_at).timestamp() - t0, 1.0)

    def y(c: float) -> float:
        return round(height - (c - lo) / (hi - lo) * height, 1)

    pts = [(round((clock.as_utc(r.measured_at).timestamp() - t0) / span * width, 1), y(r.celsius), r.excursion)
           for r in readings]
    return {"points": " ".join(f"{x},{yy}" for x, yy, _ in pts), "width": width, "height": height,
            "band": (y(hi_band), y(lo_band)), "dots": [(x, yy) for x, yy, bad in pts if bad]}


def clinic_has_fridge(session: Session, organization_id: str | None) -> bool:
    return bool(organization_id and repo.clinic_fridges(session, organization_id))
