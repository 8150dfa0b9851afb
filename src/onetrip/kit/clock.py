"""The one place that reads the time, so tests can reason about it. Always timezone-aware UTC."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import Field


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def as_utc(value: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes; we store UTC, so a naive value is UTC."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


# Dates a health service can mean. Arithmetic on them (± days, a year of figures) stays inside what
# Python's date supports, so input such as 0001-01-01 is refused with a 4xx instead of overflowing.
MIN_SERVICE_DATE = dt.date(1900, 1, 1)
MAX_SERVICE_DATE = dt.date(2200, 12, 31)

ServiceDate = Annotated[dt.date, Field(ge=MIN_SERVICE_DATE, le=MAX_SERVICE_DATE)]
"""A date field of a request body, bounded to the service dates (out of range → 422 OperationOutcome)."""
