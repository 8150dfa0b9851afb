"""Concurrent actions on one referral: of several racing accepts and rejects exactly one wins, the others
get 409; one outbox event for the transition that happened, none for the losers (no lost update, no
double transition)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from onetrip.kit.errors import Conflict
from onetrip.outbox.models import OutboxEvent
from onetrip.referral import service
from onetrip.referral.models import Referral
from tests.factories import run_concurrently
from tests.referral.conftest import branch_patient


def test_racing_accept_reject_cancel(db, world, doc_a, doc_b):
    person_id, _ = branch_patient(db, world)
    with db.session() as s:
        r = service.draft_referral(s, doc_b, person_id=person_id, direction="up", to_organization_id=world.org_a,
                                   reason="待查", criteria_codes=["U2"], source="web")
        service.submit(s, doc_b, r.id)
        s.commit()
        rid = r.id
    won: list[str] = []

    def act(kind: str) -> None:
        with db.session() as s:
            if kind == "accept":
                service.accept(s, doc_a, rid)
            elif kind == "reject":
                service.reject(s, doc_a, rid, reason="床位已满")
            else:
                service.cancel(s, doc_b, rid, reason="患者改主意")
            s.commit()
            won.append(kind)

    errors = run_concurrently(act, [("accept",), ("reject",), ("accept",), ("reject",), ("accept",), ("reject",)])
    assert len(won) == 1, (won, errors)
    assert all(isinstance(e, Conflict | StaleDataError) or "locked" in str(e) for e in errors), errors
    with db.session() as s:
        final = s.get(Referral, rid).status
        assert final == {"accept": "accepted", "reject": "rejected"}[won[0]]
        types = s.scalars(select(OutboxEvent.event_type).where(OutboxEvent.aggregate_id == rid)).all()
        assert sorted(types) == sorted(["referral.drafted", "referral.submitted", f"referral.{final}"])
