"""SLA expiry with escalation to the department head first, on a controllable clock; the rule values
that drive it; and the `onetrip referral expire` command."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from onetrip.cli.main import app as cli_app
from onetrip.kit import clock
from onetrip.outbox.models import OutboxEvent
from onetrip.referral import rules, service
from onetrip.referral.models import Referral
from onetrip.rules.service import rule_values
from tests.referral.conftest import branch_patient

T0 = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)


@pytest.fixture
def at(monkeypatch):
    """Set the time the referral service sees: at(t)."""
    now = [T0]
    monkeypatch.setattr(clock, "utcnow", lambda: now[0])

    def set_(t: dt.datetime) -> None:
        now[0] = t
    return set_


def _submitted(db, world, doc_b, *, urgent: bool = False) -> str:
    person_id, _ = branch_patient(db, world)
    with db.session() as s:
        r = service.draft_referral(s, doc_b, person_id=person_id, direction="up", to_organization_id=world.org_a,
                                   reason="胸痛待查", criteria_codes=["U5"], source="web", urgent=urgent)
        service.submit(s, doc_b, r.id)
        s.commit()
        return r.id


def test_seeded_sla_values(db):
    """Issue 6 §1 local choices [U] and R2.5: changing a value must be a deliberate act."""
    with db.session() as s:
        cfg = rule_values(s, "referral")
    assert (cfg["sla_hours"], cfg["sla_hours_urgent"], cfg["escalate_hours"], cfg["escalate_hours_urgent"]) == (
        48, 4, 24, 2)
    assert cfg["followup_days"] == 14  # R2.5: within 2 weeks
    assert cfg["access_days"] == 30
    assert [c["code"] for c in cfg["criteria_up"]] == ["U1", "U2", "U3", "U4", "U5", "U6"]  # R2.1
    assert [c["code"] for c in cfg["criteria_down"]] == ["D1", "D2", "D3", "D4", "D5", "D6"]  # R2.2
    assert cfg["chronic_code_prefixes"] == ["I10", "I11", "E11"]  # R2.5 managed chronic (RULES §3 programmes)
    assert cfg["receiving_department_code"] == "PCD"  # 基层科
    assert cfg["results_days"] == 180 and cfg["letter_masked_fields"] == ["id_number", "phone"]


def test_escalation_never_after_expiry():
    assert rules.escalate_hours({"sla_hours": 10, "escalate_hours": 30}, urgent=False) == 10
    assert rules.sla_state(T0, T0 + dt.timedelta(hours=1), T0) == "escalated"
    assert rules.sla_state(T0, T0, T0) == "overdue"
    assert rules.sla_state(T0, None, None) == "ok"


def test_escalation_first_then_expiry(db, world, at, doc_b):
    at(T0)
    rid = _submitted(db, world, doc_b)
    with db.session() as s:
        r = s.get(Referral, rid)
        assert (r.escalate_at, r.due_at) == (T0 + dt.timedelta(hours=24), T0 + dt.timedelta(hours=48))
        assert service.run_sla(s, T0 + dt.timedelta(hours=23, minutes=59)) == {"escalated": 0, "expired": 0}
        assert service.run_sla(s, T0 + dt.timedelta(hours=24)) == {"escalated": 1, "expired": 0}
        assert service.run_sla(s, T0 + dt.timedelta(hours=30)) == {"escalated": 0, "expired": 0}  # once only
        s.commit()
        assert s.get(Referral, rid).status == "submitted"
        assert service.run_sla(s, T0 + dt.timedelta(hours=47, minutes=59))["expired"] == 0
        assert service.run_sla(s, T0 + dt.timedelta(hours=48))["expired"] == 1
        s.commit()
        r = s.get(Referral, rid)
        assert (r.status, r.expired_at) == ("expired", T0 + dt.timedelta(hours=48))
        types = [e.event_type for e in s.scalars(select(OutboxEvent).where(OutboxEvent.aggregate_id == rid)
                                                 .order_by(OutboxEvent.occurred_at))]
        assert types[-2:] == ["referral.escalated", "referral.expired"]


def test_urgent_referrals_have_the_short_clock(db, world, at, doc_b):
    at(T0)
    rid = _submitted(db, world, doc_b, urgent=True)
    with db.session() as s:
        assert s.get(Referral, rid).due_at == T0 + dt.timedelta(hours=4)


def test_an_accepted_referral_never_expires(db, world, at, doc_a, doc_b):
    at(T0)
    rid = _submitted(db, world, doc_b)
    with db.session() as s:
        service.accept(s, doc_a, rid)
        s.commit()
        service.run_sla(s, T0 + dt.timedelta(days=30))
        s.commit()
        assert s.get(Referral, rid).status == "accepted"


def test_cli_expire_command(db, world, cli_env, doc_b):
    rid = _submitted(db, world, doc_b)
    with db.session() as s:
        s.get(Referral, rid).due_at = dt.datetime(2001, 1, 1, tzinfo=dt.UTC)
        s.get(Referral, rid).escalate_at = dt.datetime(2001, 1, 1, tzinfo=dt.UTC)
        s.commit()
    res = cli_env.invoke(cli_app, ["referral", "expire"])
    assert res.exit_code == 0, res.output
    assert "expired" in res.output
    with db.session() as s:
        assert s.get(Referral, rid).status == "expired"
    bad = cli_env.invoke(cli_app, ["referral", "expire", "--at", "yesterday"])
    assert bad.exit_code != 0 and "ISO" in bad.output


def test_cli_figures_command(db, world, cli_env):
    res = cli_env.invoke(cli_app, ["referral", "figures", "--start", "2026-01-01", "--end", "2026-12-31"])
    assert res.exit_code == 0, res.output
    assert "上转" in res.output and "acceptance_rate" in res.output
    bad = cli_env.invoke(cli_app, ["referral", "figures", "--start", "2026-13-01", "--end", "2026-12-31"])
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output
    bad = cli_env.invoke(cli_app, ["referral", "figures", "--start", "2026-01-01", "--end", "2026-12-31",
                                   "--institution", "NOPE"])
    assert bad.exit_code == 2 and "NOPE" in bad.output
