"""How concurrent transactions behave on each database, asked in one place (STYLE 12) by the code that
consumes the outbox or must run alone (analytics' fact updater, the notification fan-out)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text
from sqlalchemy.orm import Session


def _postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def transaction_lock(session: Session, key: int) -> None:
    """Hold lock ``key`` until this transaction ends: one holder at a time. PostgreSQL takes an advisory
    transaction lock; SQLite needs none (a writing transaction already holds the database's one writer lock)."""
    if _postgresql(session):
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def ids_commit_in_order(session: Session) -> bool:
    """Whether rows become visible in the order of their ids. True on SQLite (one writer at a time); not on
    PostgreSQL, where a transaction holding a lower sequence value may commit after a higher one."""
    return not _postgresql(session)


def oldest_open_transaction(session: Session) -> dt.datetime | None:
    """When the oldest transaction still open in this database (other than ours) began, on PostgreSQL; None
    when there is none, on SQLite (whose writers never overlap), or when the statistics view is not readable."""
    if not _postgresql(session):
        return None
    return session.scalar(text(
        "SELECT min(xact_start) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"))
