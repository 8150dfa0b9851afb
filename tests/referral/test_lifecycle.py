"""The lifecycle through the service, on both databases: each transition audited and evented, the
sides that may act, the refusals, and random action sequences (hypothesis) against the pure model."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from onetrip.audit.models import AuditEvent
from onetrip.kit.errors import ApiError, BadRequest, Conflict, Forbidden, Unprocessable
from onetrip.outbox.models import OutboxEvent
from onetrip.referral import service
from onetrip.referral.models import Referral
from onetrip.referral.states import IllegalTransition, next_status
from tests.referral.conftest import branch_patient


def _draft(db, world, doc_b, **kw) -> str:
    person_id, _ = branch_patient(db, world)
    with db.session() as s:
        r = service.draft_referral(s, doc_b, person_id=person_id, direction="up", to_organization_id=world.org_a,
                                   reason=kw.pop("reason", "诊断不明，需上级医院检查"),
                                   criteria_codes=kw.pop("criteria_codes", ["U2"]), source="web",
                                   diagnoses=[{"code": "I10.x00"}], **kw)
        s.commit()
        return r.id


def _events(s, rid: str) -> list[str]:
    return [e.event_type for e in s.scalars(select(OutboxEvent).where(OutboxEvent.aggregate_id == rid)
                                            .order_by(OutboxEvent.occurred_at, OutboxEvent.id))]


def test_upward_happy_path_is_audited_and_evented_at_every_step(db, world, pcd, doc_a, doc_b):
    rid = _draft(db, world, doc_b)
    with db.session() as s:
        service.submit(s, doc_b, rid)
        service.accept(s, doc_a, rid)
        service.arrive(s, doc_a, rid)
        r = service.complete(s, doc_a, rid)
        s.commit()
        assert r.status == "completed"
        assert r.submitted_at <= r.accepted_at <= r.arrived_at <= r.completed_at
        assert _events(s, rid) == ["referral.drafted", "referral.submitted", "referral.accepted", "referral.arrived",
                                   "referral.completed"]
        done = s.scalars(select(OutboxEvent).where(OutboxEvent.aggregate_id == rid,
                                                   OutboxEvent.event_type == "referral.completed")).one()
        assert done.payload["submitted_at"] == r.submitted_at.isoformat()
        assert done.payload["to_department_id"] == pcd and done.payload["reserved_slot"] is False
        audits = s.scalars(select(AuditEvent.detail).where(AuditEvent.entity_what == f"ServiceRequest/{rid}")).all()
        assert [a["event"] for a in audits if a and "event" in a] == [
            "referral.drafted", "referral.submitted", "referral.accepted", "referral.arrived", "referral.completed"]


def test_reject_needs_a_reason_and_keeps_it(db, world, doc_a, doc_b):
    rid = _draft(db, world, doc_b)
    with db.session() as s:
        service.submit(s, doc_b, rid)
        with pytest.raises(BadRequest):
            service.reject(s, doc_a, rid, reason=" ")
        r = service.reject(s, doc_a, rid, reason="本院无相应专科床位")
        s.commit()
        assert (r.status, r.reject_reason) == ("rejected", "本院无相应专科床位")


def test_only_the_right_side_may_act(db, world, doc_a, doc_b):
    rid = _draft(db, world, doc_b)
    with db.session() as s:
        with pytest.raises(Forbidden):
            service.submit(s, doc_a, rid)  # the receiver cannot send
        service.submit(s, doc_b, rid)
        with pytest.raises(Forbidden):
            service.accept(s, doc_b, rid)  # the sender cannot accept its own referral
        with pytest.raises(Conflict):
            service.complete(s, doc_a, rid)  # not arrived yet


def test_an_incomplete_draft_cannot_be_sent(db, world, doc_b):
    rid = _draft(db, world, doc_b, reason="", criteria_codes=[])
    with db.session() as s, pytest.raises(Unprocessable):
        service.submit(s, doc_b, rid)


SIDE = {"submit": "b", "cancel": "b", "accept": "a", "reject": "a", "arrive": "a", "complete": "a"}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(["submit", "accept", "reject", "arrive", "complete", "cancel", "expire"]),
                min_size=1, max_size=8))
def test_random_action_sequences_through_the_service_follow_the_state_machine(db, world, doc_a, doc_b, actions):
    """Whatever sequence of actions people try, the stored status is always the one the pure state
    machine predicts, and a refused action changes nothing."""
    import datetime as dt

    rid = _draft(db, world, doc_b)
    expected = "draft"
    for a in actions:
        with db.session() as s:
            try:
                legal = next_status(expected, a).value
            except IllegalTransition:
                legal = None
            try:
                if a == "expire":
                    r = s.get(Referral, rid)
                    if r.status == "submitted":
                        r.due_at = r.escalate_at = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
                    service.run_sla(s)
                else:
                    principal = doc_a if SIDE[a] == "a" else doc_b
                    kw = {"reason": "不符合转诊标准"} if a == "reject" else {}
                    service.ACTIONS[a](s, principal, rid, **kw)
                s.commit()
                if a != "expire":
                    assert legal is not None, f"{a} from {expected} should have been refused"
            except ApiError as e:
                s.rollback()
                assert legal is None and isinstance(e, Conflict), f"{a} from {expected}: {e.message}"
            if legal is not None:
                expected = legal
            assert s.get(Referral, rid).status == expected
