"""Tampering behind the triggers' back is found by `onetrip audit verify` (own module: it leaves the
chain broken on purpose)."""

from __future__ import annotations

from onetrip.audit import service as audit
from onetrip.kit.principal import cli_principal


def _tamper(db, sql: str) -> None:
    """What an attacker with DBA rights would do: switch the guard off, edit, switch it back."""
    with db.engine.begin() as c:
        if db.kind == "sqlite":
            c.exec_driver_sql("DROP TRIGGER audit_event_no_update")
            c.exec_driver_sql("DROP TRIGGER audit_event_no_delete")
            c.exec_driver_sql(sql)
            c.exec_driver_sql("CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event "
                              "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END")
            c.exec_driver_sql("CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event "
                              "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END")
        else:
            c.exec_driver_sql("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only")
            c.exec_driver_sql(sql)
            c.exec_driver_sql("ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only")


def test_chain_check_detects_an_edit(db, monkeypatch):
    from typer.testing import CliRunner

    from onetrip.cli.main import app
    from onetrip.db import session as db_session

    with db.session() as s:
        for i in range(5):
            audit.record(s, cli_principal(), "read", what=[f"Patient/t{i}"])
        s.commit()
    monkeypatch.setenv("ONETRIP_DATABASE_URL", db.url)
    for f in (db_session.get_engine, db_session.get_sessionmaker):
        f.cache_clear()
    from onetrip.config import get_settings

    get_settings.cache_clear()
    runner = CliRunner()
    try:
        ok = runner.invoke(app, ["audit", "verify"])
        assert ok.exit_code == 0, ok.output
        assert "intact" in ok.output
        _tamper(db, "UPDATE audit_event SET agent_name = 'nobody' WHERE entity_what = 'Patient/t2'")
        bad = runner.invoke(app, ["audit", "verify"])
        assert bad.exit_code == 1
        assert "edited" in bad.output
    finally:
        db_session.get_engine().dispose()
        for f in (db_session.get_engine, db_session.get_sessionmaker, get_settings):
            f.cache_clear()
