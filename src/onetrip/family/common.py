"""What every family-doctor capability shares: the ``family`` rule values in force, today's local date,
who may act for a team's institution, the resident a request names, and the checks on typed-in numbers
and ID numbers."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from onetrip.access import service as access
from onetrip.family import rules
from onetrip.kit.clock import local_date, utcnow
from onetrip.kit.errors import BadRequest, Forbidden, NotFound
from onetrip.kit.identifiers import IdentifierError, parse_resident_id
from onetrip.kit.principal import Principal
from onetrip.persons.models import Person
from onetrip.rules.service import rule_values

RULE_SET = "family"


def params(session: Session, on: dt.date | None = None) -> rules.Params:
    """The ``family`` rule values in force on ``on`` (today when None)."""
    return rules.Params.from_rule_values(rule_values(session, RULE_SET, on))


def today() -> dt.date:
    return local_date(utcnow())


def iso(d: dt.date | None) -> str | None:
    return d.isoformat() if d else None


def require_team_member(principal: Principal, organization_id: str) -> None:
    """The institution's own staff, or an operator (admin, system client, CLI)."""
    if principal.is_operator or principal.organization_id == organization_id:
        return
    raise Forbidden("仅本机构家庭医生团队可操作 / only staff of the team's institution may do this")


def resident(session: Session, person_id: str) -> Person:
    """The resident (the survivor when merged); 404 when unknown. Not audited: for writes."""
    person = session.get(Person, person_id)
    if person is None:
        raise NotFound("居民不存在 / person not found", expression=["person_id"])
    if person.merged_into_id:
        person = session.get(Person, person.merged_into_id) or person
    return person


def read_person(session: Session, principal: Principal, person_id: str, what: str) -> Person:
    """The person, if the access policy allows (audited)."""
    person = resident(session, person_id)
    access.require_read(session, principal, person.id, what)
    return person


def number(value: Any, field: str, low: float, high: float) -> float | None:
    """A typed-in measurement: None when empty, 400 unless a number within [low, high]."""
    if value is None or value == "":
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise BadRequest(f"{field} 须为数字 / {field} must be a number", expression=[field]) from None
    if not (low <= v <= high):
        raise BadRequest(f"{field} 超出合理范围 {low}–{high} / {field} must be between {low} and {high}",
                         expression=[field])
    return v


def resident_id(value: str | None, field: str) -> str:
    """A valid resident ID number (15-digit ones converted to 18), else 400 naming ``field``."""
    try:
        return parse_resident_id((value or "").strip()).number
    except IdentifierError:
        raise BadRequest(f"{field} 不是有效的居民身份证号 / {field} is not a valid resident ID number",
                         expression=[field]) from None
