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
