"""kit.clock.LocalDates: the local date of many stored UTC times, equal to local_date for every one — in the
years Asia/Shanghai kept summer time (1986–1991: months whose offset changes fall back to local_date), for
aware, naive-UTC and other-offset datetimes, and just before and after local midnight."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from onetrip.kit.clock import LocalDates, local_date


def test_equals_local_date_over_forty_years_in_every_form():
    f = LocalDates()
    rng = random.Random(20)
    start = dt.datetime(1984, 1, 1, tzinfo=dt.UTC)
    for _ in range(20_000):
        m = start + dt.timedelta(seconds=rng.randint(0, 46 * 365 * 86400))
        want = local_date(m)
        assert f(m) == want and f(m.replace(tzinfo=None)) == want
        assert f(m.astimezone(dt.timezone(dt.timedelta(hours=-7)))) == want


@pytest.mark.parametrize(("utc", "local"), [
    (dt.datetime(2026, 3, 31, 15, 59, 59), dt.date(2026, 3, 31)),  # 23:59:59 CST
    (dt.datetime(2026, 3, 31, 16, 0, 0), dt.date(2026, 4, 1)),     # local midnight
    (dt.datetime(2026, 12, 31, 16, 0, 0), dt.date(2027, 1, 1)),    # the year turns locally first
    (dt.datetime(1988, 7, 1, 15, 30), dt.date(1988, 7, 2)),        # summer time (UTC+9): 00:30 the next day
    (dt.datetime(1988, 4, 9, 15, 30), dt.date(1988, 4, 9)),        # the day before summer time began: 23:30
])
def test_midnight_and_summer_time(utc, local):
    f = LocalDates()
    assert f(utc.replace(tzinfo=dt.UTC)) == local == local_date(utc.replace(tzinfo=dt.UTC))
    assert f(utc) == local
