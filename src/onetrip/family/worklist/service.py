"""The worklist of a team, a doctor or an institution (due, overdue, lost to follow-up; most overdue first,
with counts) and the open self-check alerts (list, acknowledge). Every patient shown is audited (BALP)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from onetrip.access import service as access
from onetrip.audit import service as audit
from onetrip.family import rules
from onetrip.family.common import iso, params, require_team_member, today
from onetrip.family.models import Alert, Team
from onetrip.family.teams import get_team
from onetrip.family.worklist import repository as worklist_repo
from onetrip.kit.clock import utcnow
from onetrip.kit.errors import BadRequest, NotFound
from onetrip.kit.masking import mask_id_number, mask_name, mask_phone
from onetrip.kit.principal import Principal


def build(session: Session, principal: Principal, *, team_id: str | None = None, doctor_id: str | None = None,
          organization_id: str | None = None, only: str | None = None, on: dt.date | None = None,
          limit: int = 100, offset: int = 0, audit_rows: bool = True, masked: bool = True) -> dict[str, Any]:
    """Due, overdue and lost-to-follow-up patients of a team, a doctor or an institution, most overdue
    first, with counts and open alerts. The page's patients are audited (one event each, BALP)."""
    if team_id:
        team = get_team(session, team_id)
        organization_id = organization_id or team.organization_id
        require_team_member(principal, team.organization_id)
    elif organization_id:
        require_team_member(principal, organization_id)
    elif not principal.is_operator:
        organization_id = principal.organization_id
        if organization_id is None:
            raise BadRequest("需要团队或机构 / team_id or organization_id is required")
    if only not in (None, "due", "overdue", "lost"):
        raise BadRequest("only 须为 due / overdue / lost", expression=["only"])
    day = on or today()
    p = params(session, day)
    due_by = day + dt.timedelta(days=p.due_days)
    lost_before = day - dt.timedelta(days=p.lost_after_days)
    rows, more = worklist_repo.rows(session, team_id=team_id, doctor_id=doctor_id, organization_id=organization_id,
                                    due_by=day if only == "overdue" else due_by, lost_before=lost_before,
                                    only=None if only == "due" else only, limit=limit, offset=offset)
    counts = worklist_repo.counts(session, team_id=team_id, doctor_id=doctor_id, organization_id=organization_id,
                                  today=day, due_by=due_by, lost_before=lost_before)
    alerts = worklist_repo.alert_counts(session, [r.person_id for r in rows])
    items = []
    for r in rows:
        items.append({
            "registry_id": r.id, "person_id": r.person_id,
            "name": mask_name(r.name) if masked else r.name,
            "id_number": mask_id_number(r.id_number), "phone": mask_phone(r.phone),
            "age": rules.age_on(r.birth_date, day), "programme": r.programme,
            "last_visit": iso(r.last_visit_date), "next_due": iso(r.next_due_date),
            "days_overdue": (day - r.next_due_date).days if r.next_due_date and r.next_due_date < day else 0,
            "bucket": rules.worklist_bucket(r.next_due_date, day, p), "classification": r.last_classification,
            "controlled": r.controlled, "alerts": alerts.get(r.person_id, 0),
        })
    if audit_rows and items:
        audit.record(session, principal, "search-type", person_ids=[i["person_id"] for i in items],
                     what=[f"CarePlan/{i['registry_id']}" for i in items], query=f"worklist only={only}")
    return {"on": day.isoformat(), "counts": counts, "items": items, "has_more": more, "offset": offset}


def alert_list(session: Session, principal: Principal, *, team_id: str | None = None,
               organization_id: str | None = None) -> list[dict[str, Any]]:
    if team_id:
        require_team_member(principal, get_team(session, team_id).organization_id)
    else:
        organization_id = organization_id or principal.organization_id
        if organization_id:
            require_team_member(principal, organization_id)
    out = [{"id": a.id, "person_id": person.id, "name": mask_name(person.name), "phone": mask_phone(person.phone),
            "summary": a.summary, "codes": a.codes, "at": a.created_at.isoformat()}
           for a, person in worklist_repo.alert_patients(session, team_id, organization_id)]
    if out:
        audit.record(session, principal, "search-type", person_ids=[o["person_id"] for o in out],
                     what=[f"Flag/{o['id']}" for o in out], query="alerts")
    return out


def acknowledge_alert(session: Session, principal: Principal, alert_id: str):
    a = session.get(Alert, alert_id, with_for_update=True)
    if a is None:
        raise NotFound("提醒不存在 / alert not found")
    team = session.get(Team, a.team_id) if a.team_id else None
    if team is not None:
        require_team_member(principal, team.organization_id)
    elif not principal.is_operator:
        access.require_read(session, principal, a.person_id, f"Flag/{a.id}")
    if a.acknowledged_at is None:
        a.acknowledged_at, a.acknowledged_by = utcnow(), principal.name[:64]
        session.flush()
        audit.record(session, principal, "update", person_ids=[a.person_id], what=[f"Flag/{a.id}"])
    return a
