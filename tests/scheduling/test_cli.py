"""``onetrip scheduling ...`` against a real database."""

from __future__ import annotations

import typer

from onetrip.cli.scheduling import scheduling_app
from tests.scheduling.conftest import build_sched

app = typer.Typer()
app.add_typer(scheduling_app, name="scheduling")



def test_commands(cli_env, db, world):
    build_sched(db, world.org_a, days=1)
    r = cli_env.invoke(app, ["scheduling", "seed-catalogue"])
    assert r.exit_code == 0 and "0 added" in r.output
    r = cli_env.invoke(app, ["scheduling", "generate-slots", "--start", "2026-10-01", "--days", "1",
                         "--institution", world.org_a_code])
    assert r.exit_code == 0 and "0 created" in r.output, r.output  # National Day: nothing
    r = cli_env.invoke(app, ["scheduling", "generate-slots", "--start", "2026-10-10", "--days", "1"])
    assert r.exit_code == 0 and " 0 created" not in r.output, r.output  # adjusted working Saturday
    for cmd in ("release-reserved", "expire-holds"):
        assert cli_env.invoke(app, ["scheduling", cmd]).exit_code == 0
    r = cli_env.invoke(app, ["scheduling", "generate-slots", "--institution", "NOPE"])
    assert r.exit_code == 2 and "NOPE" in r.output
    assert cli_env.invoke(app, ["scheduling", "generate-slots", "--start", "tomorrow"]).exit_code == 2
