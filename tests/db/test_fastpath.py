"""db.fastpath.DriverStatement gives what session.execute gives: the same rows (UTC-aware datetimes, JSON
decoded, booleans), SQLAlchemy's own literal parameters, row counts — in the session's transaction."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import bindparam, literal_column, select, update

from onetrip.db import fastpath
from onetrip.db.fastpath import DriverStatement
from onetrip.rules.models import RuleValue

_VALUES = select(RuleValue.rule_set, RuleValue.key, RuleValue.value, RuleValue.effective_from, RuleValue.updated_at,
                 (literal_column("1") + 1).label("two")).where(RuleValue.rule_set == bindparam("rs")).order_by(
    RuleValue.key).limit(1)
_TOUCH = update(RuleValue.__table__).where(RuleValue.rule_set == bindparam("rs"), RuleValue.key == bindparam("k")
                                           ).values(note=bindparam("note"))


def test_rows_match_session_execute(db):
    stmt = DriverStatement(_VALUES)
    with db.session() as s:
        want = s.execute(_VALUES, {"rs": "scheduling"}).first()
        got = stmt.first(s, {"rs": "scheduling"})
        assert got is not None and want is not None
        assert tuple(got) == tuple(want)
        assert (got.rule_set, got.key, got.two) == (want.rule_set, want.key, 2)
        assert isinstance(got.effective_from, dt.date) and got.updated_at.tzinfo == dt.UTC
        assert stmt.first(s, {"rs": "no such rule set"}) is None


def test_row_counts_and_the_transaction_are_the_sessions(db):
    stmt = DriverStatement(_TOUCH)
    seen: list[str] = []
    fastpath.observers.append(seen.append)
    try:
        with db.session() as s:
            key = s.scalars(select(RuleValue.key).where(RuleValue.rule_set == "scheduling")).first()
            assert stmt.execute(s, {"rs": "scheduling", "k": key, "note": "changed"}) >= 1
            assert stmt.execute(s, {"rs": "scheduling", "k": "no such key", "note": "x"}) == 0
            # visible in the same transaction, gone after its rollback
            assert s.scalars(select(RuleValue.note).where(RuleValue.key == key)).first() == "changed"
            s.rollback()
            assert s.scalars(select(RuleValue.note).where(RuleValue.key == key)).first() != "changed"
    finally:
        fastpath.observers.remove(seen.append)
    if db.kind == "postgresql":  # on SQLite it runs through SQLAlchemy (its events see it)
        assert len(seen) == 2 and seen[0].startswith("UPDATE")


def test_driver_errors_are_sqlalchemys(db):
    """A constraint violation comes as sqlalchemy.exc.IntegrityError (the API answers it with a 409), not as
    the driver's own exception (which would be a 500)."""
    import pytest
    from sqlalchemy import insert
    from sqlalchemy.exc import IntegrityError

    from onetrip.kit.clock import utcnow

    stmt = DriverStatement(insert(RuleValue.__table__))
    with db.session() as s:
        row = s.scalars(select(RuleValue).where(RuleValue.rule_set == "scheduling")).first()
        dup = {"id": "dup" + row.id[3:], "rule_set": row.rule_set, "key": row.key, "value": row.value,
               "effective_from": row.effective_from, "confidence": "U", "citation": "test", "note": None,
               "updated_by": "test", "updated_at": utcnow()}
        with pytest.raises(IntegrityError):
            stmt.execute(s, dup)
        s.rollback()


def test_logged_only_with_log_sql_and_masked(db, caplog, monkeypatch):
    """An INFO-level root logger (the MLLP listener sets one) must not log every hot statement with its
    parameters; with ``log_sql`` (the engine's echo) it is logged, ID numbers masked."""
    import logging

    import pytest

    if db.kind != "postgresql":
        pytest.skip("on SQLite the statement runs through SQLAlchemy, whose echo logs it")
    stmt = DriverStatement(_VALUES)
    caplog.set_level(logging.INFO, logger="onetrip.sql")
    with db.session() as s:
        stmt.first(s, {"rs": "330281198001010012"})
        assert not [r for r in caplog.records if r.name == "onetrip.sql"]
        monkeypatch.setattr(db.engine, "echo", True)
        stmt.first(s, {"rs": "330281198001010012"})
        logged = [r.getMessage() for r in caplog.records if r.name == "onetrip.sql"]
        assert len(logged) == 1 and "330281198001010012" not in logged[0] and "rule_value" in logged[0]


def test_native_placeholders_number_each_name_once_and_unescape_percent():
    sql, order = fastpath.native_placeholders(
        "SELECT %(a)s::INTEGER, %(b_1)s, %(a)s WHERE x LIKE 'y%%' AND z ? %(c)s")
    assert sql == "SELECT $1::INTEGER, $2, $1 WHERE x LIKE 'y%' AND z ? $3"
    assert order == ["a", "b_1", "c"]


def test_a_statement_with_a_percent_literal_and_a_repeated_parameter(db):
    """The SQL PostgreSQL gets (``$n``) keeps a literal ``%`` and gives a parameter used twice one value."""
    stmt = DriverStatement(select(RuleValue.key).where(RuleValue.rule_set == bindparam("rs"),
                                                       RuleValue.key.like("%"), RuleValue.rule_set != bindparam("rs") + "x")
                           .order_by(RuleValue.key).limit(1))
    with db.session() as s:
        got = stmt.first(s, {"rs": "scheduling"})
        assert got is not None and got.key == s.scalars(
            select(RuleValue.key).where(RuleValue.rule_set == "scheduling").order_by(RuleValue.key)).first()
