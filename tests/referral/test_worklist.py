"""Worklists and badges (issue 6 §6): filters, deadline order, counts of new / overdue referrals and
follow-ups due."""

from __future__ import annotations

import datetime as dt

from onetrip.kit import clock
from onetrip.kit.clock import local_date
from onetrip.referral import repository as repo
from onetrip.referral import service
from onetrip.referral.models import Referral, ReferralFollowUp
from tests.referral.conftest import branch_patient, lead_patient


def test_filters_order_and_badges(db, world, doc_a, doc_b):
    now = clock.utcnow()
    ids = {}
    for key, urgent, name in (("plain", False, "周大勇"), ("urgent", True, "吴小红"), ("late", False, "郑国华")):
        person_id, _ = branch_patient(db, world, name=name)
        with db.session() as s:
            r = service.draft_referral(s, doc_b, person_id=person_id, direction="up", to_organization_id=world.org_a,
                                       reason="待查", criteria_codes=["U2"], source="web", urgent=urgent)
            service.submit(s, doc_b, r.id)
            s.commit()
            ids[key] = r.id
    with db.session() as s:
        late = s.get(Referral, ids["late"])
        late.escalate_at = now - dt.timedelta(hours=1)  # past the escalation time, not yet due
        s.commit()
        before = repo.badges(s, world.org_a, now, local_date(now))
        assert before["new"] >= 3 and before["overdue"] >= 1

        rows, total = repo.worklist(s, world.org_a, repo.WorklistFilter(box="incoming"), now)
        order = [r.id for r, _ in rows]
        assert order.index(ids["urgent"]) < order.index(ids["plain"])  # urgent first
        rows, _ = repo.worklist(s, world.org_a, repo.WorklistFilter(box="incoming", overdue=True), now)
        assert ids["late"] in [r.id for r, _ in rows] and ids["plain"] not in [r.id for r, _ in rows]
        rows, _ = repo.worklist(s, world.org_a, repo.WorklistFilter(box="incoming", urgent=True), now)
        assert [r.id for r, _ in rows if r.id in ids.values()] == [ids["urgent"]]
        rows, _ = repo.worklist(s, world.org_a, repo.WorklistFilter(box="incoming", q="吴"), now)
        assert [r.id for r, _ in rows] == [ids["urgent"]]
        rows, _ = repo.worklist(s, world.org_a, repo.WorklistFilter(box="incoming", direction="down"), now)
        assert not any(r.id in ids.values() for r, _ in rows)
        rows, _ = repo.worklist(s, world.org_b, repo.WorklistFilter(box="outgoing"), now)
        assert set(ids.values()) <= {r.id for r, _ in rows}
        rows, _ = repo.worklist(s, world.org_b, repo.WorklistFilter(box="incoming"), now)
        assert not any(r.id in ids.values() for r, _ in rows)  # the sender's incoming list

    with db.session() as s:
        service.accept(s, doc_a, ids["plain"])
        s.commit()
        after = repo.badges(s, world.org_a, now, local_date(now))
        assert after["new"] == before["new"] - 1


def test_followups_due_badge(db, world, doc_a, doc_b):
    person_id, _ = lead_patient(db, world)
    with db.session() as s:
        r = service.draft_referral(s, doc_a, person_id=person_id, direction="down", to_organization_id=world.org_b,
                                   reason="康复", criteria_codes=["D1"], source="web")
        service.submit(s, doc_a, r.id)
        service.accept(s, doc_b, r.id)
        s.commit()
        now = clock.utcnow()
        assert repo.badges(s, world.org_b, now, local_date(now))["followups_due"] == 0  # due in 14 days
        later = local_date(now) + dt.timedelta(days=14)
        assert repo.badges(s, world.org_b, now, later)["followups_due"] == 1
        f = s.query(ReferralFollowUp).filter_by(referral_id=r.id).one()
        assert [x.id for x, _ in repo.followups(s, world.org_b)] == [f.id]
