"""Registries and follow-ups (RULES R3): enrol a resident (the team and doctor follow the contract), record
a follow-up, classify it (R3.3, R3.5), set the next due date and draft a referral when the rules say refer
(urgent for R3.4). Audit and outbox events (registry.enrolled | registry.closed, followup.recorded) in the
caller's transaction; flushes, never commits."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from onetrip.access import service as access
from onetrip.audit import service as audit
from onetrip.family import repository as repo
from onetrip.family import rules
from onetrip.family.common import number, params, require_team_member, resident, today
from onetrip.family.followups.referral import draft_referral_for
from onetrip.family.models import Followup, Registry, Team
from onetrip.family.teams import get_team
from onetrip.kit.errors import BadRequest, Conflict, NotFound
from onetrip.kit.principal import Principal
from onetrip.outbox.service import record_event

ADHERENCE = ("regular", "intermittent", "none")
METHODS = ("clinic", "home", "phone")
DIAGNOSIS = {rules.HYPERTENSION: "I10", rules.DIABETES: "E11"}


def enrol(session: Session, principal: Principal, *, person_id: str, programme: str, organization_id: str | None = None,
          team_id: str | None = None, enrolled_on: dt.date | None = None, diagnosis_code: str | None = None) -> Registry:
    """Enrol a resident in the hypertension or diabetes registry (专案管理). The team and doctor come from
    the resident's active contract unless given; the first follow-up is due on the day of enrolment."""
    if programme not in rules.PROGRAMMES:
        raise BadRequest(f"项目须为 {list(rules.PROGRAMMES)} / programme must be one of {list(rules.PROGRAMMES)}",
                         expression=["programme"])
    person = resident(session, person_id)
    team = get_team(session, team_id) if team_id else None
    if team is None:
        c = repo.active_contract(session, person.id)
        team = session.get(Team, c.team_id) if c else None
    org = organization_id or (team.organization_id if team else principal.organization_id)
    if org is None:
        raise BadRequest("需要管理机构 / organization_id is required", expression=["organization_id"])
    require_team_member(principal, org)
    on = enrolled_on or today()
    if on > today():
        raise BadRequest("建档日期不能晚于今天 / enrolled_on cannot be in the future", expression=["enrolled_on"])
    reg = repo.registry_for(session, person.id, programme)
    if reg is not None and reg.status == "active":
        raise Conflict("已在该慢病管理中 / already enrolled in this programme")
    if reg is None:
        reg = Registry(person_id=person.id, programme=programme, consecutive_uncontrolled=0)
        session.add(reg)
    reg.organization_id, reg.team_id = org, team.id if team else None
    reg.doctor_id = team.doctor_id if team else None
    reg.diagnosis_code = diagnosis_code or DIAGNOSIS[programme]
    reg.enrolled_on, reg.status, reg.closed_on, reg.close_reason = on, "active", None, None
    reg.next_due_date = on
    session.flush()
    audit.record(session, principal, "create", person_ids=[person.id], what=[f"CarePlan/{reg.id}"],
                 detail={"programme": programme})
    record_event(session, "registry.enrolled", "CarePlan", reg.id,
                 {"programme": programme, "organization_id": org, "team_id": reg.team_id, "doctor_id": reg.doctor_id,
                  "enrolled_on": on.isoformat()}, person_id=person.id)
    return reg


def close_registry(session: Session, principal: Principal, registry_id: str, reason: str) -> Registry:
    reg = session.get(Registry, registry_id, with_for_update=True)
    if reg is None:
        raise NotFound("慢病档案不存在 / registry entry not found")
    require_team_member(principal, reg.organization_id)
    reg.status, reg.closed_on, reg.close_reason = "closed", today(), reason[:32]
    session.flush()
    audit.record(session, principal, "update", person_ids=[reg.person_id], what=[f"CarePlan/{reg.id}"],
                 detail={"closed": reason[:32]})
    record_event(session, "registry.closed", "CarePlan", reg.id, {"programme": reg.programme, "reason": reason[:32]},
                 person_id=reg.person_id)
    return reg


