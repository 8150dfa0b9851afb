"""The facts through the real referral (issue 6) and family-doctor (issue 7) services: their outbox events
(CONTRACTS.md) become referral counts, 签约率, 管理率 (a closed registry leaves it), 规范管理率 and 控制率."""

from __future__ import annotations

import datetime as dt

from onetrip.analytics import facts, service
from onetrip.analytics.models import AnalyticsCatchment
from onetrip.family import contracts
from onetrip.family.followups import service as followups
from onetrip.kit.clock import local_date, utcnow
from onetrip.kit.principal import cli_principal
from onetrip.referral import service as referral
from tests.family.conftest import build_fam, resident
from tests.referral.conftest import branch_patient, user_principal


def test_referral_and_family_services_feed_the_indicators(db, world):
    today = local_date(utcnow())
    month = (today.replace(day=1), (today.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1))
    doc_b = user_principal(db, world.users["doc_b"])
    person, _ = branch_patient(db, world)
    with db.session() as s:
        r = referral.draft_referral(s, doc_b, person_id=person, direction="up", to_organization_id=world.org_a,
                                    reason="诊断不明，需上级医院检查", criteria_codes=["U2"], source="web",
                                    diagnoses=[{"code": "I10.x00"}])
        s.commit()
        draft_only = referral.draft_referral(s, doc_b, person_id=person, direction="up", to_organization_id=world.org_a,
                                             reason="血压控制不佳", criteria_codes=["U2"], source="web",
                                             diagnoses=[{"code": "I10.x00"}])
        s.commit()
        referral.submit(s, doc_b, r.id)
        s.commit()
        assert draft_only.status == "draft"
    fam = build_fam(db, world)
    op = cli_principal()
    people = [resident(db, fam, name=n) for n in ("张伟", "李娜", "王磊")]
    with db.session() as s:
        s.add(AnalyticsCatchment(organization_id=fam.org, residents=100, hypertension_estimated=10))
        for pid in people:
            contracts.sign_contract(s, op, person_id=pid, team_id=fam.team)
        regs = [followups.enrol(s, op, person_id=pid, programme="hypertension", enrolled_on=today) for pid in people[:2]]
        followups.record_followup(s, op, regs[0].id, visit_date=today, sbp=128, dbp=80, adherence="regular")
        closed = followups.enrol(s, op, person_id=people[2], programme="hypertension", enrolled_on=today)
        followups.close_registry(s, op, closed.id, "moved")
        s.commit()
    with db.session() as s:
        facts.update(s)
        s.commit()
        v = {i: service.total(s, i, *month) for i in (
            "referrals_up", "contract_rate", "hypertension_management_rate", "hypertension_control_rate",
            "hypertension_standard_rate")}
    assert v["referrals_up"]["value"] == 1  # the draft that was never submitted does not count
    assert (v["contract_rate"]["numerator"], v["contract_rate"]["denominator"]) == (3, 100)
    assert (v["hypertension_management_rate"]["numerator"], v["hypertension_management_rate"]["denominator"]) == (2, 10)
    assert v["hypertension_control_rate"]["value"] == 0.5  # one of the two managed is at target
    assert v["hypertension_standard_rate"]["value"] == 0.0  # one follow-up is not four
    with db.session() as s:
        before = {i: service.total(s, i, *month) for i in v}
        facts.rebuild(s)
        s.commit()
        s.info.clear()
        assert {i: service.total(s, i, *month) for i in v} == before


def test_concurrent_updates_count_each_event_once(db, world):
    """Four updaters at once (cron overlapping a report button): one at a time (advisory lock / SQLite's
    writer lock), and the result equals a full rebuild — nothing counted twice, nothing lost."""
    from sqlalchemy import select

    from onetrip.analytics.models import AnalyticsFact
    from onetrip.outbox.service import record_event
    from tests.factories import run_concurrently

    with db.session() as s:
        for n in range(40):
            record_event(s, "referral.submitted", "Referral", f"cc{n}", {
                "referral_id": f"cc{n}", "direction": "down", "from_organization_id": world.org_a,
                "to_organization_id": world.org_b, "to_department_id": None,
                "submitted_at": f"2026-09-0{1 + n % 9}T02:00:00+00:00", "at": "2026-09-01T02:00:00+00:00",
                "reserved_slot": False})
        s.commit()

    def updater() -> None:
        with db.session() as s:
            facts.update(s)
            s.commit()

    assert run_concurrently(updater, [()] * 4) == []

    def snapshot() -> set:
        with db.session() as s:
            return {(r.measure, r.day, r.organization_id, r.department_id, r.bucket, r.value)
                    for r in s.scalars(select(AnalyticsFact))}

    after = snapshot()
    with db.session() as s:
        facts.rebuild(s)
        s.commit()
        s.info.clear()
        total = service.total(s, "referrals_down", dt.date(2026, 9, 1), dt.date(2026, 9, 30))
    assert snapshot() == after
    assert total["value"] == 40
