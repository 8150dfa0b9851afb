"""The Chinese public-holiday calendar, including adjusted working days (调休), from the maintained
``chinese-calendar`` package (the State Council's yearly 放假安排, updated each November).

Local time for schedules is Asia/Shanghai; the database stores aware UTC.
"""

from __future__ import annotations

import datetime as dt
import logging
from functools import lru_cache

import chinese_calendar

log = logging.getLogger("onetrip.scheduling")



class CalendarUnknown(ValueError):
    """The package has no holiday data for that year yet (it is published each November)."""


@lru_cache(maxsize=4096)
def is_working_day(day: dt.date) -> bool:
    """True on a normal weekday that is not a public holiday, and on an adjusted working weekend day."""
    try:
        return chinese_calendar.is_workday(day)
    except NotImplementedError as e:
        raise CalendarUnknown(f"无 {day.year} 年节假日数据 / no holiday data for {day.year}: upgrade "
                              "chinese-calendar") from e


def holiday_name(day: dt.date) -> str | None:
    """The holiday's English name when ``day`` is a public holiday or an adjusted working day, else None."""
    try:
        _on_holiday, name = chinese_calendar.get_holiday_detail(day)
    except NotImplementedError:
        return None
    return name


def is_adjusted_working_day(day: dt.date) -> bool:
    """A Saturday or Sunday that is a working day (调休上班)."""
    return day.weekday() >= 5 and is_working_day(day)


def is_public_holiday(day: dt.date) -> bool:
    """A statutory holiday day off (not an ordinary weekend)."""
    try:
        on_holiday, name = chinese_calendar.get_holiday_detail(day)
    except NotImplementedError as e:
        raise CalendarUnknown(f"无 {day.year} 年节假日数据 / no holiday data for {day.year}: upgrade "
                              "chinese-calendar") from e
    return bool(on_holiday and name)


def template_weekday(day: dt.date) -> int | None:
    """Which weekly template runs on ``day``: none on a public holiday; Monday's (0) on an adjusted
    working weekend day (it is a full working day); otherwise the day's own weekday (0–6), so resources
    with ordinary Saturday or Sunday templates keep them. For a year the package does not know yet
    (the State Council publishes in November) the plain week is used and a warning logged."""
    try:
        is_public_holiday(day)
    except CalendarUnknown as e:
        _warn_unknown(day.year, str(e))
        return day.weekday()
    if is_public_holiday(day):
        return None
    if is_adjusted_working_day(day):
        return 0
    return day.weekday()


@lru_cache(maxsize=64)
def _warn_unknown(year: int, message: str) -> None:
    log.warning("%s — slots for %s follow the plain week", message, year)
