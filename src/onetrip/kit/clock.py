"""The one place that reads the time, so tests can reason about it. Always timezone-aware UTC."""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import Field


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


LOCAL_TZ = ZoneInfo("Asia/Shanghai")
"""Local time of the platform's users: schedules, report days and messages are in China Standard Time; the
database stores aware UTC. The one definition of it."""


def local_datetime(day: dt.date, hhmm: str) -> dt.datetime:
    """``day`` at ``HH:MM`` Asia/Shanghai, as aware UTC."""
    h, m = (int(x) for x in hhmm.split(":"))
    return dt.datetime(day.year, day.month, day.day, h, m, tzinfo=LOCAL_TZ).astimezone(dt.UTC)


def local_date(moment: dt.datetime) -> dt.date:
    return moment.astimezone(LOCAL_TZ).date()


class LocalDates:
    """``local_date`` for many stored UTC times at once (a report over millions of rows): the zone's offset is
    looked up once per calendar month and kept while it is the same at both ends of that month (Asia/Shanghai:
    always, since 1991); a month in which it changes falls back to ``local_date``. Accepts aware or naive-UTC
    datetimes (as SQLite returns them)."""

    def __init__(self) -> None:
        self._offsets: dict[tuple[int, int], dt.timedelta | None] = {}

    def _offset(self, year: int, month: int) -> dt.timedelta | None:
        start = dt.datetime(year, month, 1, tzinfo=dt.UTC)
        end = dt.datetime(year + month // 12, month % 12 + 1, 1, tzinfo=dt.UTC) - dt.timedelta(seconds=1)
        first, last = LOCAL_TZ.utcoffset(start.astimezone(LOCAL_TZ)), LOCAL_TZ.utcoffset(end.astimezone(LOCAL_TZ))
        return first if first == last else None

    def __call__(self, moment: dt.datetime) -> dt.date:
        key = (moment.year, moment.month)
        try:
            offset = self._offsets[key]
        except KeyError:
            offset = self._offsets[key] = self._offset(*key)
        if offset is None or moment.tzinfo not in (None, dt.UTC):
            return local_date(as_utc(moment))
        return (moment + offset).date()


def local_hhmm(moment: dt.datetime) -> str:
    return moment.astimezone(LOCAL_TZ).strftime("%H:%M")


def local_iso(moment: dt.datetime) -> str:
    return moment.astimezone(LOCAL_TZ).isoformat()


def as_utc(value: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes; we store UTC, so a naive value is UTC."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


# Dates a health service can mean. Arithmetic on them (± days, a year of figures) stays inside what
# Python's date supports, so input such as 0001-01-01 is refused with a 4xx instead of overflowing.
MIN_SERVICE_DATE = dt.date(1900, 1, 1)
MAX_SERVICE_DATE = dt.date(2200, 12, 31)

ServiceDate = Annotated[dt.date, Field(ge=MIN_SERVICE_DATE, le=MAX_SERVICE_DATE)]
"""A date field of a request body, bounded to the service dates (out of range → 422 OperationOutcome)."""
