"""SQL expressions spelled differently on each database, so that code above the storage layer never asks
which one it is on (STYLE 12): it calls one of these with its session."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Date, Integer, String, cast, func
from sqlalchemy.orm import Session

from onetrip.kit.clock import LOCAL_TZ

PERIODS = ("day", "month", "quarter", "year")
_PG_FORMAT = {"day": "YYYY-MM-DD", "month": "YYYY-MM", "quarter": 'YYYY-"Q"Q', "year": "YYYY"}


def period_label(session: Session, period: str, date: ColumnElement) -> ColumnElement[str]:
    """The period a DATE column's value falls in, as text: ``2026-03-07`` (day), ``2026-03`` (month),
    ``2026-Q1`` (quarter), ``2026`` (year). PostgreSQL formats the date (``to_char``); SQLite stores a date
    as ISO text and cuts it (a quarter from its month)."""
    if period not in PERIODS:
        raise ValueError(f"unknown period {period!r}")
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(date, _PG_FORMAT[period])
    if period == "quarter":
        month = cast(func.substr(date, 6, 2), Integer)
        return func.substr(date, 1, 4).concat("-Q").concat(cast((month + 2) // 3, String))
    return func.substr(date, 1, {"day": 10, "month": 7, "year": 4}[period])


def local_date(session: Session, moment: ColumnElement) -> ColumnElement:
    """The local (Asia/Shanghai) date of a UTC timestamp column. SQLite has no time zones; China has kept
    UTC+8 without daylight saving since 1991, which is what it is told."""
    if session.get_bind().dialect.name == "postgresql":
        return func.date(func.timezone(LOCAL_TZ.key, moment))
    return func.date(moment, "+8 hours")


def month_start(session: Session, date: ColumnElement) -> ColumnElement:
    """The first day of a DATE column's month."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.date_trunc("month", date), Date)
    return func.date(date, "start of month")


def days_between(session: Session, later: ColumnElement, earlier: ColumnElement) -> ColumnElement[int]:
    """Whole days from one DATE expression to another (PostgreSQL subtracts dates; SQLite's dates are text)."""
    if session.get_bind().dialect.name == "postgresql":
        return later - earlier
    return cast(func.julianday(later) - func.julianday(earlier), Integer)


def json_array_length(session: Session, array: ColumnElement) -> ColumnElement[int]:
    """The length of a JSON array column (JSONB on PostgreSQL, JSON text on SQLite)."""
    fn = func.jsonb_array_length if session.get_bind().dialect.name == "postgresql" else func.json_array_length
    return fn(array)
