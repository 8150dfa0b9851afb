"""db.expressions: the same answer on both databases, so callers never ask which one they are on."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Date, literal, select

from onetrip.db.expressions import period_label


@pytest.mark.parametrize(("period", "expected"), [("day", "2026-11-07"), ("month", "2026-11"),
                                                  ("quarter", "2026-Q4"), ("year", "2026")])
def test_period_label(db, period, expected):
    with db.session() as s:
        assert s.scalar(select(period_label(s, period, literal(dt.date(2026, 11, 7), Date)))) == expected


def test_an_unknown_period_is_refused(db):
    with db.session() as s, pytest.raises(ValueError):
        period_label(s, "week", literal(dt.date(2026, 11, 7), Date))
