"""The demo loader: two years of referrals in every state, deterministic for a seed, idempotent, and the
figures by API over them (year-on-year change near the seeds' +27.93 %)."""

from __future__ import annotations

import datetime as dt
import random

from sqlalchemy import func, select

from onetrip.demo import referral as demo
from onetrip.kit.clock import local_date, utcnow
from onetrip.kit.principal import cli_principal
from onetrip.outbox.models import OutboxEvent
from onetrip.referral import figures, service
from onetrip.referral.models import Referral, ReferralFollowUp
from onetrip.referral.states import Status
from onetrip.registry.models import Organization
from tests.referral.conftest import resident_id
from tests.scheduling.conftest import build_sched


def _people(db, world, n=12):
    from tests.factories import register_patient

    for i in range(n):
        idn = resident_id()
        register_patient(db, world.org_b, name=f"演示{i}", id_number=idn)
        if i % 2:
            register_patient(db, world.org_a, name=f"演示{i}", id_number=idn)


def test_history_generator_is_deterministic(db, world):
    with db.session() as s:
        lead, branch = s.get(Organization, world.org_a), s.get(Organization, world.org_b)
        cfg = service.settings(s)
    people = {branch.id: [("p1", "r1"), ("p2", "r2")], lead.id: [("p3", "r3")]}

    def run():
        rows, fus, evs = [], [], []
        demo._history(random.Random(7), lead=lead, branches=[branch], dept=None, people=people,
                      start=dt.date(2025, 1, 1), end=dt.date(2025, 2, 28), rate=5, rows=rows, followups=fus,
                      events=evs, cfg=cfg)
        return rows, fus, evs

    a, b = run(), run()
    assert a == b and len(a[0]) > 100


def test_load_referrals(db, world, pcd):
    _people(db, world)
    build_sched(db, world.org_a, capacity=4, share=0.25, days=5)
    today = local_date(utcnow())
    with db.session() as s:
        out = demo.load_referrals(s, 42, today, scale=0.12)
        s.commit()
        assert out["referrals"] > 1000 and out["open"] > 0
        assert demo.load_referrals(s, 42, today, scale=0.12) == {"referrals": 0}  # idempotent
        states = set(s.scalars(select(Referral.status).distinct()))
        assert states == {st.value for st in Status}  # every state
        assert set(s.scalars(select(Referral.direction).distinct())) == {"up", "down"}
        assert s.scalar(select(func.count()).select_from(ReferralFollowUp)) > 100
        assert s.scalar(select(func.count()).select_from(OutboxEvent).where(
            OutboxEvent.event_type == "referral.completed")) > 500
        f = figures.compute(s, cli_principal(), organization_id=None, start=today - dt.timedelta(days=300),
                            end=today - dt.timedelta(days=5))
        assert 0.12 < f["total"]["change"] < 0.45, f["total"]  # seeded growth +27.93 %
        assert f["counts"]["down"]["current"] > f["counts"]["up"]["current"]  # 108 down vs 79 up in nine days
        assert 0.02 < f["rejection_rate"] < 0.09 and f["completion_rate"] > 0.9
        assert f["hours_to_acceptance"]["median"] is not None and len(f["series"]) >= 9
        assert f["reserved_slot_share"] is not None and f["reserved_slot_share"] > 0.5
