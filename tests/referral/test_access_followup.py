"""Care relationship (issue 6 §4): an accepted referral lets the receiving institution read the patient's
shared record for referral.access_days (access policy A5, audited) — denied before, denied again after.
Downward follow-up (R2.5) and the ``referral.completed`` hook."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from onetrip.access import service as access
from onetrip.audit.models import AuditEvent
from onetrip.kit.errors import AccessDenied
from onetrip.referral import service
from onetrip.referral.models import Referral, ReferralFollowUp
from onetrip.rules.service import set_rule
from tests.referral.conftest import branch_patient, lead_patient


def _read(db, principal, person_id) -> str:
    with db.session() as s:
        try:
            d = access.require_read(s, principal, person_id, f"Person/{person_id}/timeline")
            s.commit()
            return d.rule
        except AccessDenied:
            s.commit()
            return "denied"


def test_read_denied_before_acceptance_permitted_after_and_denied_after_expiry(db, world, doc_a, doc_b, monkeypatch):
    person_id, _ = branch_patient(db, world, name="赵国强")
    assert _read(db, doc_a, person_id) == "denied"  # default policy: deny across institutions
    with db.session() as s:
        r = service.draft_referral(s, doc_b, person_id=person_id, direction="up", to_organization_id=world.org_a,
                                   reason="疑难病例", criteria_codes=["U2"], source="web")
        service.submit(s, doc_b, r.id)
        s.commit()
        rid = r.id
    assert _read(db, doc_a, person_id) == "denied"  # submitted is not enough
    with db.session() as s:
        r = service.accept(s, doc_a, rid)
        s.commit()
        until = r.access_until
        assert r.accepted_at + dt.timedelta(days=30) - dt.timedelta(seconds=5) <= until  # referral.access_days
    assert _read(db, doc_a, person_id) == "A5"  # care relationship
    with db.session() as s:
        rows = s.scalars(select(AuditEvent).where(AuditEvent.entity_person_id == person_id,
                                                  AuditEvent.agent_org_id == world.org_a,
                                                  AuditEvent.subtype == "read")).all()
        assert [x.outcome for x in rows] == ["4", "4", "0"]  # both denials and the permitted read audited
    # Past the bounded time the relationship has ended: denied again.
    monkeypatch.setattr(access, "utcnow", lambda: until + dt.timedelta(seconds=1))
    assert _read(db, doc_a, person_id) == "denied"


def test_access_days_is_a_rule(db, world, doc_a, doc_b):
    with db.session() as s:
        set_rule(s, "referral", "access_days", 3, by="test", effective_from=dt.date(2020, 1, 2))
        s.commit()
    person_id, _ = branch_patient(db, world)
    try:
        with db.session() as s:
            r = service.draft_referral(s, doc_b, person_id=person_id, direction="up", to_organization_id=world.org_a,
                                       reason="疑难病例", criteria_codes=["U2"], source="web")
            service.submit(s, doc_b, r.id)
            r = service.accept(s, doc_a, r.id)
            s.commit()
            assert dt.timedelta(days=3) - dt.timedelta(minutes=1) < r.access_until - r.accepted_at < dt.timedelta(days=3, minutes=1)
    finally:
        with db.session() as s:
            set_rule(s, "referral", "access_days", 30, by="test", effective_from=dt.date(2020, 1, 2))
            s.commit()


def test_downward_referral_creates_the_branch_follow_up_within_two_weeks(db, world, doc_a, doc_b):
    person_id, _ = lead_patient(db, world)
    with db.session() as s:
        r = service.draft_referral(s, doc_a, person_id=person_id, direction="down", to_organization_id=None,
                                   reason="术后病情稳定，回社区康复", criteria_codes=["D1"], source="web",
                                   discharge_summary="腹腔镜胆囊切除术后第5天", rehab_plan="两周后复查肝功能")
        service.submit(s, doc_a, r.id)
        service.accept(s, doc_b, r.id)
        s.commit()
        f = s.scalars(select(ReferralFollowUp).where(ReferralFollowUp.referral_id == r.id)).one()
        assert f.organization_id == world.org_b and f.status == "open"
        from onetrip.kit.clock import local_date

        assert (f.due_on - local_date(r.accepted_at)).days == 14  # R2.5
        done = service.complete_followup(s, doc_b, f.id, note="电话随访，恢复良好")
        s.commit()
        assert done.status == "done"


def test_upward_completion_of_a_chronic_patient_creates_follow_up_at_the_sender_and_runs_hooks(db, world, doc_a,
                                                                                              doc_b):
    seen: list[str] = []
    service.COMPLETED_HOOKS.append(lambda s, r: seen.append(r.id))
    try:
        person_id, _ = branch_patient(db, world)
        with db.session() as s:
            r = service.draft_referral(s, doc_b, person_id=person_id, direction="up", to_organization_id=world.org_a,
                                       reason="血糖控制不佳", criteria_codes=["U2"], source="chronic-followup",
                                       diagnoses=[{"code": "E11.900"}])
            for step in (service.submit, service.accept, service.arrive, service.complete):
                step(s, doc_b if step is service.submit else doc_a, r.id)
            s.commit()
            f = s.scalars(select(ReferralFollowUp).where(ReferralFollowUp.referral_id == r.id)).one()
            assert f.organization_id == world.org_b
            assert seen == [r.id]
    finally:
        service.COMPLETED_HOOKS.clear()


def test_non_chronic_upward_completion_creates_no_follow_up(db, world, doc_a, doc_b):
    person_id, _ = branch_patient(db, world)
    with db.session() as s:
        r = service.draft_referral(s, doc_b, person_id=person_id, direction="up", to_organization_id=world.org_a,
                                   reason="骨折", criteria_codes=["U4"], source="web", diagnoses=[{"code": "S72.000"}])
        for step in (service.submit, service.accept, service.arrive, service.complete):
            step(s, doc_b if step is service.submit else doc_a, r.id)
        s.commit()
        assert s.scalars(select(ReferralFollowUp).where(ReferralFollowUp.referral_id == r.id)).first() is None
        assert s.get(Referral, r.id).status == "completed"


@pytest.mark.parametrize("code", ["I10.x00", "E11.200"])
def test_chronic_prefixes(code):
    from onetrip.referral.rules import is_chronic

    assert is_chronic([{"code": code}], {"chronic_code_prefixes": ["I10", "I11", "E11"]})
    assert not is_chronic([{"code": code}], {"chronic_code_prefixes": ["J44"]})
