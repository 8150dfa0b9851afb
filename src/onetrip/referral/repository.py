"""Queries for worklists, badges and follow-ups (no business rules here)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from onetrip.persons.models import Person
from onetrip.referral.models import Referral, ReferralFollowUp
from onetrip.referral.states import OPEN, Status

BOXES = ("incoming", "outgoing")


@dataclass
class WorklistFilter:
    box: str = "incoming"
    status: list[str] | None = None  # default: the open ones (draft only in the outgoing box)
    direction: str | None = None
    urgent: bool | None = None
    overdue: bool = False  # submitted and past the escalation time (timer red)
    department_id: str | None = None
    q: str | None = None  # patient name (prefix) or pinyin
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def worklist(session: Session, organization_id: str | None, f: WorklistFilter, now: dt.datetime, *,
             limit: int = 50, offset: int = 0) -> tuple[list[tuple[Referral, Person]], int]:
    """Referrals in or out of an institution (all institutions with None: operators), newest first —
    with submitted ones ordered by their deadline so the most urgent comes first."""
    q = select(Referral, Person).join(Person, Person.id == Referral.person_id)
    if f.box == "outgoing":
        if organization_id:
            q = q.where(Referral.from_organization_id == organization_id)
    else:
        q = q.where(Referral.status != Status.draft.value)
        if organization_id:
            q = q.where(Referral.to_organization_id == organization_id)
    if f.status:
        q = q.where(Referral.status.in_(f.status))
    else:  # the open ones: what someone still has to act on
        q = q.where(Referral.status.in_(sorted(s.value for s in OPEN)))
    if f.direction in ("up", "down"):
        q = q.where(Referral.direction == f.direction)
    if f.urgent is not None:
        q = q.where(Referral.urgent.is_(f.urgent))
    if f.overdue:
        q = q.where(Referral.status == Status.submitted.value, Referral.escalate_at <= now)
    if f.department_id:
        q = q.where(Referral.to_department_id == f.department_id)
    if f.q:
        term = f.q.strip()
        q = q.where(or_(Person.name.startswith(term), Person.name_pinyin.startswith(term.lower())))
    if f.since:
        q = q.where(Referral.created_at >= f.since)
    if f.until:
        q = q.where(Referral.created_at < f.until)
    total = session.scalar(select(func.count()).select_from(q.subquery())) or 0
    submitted_first = (Referral.status == Status.submitted.value).desc()
    rows = session.execute(q.order_by(submitted_first, Referral.urgent.desc(), Referral.due_at.asc(),
                                      Referral.created_at.desc(), Referral.id)
                           .limit(limit).offset(offset)).all()
    return [(r, p) for r, p in rows], total


def badges(session: Session, organization_id: str | None, now: dt.datetime, today: dt.date) -> dict[str, int]:
    """Counts for the nav badge: new (submitted to us, waiting), overdue (past the escalation time),
    follow-ups due (open, due today or earlier) and our sent referrals rejected or expired in 7 days."""
    if organization_id is None:
        return {"new": 0, "overdue": 0, "followups_due": 0, "returned": 0}
    waiting = select(func.count()).select_from(Referral).where(
        Referral.to_organization_id == organization_id, Referral.status == Status.submitted.value)
    new = session.scalar(waiting) or 0
    overdue = session.scalar(waiting.where(Referral.escalate_at <= now)) or 0
    due = session.scalar(select(func.count()).select_from(ReferralFollowUp).where(
        ReferralFollowUp.organization_id == organization_id, ReferralFollowUp.status == "open",
        ReferralFollowUp.due_on <= today)) or 0
    week = now - dt.timedelta(days=7)
    returned = session.scalar(select(func.count()).select_from(Referral).where(
        Referral.from_organization_id == organization_id,
        or_(Referral.rejected_at >= week, Referral.expired_at >= week))) or 0
    return {"new": new, "overdue": overdue, "followups_due": due, "returned": returned}


def followups(session: Session, organization_id: str | None, *, status: str = "open",
              limit: int = 100) -> list[tuple[ReferralFollowUp, Person]]:
    q = select(ReferralFollowUp, Person).join(Person, Person.id == ReferralFollowUp.person_id)
    if organization_id:
        q = q.where(ReferralFollowUp.organization_id == organization_id)
    if status:
        q = q.where(ReferralFollowUp.status == status)
    return [(f, p) for f, p in session.execute(q.order_by(ReferralFollowUp.due_on, ReferralFollowUp.id).limit(limit))]


def of_person(session: Session, person_id: str, organization_id: str | None, limit: int = 100) -> list[Referral]:
    """A person's referral history across institutions (the caller has passed the access policy);
    drafts only for the institution that wrote them."""
    q = select(Referral).where(Referral.person_id == person_id)
    if organization_id:
        q = q.where(or_(Referral.status != Status.draft.value, Referral.from_organization_id == organization_id))
    return list(session.scalars(q.order_by(Referral.created_at.desc()).limit(limit)))
