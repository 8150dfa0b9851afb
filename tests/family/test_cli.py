"""``onetrip family ...`` against a real database."""

from __future__ import annotations

import datetime as dt

import typer
from sqlalchemy import select

from onetrip.cli.family import family_app
from onetrip.family import common
from onetrip.family.models import Team
from onetrip.registry.models import Organization
from tests.family.conftest import enrolled

app = typer.Typer()
app.add_typer(family_app, name="family")


def test_commands(cli_env, db, fam):
    pid, _ = enrolled(db, fam, enrolled_on=common.today() - dt.timedelta(days=300))  # never seen: due at once
    with db.session() as s:
        code = s.scalar(select(Organization.code).where(Organization.id == fam.org))
        team_code = s.get(Team, fam.team).code
    r = cli_env.invoke(app, ["family", "worklist", "--institution", code, "--team", team_code, "--only", "overdue"])
    assert r.exit_code == 0, r.output
    assert "逾期" in r.output and "*" in r.output
    r = cli_env.invoke(app, ["family", "figures", "--level", "team", "--json"])
    assert r.exit_code == 0 and '"programmes"' in r.output, r.output
    assert cli_env.invoke(app, ["family", "figures"]).exit_code == 0
    assert cli_env.invoke(app, ["family", "expire-contracts"]).exit_code == 0
    r = cli_env.invoke(app, ["family", "device-token", "--serial", "K-9", "--institution", code])
    assert r.exit_code == 0 and "dev_" in r.output
    bad = cli_env.invoke(app, ["family", "worklist", "--institution", "NOPE", "--team", "X"])
    assert bad.exit_code == 2 and "NOPE" in bad.output
    assert cli_env.invoke(app, ["family", "worklist", "--institution", code, "--team", team_code,
                                "--only", "soon"]).exit_code == 2
    assert cli_env.invoke(app, ["family", "figures", "--level", "village"]).exit_code == 2
