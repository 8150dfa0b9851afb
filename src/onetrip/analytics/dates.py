"""Local (Asia/Shanghai) days and months for the facts: in Python, and as SQL for the database at hand.

The facts count per local day; timestamps are stored in UTC. The two SQL helpers are the only place the
facts ask which database they run on for a date expression.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import and_, literal, or_

from onetrip.kit.clock import LOCAL_TZ


def local_day(moment: dt.datetime) -> dt.date:
    return moment.astimezone(LOCAL_TZ).date() if moment.tzinfo else moment.replace(tzinfo=dt.UTC).astimezone(
        LOCAL_TZ).date()


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime(day.year, day.month, day.day, tzinfo=LOCAL_TZ).astimezone(dt.UTC)
    return start, start + dt.timedelta(days=1)


def parse_iso_day(value: Any) -> dt.date | None:
    """The local day of an ISO date or date-time in an event payload (None when absent)."""
    if not value:
        return None
    text_value = str(value)
    if len(text_value) == 10:
        return dt.date.fromisoformat(text_value)
    moment = dt.datetime.fromisoformat(text_value.replace("Z", "+00:00"))
    return local_day(moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC))


def as_date(value) -> dt.date:
    """A date column's value (SQLite's ``date()`` returns text)."""
    return dt.date.fromisoformat(value) if isinstance(value, str) else value


def next_month(m: dt.date) -> dt.date:
    return dt.date(m.year + m.month // 12, m.month % 12 + 1, 1)


def chunks(items: Sequence, n: int = 500) -> Iterable[Sequence]:
    """``items`` in slices of ``n`` (IN lists of a bounded length)."""
    for i in range(0, len(items), n):
        yield items[i:i + n]


def time_filter(column, days: set[dt.date] | None):
    """``column`` (a UTC timestamp) falls on one of the local ``days`` (all when None)."""
    if days is None:
        return literal(True)
    return or_(*[and_(column >= a, column < b) for a, b in (day_bounds(d) for d in sorted(days))])