def record_followup(session: Session, principal: Principal, registry_id: str, *, visit_date: dt.date | None = None,
                    method: str = "clinic", sbp: float | None = None, dbp: float | None = None,
                    heart_rate: float | None = None, fasting_glucose: float | None = None,
                    random_glucose: float | None = None, weight_kg: float | None = None,
                    symptoms: list[str] | None = None, adverse_reaction: bool = False, complication: bool = False,
                    pregnant_or_lactating: bool = False, medication: list[dict] | None = None,
                    adherence: str | None = None, lifestyle: dict | None = None, note: str | None = None) -> Followup:
    """Record a follow-up, classify it (R3.3, R3.5), set the next due date, and — when R3.3 or R3.4 says
    refer — draft a referral through the referral service (urgent for R3.4). The draft's id is on the
    follow-up (``referral_id``); if the referral cannot be drafted the follow-up is still recorded."""
    reg = session.get(Registry, registry_id, with_for_update=True)
    if reg is None:
        raise NotFound("慢病档案不存在 / registry entry not found")
    require_team_member(principal, reg.organization_id)
    if reg.status != "active":
        raise Conflict("该慢病档案已结案 / this registry entry is closed")
    day = visit_date or today()
    if day > today() or day < reg.enrolled_on:
        raise BadRequest("随访日期须在建档日期与今天之间 / visit_date must be between enrolment and today",
                         expression=["visit_date"])
    if method not in METHODS:
        raise BadRequest(f"随访方式无效 / method must be one of {list(METHODS)}", expression=["method"])
    if adherence is not None and adherence not in ADHERENCE:
        raise BadRequest(f"服药依从性无效 / adherence must be one of {list(ADHERENCE)}", expression=["adherence"])
    sbp, dbp = number(sbp, "sbp", 40, 300), number(dbp, "dbp", 20, 200)
    fasting_glucose = number(fasting_glucose, "fasting_glucose", 0.5, 60)
    random_glucose = number(random_glucose, "random_glucose", 0.5, 60)
    if (sbp is None) != (dbp is None):
        raise BadRequest("收缩压和舒张压须同时填写 / give both sbp and dbp", expression=["sbp"])
    if reg.programme == rules.HYPERTENSION and sbp is None:
        raise BadRequest("高血压随访需测血压 / a hypertension follow-up needs a blood pressure", expression=["sbp"])
    if reg.programme == rules.DIABETES and fasting_glucose is None and random_glucose is None:
        raise BadRequest("糖尿病随访需测血糖 / a diabetes follow-up needs a glucose value",
                         expression=["fasting_glucose"])
    person = resident(session, reg.person_id)
    p = params(session, day)
    visit = rules.Visit(programme=reg.programme, visit_date=day, age=rules.age_on(person.birth_date, day), sbp=sbp,
                        dbp=dbp, fasting_glucose=fasting_glucose, random_glucose=random_glucose,
                        symptoms=frozenset(symptoms or []), adverse_reaction=adverse_reaction,
                        complication=complication, pregnant_or_lactating=pregnant_or_lactating)
    latest = reg.last_visit_date is None or day >= reg.last_visit_date
    prior = reg.consecutive_uncontrolled if latest else 0
    cls = rules.classify(visit, prior, p)
    fu = Followup(registry_id=reg.id, person_id=reg.person_id, programme=reg.programme,
                  organization_id=reg.organization_id, team_id=reg.team_id, doctor_id=reg.doctor_id, visit_date=day,
                  method=method, sbp=sbp, dbp=dbp, heart_rate=number(heart_rate, "heart_rate", 20, 250),
                  fasting_glucose=fasting_glucose, random_glucose=random_glucose,
                  weight_kg=number(weight_kg, "weight_kg", 2, 400), symptoms=sorted(set(symptoms or [])),
                  adverse_reaction=adverse_reaction, complication=complication, medication=list(medication or []),
                  adherence=adherence, lifestyle=dict(lifestyle or {}), classification=cls.code,
                  controlled=cls.controlled, action=cls.action,
                  on_schedule=rules.on_schedule(day, reg.next_due_date if latest else None),
                  next_due_date=cls.next_due, urgent_reasons=list(cls.urgent_reasons), note=note,
                  recorded_by=principal.name[:64])
    session.add(fu)
    if latest:
        reg.last_visit_date, reg.next_due_date = day, cls.next_due
        reg.last_classification, reg.controlled = cls.code, cls.controlled
        reg.consecutive_uncontrolled = cls.consecutive_uncontrolled
    session.flush()
    if cls.refer:
        fu.referral_id = draft_referral_for(session, principal, reg, fu, cls)
    audit.record(session, principal, "create", person_ids=[reg.person_id], what=[f"Encounter/{fu.id}"],
                 detail={"classification": cls.code, "referral": fu.referral_id})
    record_event(session, "followup.recorded", "Encounter", fu.id, followup_payload(fu), person_id=reg.person_id)
    session.flush()
    return fu


def followup_payload(fu: Followup) -> dict[str, Any]:
    return {"followup_id": fu.id, "programme": fu.programme, "organization_id": fu.organization_id,
            "team_id": fu.team_id, "doctor_id": fu.doctor_id, "visit_date": fu.visit_date.isoformat(),
            "controlled": bool(fu.controlled), "on_schedule": bool(fu.on_schedule)}


def get_registry(session: Session, principal: Principal, registry_id: str) -> Registry:
    reg = session.get(Registry, registry_id)
    if reg is None:
        raise NotFound("慢病档案不存在 / registry entry not found")
    access.require_read(session, principal, reg.person_id, f"CarePlan/{reg.id}")
    return reg
