"""Family-doctor teams (家庭医生团队): a doctor, a nurse and a public-health physician of one institution,
plus an optional specialist (usually from the lead hospital)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from onetrip.audit import service as audit
from onetrip.family.common import require_team_member
from onetrip.family.models import Team
from onetrip.kit.errors import BadRequest, Conflict, NotFound
from onetrip.kit.principal import Principal
from onetrip.outbox.service import record_event
from onetrip.registry.models import Organization, Practitioner


def _practitioner(session: Session, pid: str | None, field: str, qualification: str | None) -> Practitioner | None:
    if pid is None:
        return None
    p = session.get(Practitioner, pid)
    if p is None or not p.active:
        raise BadRequest(f"医务人员不存在 / unknown practitioner for {field}", expression=[field])
    if qualification and p.qualification and p.qualification != qualification:
        raise BadRequest(f"{field} 须为{ {'physician': '医师', 'nurse': '护士'}[qualification] } / {field} must be a "
                         f"{qualification}", expression=[field])
    return p


def create_team(session: Session, principal: Principal, *, organization_id: str, code: str, name: str,
                doctor_id: str, nurse_id: str, public_health_id: str, specialist_id: str | None = None) -> Team:
    """A team: a doctor, a nurse and a public-health physician of the institution, plus an optional
    specialist (usually from the lead hospital)."""
    require_team_member(principal, organization_id)
    if session.get(Organization, organization_id) is None:
        raise BadRequest("机构不存在 / unknown organization", expression=["organization_id"])
    doc = _practitioner(session, doctor_id, "doctor_id", "physician")
    _practitioner(session, nurse_id, "nurse_id", "nurse")
    _practitioner(session, public_health_id, "public_health_id", "physician")
    _practitioner(session, specialist_id, "specialist_id", "physician")
    if doc is not None and doc.organization_id not in (None, organization_id):
        raise BadRequest("家庭医生须为本机构医师 / the family doctor must work at the team's institution",
                         expression=["doctor_id"])
    if session.scalars(select(Team).where(Team.organization_id == organization_id, Team.code == code)).first():
        raise Conflict(f"团队编码已存在 / team code {code!r} exists at this institution")
    team = Team(organization_id=organization_id, code=code, name=name, doctor_id=doctor_id, nurse_id=nurse_id,
                public_health_id=public_health_id, specialist_id=specialist_id)
    session.add(team)
    session.flush()
    audit.record(session, principal, "create", what=[f"CareTeam/{team.id}"])
    record_event(session, "team.created", "CareTeam", team.id, {"organization_id": organization_id, "code": code})
    return team


def get_team(session: Session, team_id: str) -> Team:
    team = session.get(Team, team_id)
    if team is None or not team.active:
        raise NotFound("团队不存在 / team not found", expression=["team_id"])
    return team
