"""Family-doctor contracts (签约, RULES R5): sign, renew (续约), switch team (改签), expire. One active
family doctor per resident (R5.1; the partial unique index decides between concurrent signings).

Every change writes an audit event and an outbox event (contract.signed | contract.ended, payloads in
/work/coord/CONTRACTS.md) in the caller's transaction; services flush, never commit (STYLE 2)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from onetrip.access import service as access
from onetrip.audit import service as audit
from onetrip.family import repository as repo
from onetrip.family import rules
from onetrip.family.common import iso, params, require_team_member, resident, today
from onetrip.family.models import Contract, ContractStatus, Package, SigningChannel
from onetrip.family.teams import get_team
from onetrip.kit.clock import utcnow
from onetrip.kit.errors import BadRequest, Conflict, NotFound, Unprocessable
from onetrip.kit.principal import Principal
from onetrip.outbox.service import record_event


def _contract_payload(c: Contract) -> dict[str, Any]:
    return {"contract_id": c.id, "organization_id": c.organization_id, "team_id": c.team_id,
            "doctor_id": c.doctor_id, "key_groups": list(c.key_groups or []), "start_date": iso(c.start_date),
            "end_date": iso(c.end_date)}


def _programmes(session: Session, person_id: str) -> list[str]:
    return [r.programme for r in repo.registries_of(session, person_id) if r.status == "active"]


def _end(session: Session, principal: Principal, c: Contract, reason: str, *, cut_to: dt.date | None = None) -> None:
    c.status = ContractStatus.expired.value if reason == "expired" else ContractStatus.ended.value
    c.end_reason, c.ended_at = reason, utcnow()
    if cut_to is not None and cut_to < c.end_date:
        c.end_date = cut_to  # the last day covered; may fall before start_date (then it covered nothing)
    session.flush()
    audit.record(session, principal, "update", person_ids=[c.person_id], what=[f"Contract/{c.id}"],
                 detail={"ended": reason})
    record_event(session, "contract.ended", "Contract", c.id, {**_contract_payload(c), "reason": reason},
                 person_id=c.person_id)


def sign_contract(session: Session, principal: Principal, *, person_id: str, team_id: str, package: str = "basic",
                  channel: str = "clinic", start_date: dt.date | None = None, years: int | None = None,
                  end_date: dt.date | None = None, addons: list[str] | None = None,
                  declared_groups: list[str] | None = None, previous_id: str | None = None,
                  _allow_replace: Contract | None = None) -> Contract:
    """Sign a family-doctor contract. One active family doctor per resident (R5.1): 409 when the resident
    has an active, unexpired contract (renew or switch it instead); an expired one is closed first. The
    partial unique index decides between two concurrent signings."""
    if package not in {p.value for p in Package}:
        raise BadRequest(f"服务包无效 / package must be one of {[p.value for p in Package]}", expression=["package"])
    if channel not in {c.value for c in SigningChannel}:
        raise BadRequest(f"签约渠道无效 / channel must be one of {[c.value for c in SigningChannel]}",
                         expression=["channel"])
    bad = [g for g in declared_groups or [] if g not in rules.DECLARABLE_GROUPS]
    if bad:
        raise BadRequest(f"重点人群无效 / unknown declared groups {bad}; allowed {list(rules.DECLARABLE_GROUPS)}",
                         expression=["declared_groups"])
    team = get_team(session, team_id)
    require_team_member(principal, team.organization_id)
    person = resident(session, person_id)
    if person.deceased:
        raise Unprocessable("居民已故 / the resident is deceased")
    p = params(session)
    start = start_date or today()
    end = end_date or (rules.add_years(start, years or p.min_term_years) - dt.timedelta(days=1))
    problem = rules.check_term(start, end, p)
    if problem:
        raise BadRequest(f"签约期限不符合规定（至少 {p.min_term_years} 年）/ R5.1: {problem}", expression=["end_date"])
    current = repo.active_contract(session, person.id, lock=True)
    if current is not None and current is not _allow_replace:
        if current.end_date < today():
            _end(session, principal, current, "expired")
        else:
            raise Conflict("该居民已有家庭医生签约（请续约或改签）/ the resident already has an active family-doctor "
                           "contract: renew or switch it (R5.1)")
    groups = rules.key_groups(person.birth_date, start, _programmes(session, person.id), declared_groups or [], p,
                              sex=person.sex)
    c = Contract(person_id=person.id, organization_id=team.organization_id, team_id=team.id,
                 doctor_id=team.doctor_id, package=package, addons=list(addons or []), start_date=start,
                 end_date=end, status=ContractStatus.active.value, channel=channel,
                 declared_groups=list(declared_groups or []), key_groups=groups, signed_at=utcnow(),
                 signed_by=principal.name[:64], previous_id=previous_id)
    try:
        with session.begin_nested():
            session.add(c)
            session.flush()
    except IntegrityError:
        raise Conflict("该居民已有家庭医生签约 / the resident already has an active family-doctor contract "
                       "(signed at the same moment elsewhere)") from None
    access.add_care_relationship(session, person.id, team.organization_id, "contract", f"Contract/{c.id}",
                                 days=(end - today()).days + 1 if end >= today() else 1)
    # Registries follow the family doctor.
    for r in repo.registries_of(session, person.id):
        if r.status == "active":
            r.team_id, r.doctor_id = team.id, team.doctor_id
    audit.record(session, principal, "create", person_ids=[person.id], what=[f"Contract/{c.id}"],
                 detail={"package": package, "channel": channel})
    record_event(session, "contract.signed", "Contract", c.id, _contract_payload(c), person_id=person.id)
    session.flush()
    return c


def get_contract(session: Session, principal: Principal, contract_id: str, *, lock: bool = False) -> Contract:
    c = session.get(Contract, contract_id, with_for_update=lock)
    if c is None:
        raise NotFound("签约不存在 / contract not found")
    if not (principal.is_operator or principal.organization_id == c.organization_id):
        access.require_read(session, principal, c.person_id, f"Contract/{c.id}")
    return c


def renew_contract(session: Session, principal: Principal, contract_id: str, *, years: int | None = None,
                   package: str | None = None, channel: str = "clinic") -> Contract:
    """R5.1 renewal with the same team: the new term starts the day after the old one ends (or today if
    it has run out)."""
    old = get_contract(session, principal, contract_id, lock=True)
    require_team_member(principal, old.organization_id)
    if old.status != ContractStatus.active.value:
        raise Conflict("只能续约有效的签约 / only an active contract can be renewed")
    start = max(old.end_date + dt.timedelta(days=1), today())
    _end(session, principal, old, "renewed")
    return sign_contract(session, principal, person_id=old.person_id, team_id=old.team_id,
                         package=package or old.package, channel=channel, start_date=start, years=years,
                         addons=old.addons, declared_groups=old.declared_groups, previous_id=old.id)


def switch_contract(session: Session, principal: Principal, contract_id: str, *, team_id: str,
                    package: str = "basic", channel: str = "clinic", years: int | None = None) -> Contract:
    """R5.1 switch to another team (改签): the old contract covers until yesterday, the new one starts today."""
    old = get_contract(session, principal, contract_id, lock=True)
    new_team = get_team(session, team_id)
    require_team_member(principal, new_team.organization_id)
    if old.status != ContractStatus.active.value:
        raise Conflict("只能改签有效的签约 / only an active contract can be switched")
    if old.team_id == team_id:
        raise BadRequest("改签须选择其他团队 / choose another team to switch to", expression=["team_id"])
    _end(session, principal, old, "switched", cut_to=today() - dt.timedelta(days=1))
    return sign_contract(session, principal, person_id=old.person_id, team_id=team_id, package=package,
                         channel=channel, years=years, declared_groups=old.declared_groups, previous_id=old.id)


def expire_contracts(session: Session, principal: Principal, on: dt.date | None = None) -> int:
    """Close active contracts whose term ended before ``on`` (a daily job; signing also does it lazily)."""
    on = on or today()
    rows = list(session.scalars(select(Contract).where(Contract.status == "active", Contract.end_date < on)))
    for c in rows:
        _end(session, principal, c, "expired")
    return len(rows)
