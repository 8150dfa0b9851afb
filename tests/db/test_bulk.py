"""db.bulk.bulk_insert (COPY on PostgreSQL, executemany on SQLite) stores what an ORM insert would: the same
values read back (UTC-aware datetimes, dates, booleans, JSON with Chinese text), NULLs, in the session's
transaction (a rollback takes the rows away)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from onetrip.analytics.models import AnalyticsFollowup
from onetrip.db.bulk import bulk_insert
from onetrip.outbox.models import OutboxEvent

AT = dt.datetime(2026, 3, 1, 8, 30, 15, 123456, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def _events(n: int) -> list[dict]:
    return [{"event_id": f"bulk-test-{i:04d}", "occurred_at": AT + dt.timedelta(minutes=i), "event_type": "bulk.test",
             "aggregate_type": "Test", "aggregate_id": f"agg{i}", "person_id": None if i % 2 else f"p{i}",
             "payload": {"i": i, "名称": "高血压", "nested": [1, {"ok": True}]},
             "published_at": None} for i in range(n)]


def test_dict_rows_read_back_as_an_orm_insert_would_store_them(db):
    with db.session() as s:
        assert bulk_insert(s, OutboxEvent.__table__, _events(250)) == 250
        rows = list(s.scalars(select(OutboxEvent).where(OutboxEvent.event_type == "bulk.test")
                              .order_by(OutboxEvent.event_id)))
        assert len(rows) == 250
        first, second = rows[0], rows[1]
        assert first.occurred_at == AT and first.occurred_at.tzinfo is not None
        assert first.occurred_at.utcoffset() == dt.timedelta(0)
        assert first.payload == {"i": 0, "名称": "高血压", "nested": [1, {"ok": True}]}
        assert first.person_id == "p0" and second.person_id is None and first.published_at is None
        assert s.scalar(select(func.count()).select_from(OutboxEvent).where(
            OutboxEvent.event_type == "bulk.test", OutboxEvent.person_id.is_(None))) == 125
        s.rollback()
        assert s.scalar(select(func.count()).select_from(OutboxEvent).where(
            OutboxEvent.event_type == "bulk.test")) == 0


def test_tuples_with_columns_dates_and_booleans(db):
    cols = ("followup_id", "programme", "person_id", "organization_id", "visit_date", "controlled", "on_schedule")
    rows = [(f"f{i}", "hypertension", None, "org", dt.date(2026, 1, 1) + dt.timedelta(days=i), i % 3 == 0, True)
            for i in range(30)]
    with db.session() as s:
        assert bulk_insert(s, AnalyticsFollowup.__table__, rows, columns=cols) == 30
        got = list(s.scalars(select(AnalyticsFollowup).order_by(AnalyticsFollowup.visit_date)))
        assert [g.followup_id for g in got] == [f"f{i}" for i in range(30)]
        assert got[3].visit_date == dt.date(2026, 1, 4) and got[3].controlled is True and got[4].controlled is False
        assert s.scalar(select(func.count()).select_from(AnalyticsFollowup).where(
            AnalyticsFollowup.controlled.is_(True), AnalyticsFollowup.visit_date >= dt.date(2026, 1, 10))) == 7
        s.rollback()


def test_nothing_to_insert(db):
    with db.session() as s:
        assert bulk_insert(s, OutboxEvent.__table__, []) == 0
