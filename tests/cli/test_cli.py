"""The CLI against a real database: users, clients, rules; clear messages on bad input."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from onetrip.cli.main import app
from onetrip.registry.models import SystemClient, User
from onetrip.rules.service import rule_values


def test_db_upgrade_is_idempotent(cli_env):
    r = cli_env.invoke(app, ["db", "upgrade"])
    assert r.exit_code == 0, r.output


def test_user_create_reads_password_from_stdin(cli_env, db, world):
    r = cli_env.invoke(app, ["user", "create", "li.na", "--role", "nurse", "--institution", world.org_b_code,
                             "--password-stdin"], input="Str0ng-Quay#Heron-26\n")
    assert r.exit_code == 0, r.output
    with db.session() as s:
        u = s.scalar(select(User).where(User.username == "li.na"))
        assert u.organization_id == world.org_b and u.roles == ["nurse"] and "Str0ng" not in u.password_hash


@pytest.mark.parametrize(("args", "stdin", "says"), [
    (["user", "create", "x1", "--role", "nurse", "--institution", "NOPE", "--password-stdin"], "Str0ng-Quay#Heron-26\n",
     "no institution"),
    (["user", "create", "x2", "--role", "wizard", "--institution", "{org}", "--password-stdin"], "Str0ng-Quay#Heron-26\n",
     "unknown role"),
    (["user", "create", "x3", "--role", "nurse", "--institution", "{org}", "--password-stdin"], "weak\n",
     "password rejected"),
    (["user", "create", "x4", "--role", "nurse", "--institution", "{org}"], "", "--password-stdin"),
])
def test_user_create_errors_say_what_to_fix(cli_env, world, args, stdin, says):
    args = [a.replace("{org}", world.org_a_code) for a in args]
    r = cli_env.invoke(app, args, input=stdin)
    assert r.exit_code == 2
    assert says in r.output


def test_client_create_prints_a_secret_once(cli_env, db):
    r = cli_env.invoke(app, ["client", "create", "LIS", "--scopes", "system/Patient.rs"])
    assert r.exit_code == 0, r.output
    cid = next(line.split("=", 1)[1] for line in r.output.splitlines() if line.startswith("client_id="))
    with db.session() as s:
        c = s.scalar(select(SystemClient).where(SystemClient.client_id == cid))
        assert c.scopes == "system/Patient.rs"
    r = cli_env.invoke(app, ["client", "create", "bad", "--scopes", "everything"])
    assert r.exit_code == 2 and "invalid scope" in r.output


def test_rules_set_keeps_history(cli_env, db):
    r = cli_env.invoke(app, ["rules", "set", "security", "lockout_threshold", "7", "--effective-from", "2026-01-01"])
    assert r.exit_code == 0, r.output
    with db.session() as s:
        assert rule_values(s, "security")["lockout_threshold"] == 7
        assert rule_values(s, "security", on=__import__("datetime").date(2025, 6, 1))["lockout_threshold"] == 5
    r = cli_env.invoke(app, ["rules", "set", "security", "no_such_rule", "1"])
    assert r.exit_code == 2 and "no rule" in r.output
    r = cli_env.invoke(app, ["rules", "list", "security"])
    assert "lockout_threshold" in r.output
