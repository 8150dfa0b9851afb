"""``onetrip scheduling ...`` against a real database."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from onetrip.cli.scheduling import scheduling_app
from tests.scheduling.conftest import build_sched

app = typer.Typer()
app.add_typer(scheduling_app, name="scheduling")


@pytest.fixture
def cli(db, monkeypatch):
    from onetrip.config import get_settings
    from onetrip.db import session as db_session

    monkeypatch.setenv("ONETRIP_DATABASE_URL", db.url)
    caches = (get_settings, db_session.get_engine, db_session.get_sessionmaker)
    for f in caches:
        f.cache_clear()
    yield CliRunner()
    db_session.get_engine().dispose()
    for f in caches:
        f.cache_clear()


def test_commands(cli, db, world):
    build_sched(db, world.org_a, days=1)
    r = cli.invoke(app, ["scheduling", "seed-catalogue"])
    assert r.exit_code == 0 and "0 added" in r.output
    r = cli.invoke(app, ["scheduling", "generate-slots", "--start", "2026-10-01", "--days", "1",
                         "--institution", world.org_a_code])
    assert r.exit_code == 0 and "0 created" in r.output, r.output  # National Day: nothing
    r = cli.invoke(app, ["scheduling", "generate-slots", "--start", "2026-10-10", "--days", "1"])
    assert r.exit_code == 0 and " 0 created" not in r.output, r.output  # adjusted working Saturday
    for cmd in ("release-reserved", "expire-holds"):
        assert cli.invoke(app, ["scheduling", cmd]).exit_code == 0
    r = cli.invoke(app, ["scheduling", "generate-slots", "--institution", "NOPE"])
    assert r.exit_code == 2 and "NOPE" in r.output
    assert cli.invoke(app, ["scheduling", "generate-slots", "--start", "tomorrow"]).exit_code == 2
