"""Pregnancy care (孕产妇健康管理, issue 21 point 1; RULES R11.1, R11.2).

Booking (建册) dates the pregnancy (Naegele, corrected by an early ultrasound), records the first check and grades
the risk in five colours; each later visit re-grades from the facts in force; an orange or red grade without a
case manager is on the case-management worklist until someone takes it with a plan; the delivery opens the
postpartum home visit and the 42-day check, and the 42-day check closes the record. The visit plan and its
states are computed (rules.plan), never stored. Services flush, never commit; every change writes its audit and
outbox events; reads of another institution's pregnancy go through the access policy.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from onetrip.access import service as access
from onetrip.audit import service as audit
from onetrip.identity import service as identity
from onetrip.kit import clock
from onetrip.kit.errors import BadRequest, Conflict, Forbidden, NotFound
from onetrip.kit.masking import mask_name, mask_phone
from onetrip.kit.principal import Principal
from onetrip.maternal_child import repository as repo
from onetrip.maternal_child import rules
from onetrip.maternal_child.models import Pregnancy, PregnancyVisit, RiskGrade
from onetrip.maternal_child.schemas import (
    CaseManagerIn,
    DeliveryIn,
    EscalationIn,
    FindingsIn,
    PregnancyBookingIn,
    VisitIn,
)
from onetrip.outbox.service import record_event
from onetrip.persons.models import PatientRecord
from onetrip.referral import interface as referral
from onetrip.registry.models import User
from onetrip.rules.service import rule_values

RULE_SET = "maternal_child"
LISTS = ("all", "overdue", "case-management")
OPEN = ("active", "delivered")


class RuleMissing(Conflict):
    pass


def _values(session: Session, day: dt.date) -> dict[str, Any]:
    values = rule_values(session, RULE_SET, on=day)
    for key in ("risk_grading", "pregnancy_visits", "edd_ultrasound"):
        if not isinstance(values.get(key), dict):
            raise RuleMissing(f"规则值 maternal_child.{key} 缺失 / the rule value maternal_child.{key} is missing: "
                              "run `onetrip rules seed`")
    return values


def today() -> dt.date:
    return clock.local_date(clock.utcnow())


def ga_text(days: int | None) -> str | None:
    return None if days is None else f"{days // 7}+{days % 7}"


def _org(principal: Principal) -> str:
    if not principal.organization_id:
        raise Forbidden("该账号不属于任何机构 / this account belongs to no institution")
    return principal.organization_id


def _writable(principal: Principal, p: Pregnancy) -> None:
    if not principal.is_operator and p.organization_id != principal.organization_id:
        raise Forbidden("只有建册机构可以修改该孕产妇档案 / only the booking institution may change this pregnancy")


def _read(session: Session, principal: Principal, p: Pregnancy, subtype: str = "read") -> None:
    """Own institution's pregnancy (or the operator): audited; another institution's: the access policy decides,
    audited (a denial is a 403 and stays on record)."""
    what = f"EpisodeOfCare/mch-pregnancy-{p.id}"
    if principal.is_operator or p.organization_id == principal.organization_id:
        audit.record(session, principal, subtype, person_ids=[p.person_id], what=[what])
    else:
        access.require_read(session, principal, p.person_id, what, subtype)


def _findings(f: FindingsIn) -> dict[str, Any]:
    return f.model_dump(exclude_none=True)


def _with_bmi(facts: dict[str, Any], findings: dict[str, Any]) -> dict[str, Any]:
    """BMI from the booking's weight and height when it is not given."""
    w, h = findings.get("weight_kg"), findings.get("height_cm")
    if facts.get("bmi") is None and w and h:
        facts = {**facts, "bmi": round(w / (h / 100) ** 2, 1)}
    return facts


def _age(rec: PatientRecord | None, day: dt.date) -> int | None:
    return rules.age_on(rec.birth_date, day) if rec is not None and rec.birth_date else None


def _grade(session: Session, principal: Principal, p: Pregnancy, day: dt.date, values: dict[str, Any],
           visit: PregnancyVisit | None) -> rules.Grade:
    rec = session.get(PatientRecord, p.patient_record_id)
    g = rules.grade(rules.RiskFacts.from_mapping(p.facts, age=_age(rec, day)), values["risk_grading"])
    changed = (g.colour, g.purple, list(g.reasons)) != (p.risk_colour, p.purple, list(p.risk_reasons or []))
    p.risk_colour, p.purple, p.risk_reasons = g.colour, g.purple, list(g.reasons)
    row = RiskGrade(pregnancy_id=p.id, visit_id=visit.id if visit else None, graded_on=day, colour=g.colour,
                    purple=g.purple, reasons=list(g.reasons), graded_by=principal.id)
    session.add(row)
    session.flush()
    record_event(session, "maternal_child.pregnancy.graded", "EpisodeOfCare", p.id,
                 {"colour": g.colour, "purple": g.purple, "reasons": list(g.reasons), "changed": changed,
                  "case_management": g.case_management, "needs_manager": g.case_management and not p.case_manager_id,
                  "visit_id": row.visit_id, "organization_id": p.organization_id}, person_id=p.person_id)
    return g


def book(session: Session, principal: Principal, data: PregnancyBookingIn, on: dt.date | None = None) -> Pregnancy:
    """建册: the mother's record read (audited, access-checked), the pregnancy dated (Naegele, or the early
    ultrasound when it differs by more than the rule's tolerance), the booking check recorded as the first
    antenatal visit, the risk graded."""
    org = _org(principal)
    now_day = on or today()
    booked_on = data.booked_on or now_day
    if booked_on > now_day:
        raise BadRequest("建册日期不能在将来 / booked_on must not be in the future", expression=["booked_on"])
    values = _values(session, booked_on)
    rec = identity.read(session, principal, data.patient_id)
    problem = rules.lmp_problem(data.lmp, booked_on, int(values.get("lmp_max_weeks", 44)))
    if problem == "future":
        raise BadRequest("末次月经不能晚于建册日期 / lmp must not be after the booking day", expression=["lmp"])
    if problem == "too_old":
        raise BadRequest(f"末次月经距建册超过 {values.get('lmp_max_weeks', 44)} 周 / lmp is more than "
                         f"{values.get('lmp_max_weeks', 44)} weeks before booking", expression=["lmp"])
    scan = None
    if data.scan is not None:
        if not (data.lmp <= data.scan.date <= booked_on):
            raise BadRequest("B超日期须在末次月经与建册日之间 / the scan date must be between lmp and the booking day",
                             expression=["scan.date"])
        scan = rules.DatingScan(data.scan.date, data.scan.weeks, data.scan.days)
    if repo.open_pregnancy_of(session, rec.person_id) is not None:
        raise Conflict("该孕妇已有在管的孕产期档案 / this woman already has an active pregnancy record")
    edd, source = rules.due_date(data.lmp, scan, values["edd_ultrasound"])
    findings = _findings(data.findings)
    facts = _with_bmi(data.facts.model_dump(exclude_none=True), findings)
    p = Pregnancy(person_id=rec.person_id, patient_record_id=rec.id, organization_id=org, lmp=data.lmp, edd=edd,
                  edd_source=source, scan_date=scan.date if scan else None,
                  scan_ga_days=scan.ga_days if scan else None, booked_on=booked_on, status="active", facts=facts,
                  risk_colour="green", purple=False, risk_reasons=[], created_by=principal.id)
    session.add(p)
    session.flush()
    visit = PregnancyVisit(pregnancy_id=p.id, person_id=p.person_id, kind="antenatal", visit_date=booked_on,
                           ga_days=rules.gestational_days(edd, booked_on), findings=findings, facts=facts,
                           recorded_by=principal.id)
    session.add(visit)
    session.flush()
    audit.record(session, principal, "create", person_ids=[p.person_id],
                 what=[f"EpisodeOfCare/mch-pregnancy-{p.id}"], detail={"edd_source": source})
    record_event(session, "maternal_child.pregnancy.booked", "EpisodeOfCare", p.id,
                 {"patient_id": rec.id, "organization_id": org, "lmp": p.lmp.isoformat(), "edd": edd.isoformat(),
                  "edd_source": source, "booked_on": booked_on.isoformat(),
                  "ga_days": visit.ga_days}, person_id=p.person_id)
    _grade(session, principal, p, booked_on, values, visit)
    return p


def get(session: Session, principal: Principal, pregnancy_id: str) -> Pregnancy:
    p = session.get(Pregnancy, pregnancy_id)
    if p is None:
        raise NotFound("孕产妇档案不存在 / pregnancy not found")
    _read(session, principal, p)
    return p


@dataclass(frozen=True)
class View:
    pregnancy: Pregnancy
    plan: list[rules.PlanWindow]
    visits: list[PregnancyVisit]
    grades: list[RiskGrade]
    ga_days: int | None
    antenatal_checks: int


def _plan(p: Pregnancy, visits: list[PregnancyVisit], day: dt.date, values: dict[str, Any]
          ) -> list[rules.PlanWindow]:
    return rules.plan(p.edd, p.booked_on, [rules.Visit(v.kind, v.visit_date) for v in visits], day,
                      values["pregnancy_visits"], delivered_on=p.delivery_date, discharged_on=p.discharge_date)


def view(session: Session, principal: Principal, pregnancy_id: str, on: dt.date | None = None) -> View:
    """The pregnancy with its plan (each window's state on ``on``), visits and grade history. Audited read."""
    return snapshot(session, get(session, principal, pregnancy_id), on)


def snapshot(session: Session, p: Pregnancy, on: dt.date | None = None) -> View:
    """``view`` of a pregnancy the caller has just read or changed (already audited)."""
    day = on or today()
    visits = repo.pregnancy_visits(session, p.id)
    ga = rules.gestational_days(p.edd, day) if p.status == "active" else None
    return View(p, _plan(p, visits, day, _values(session, day)), visits, repo.risk_grades(session, p.id), ga,
                sum(1 for v in visits if v.kind == "antenatal"))


def record_visit(session: Session, principal: Principal, pregnancy_id: str, data: VisitIn,
                 on: dt.date | None = None) -> tuple[PregnancyVisit, rules.Grade | None]:
    """A check: antenatal visits re-grade the risk from the facts in force (the facts given replace the earlier
    ones); the postpartum home visit and the 42-day check need the delivery first; the 42-day check closes the
    record."""
    p = get(session, principal, pregnancy_id)
    _writable(principal, p)
    now_day = on or today()
    if p.status == "closed":
        raise Conflict("该孕产妇档案已结案 / this pregnancy record is closed")
    if data.visit_date > now_day:
        raise BadRequest("随访日期不能在将来 / visit_date must not be in the future", expression=["visit_date"])
    if data.visit_date < p.booked_on:
        raise BadRequest("随访日期早于建册日期 / visit_date is before the booking day", expression=["visit_date"])
    if data.kind == "antenatal" and p.delivery_date is not None and data.visit_date > p.delivery_date:
        raise BadRequest("分娩后不能再记录产前检查 / an antenatal check after the delivery", expression=["kind"])
    if data.kind != "antenatal":
        if p.delivery_date is None:
            raise BadRequest("请先登记分娩 / record the delivery before a postpartum visit", expression=["kind"])
        if data.visit_date < p.delivery_date:
            raise BadRequest("产后访视日期早于分娩日期 / visit_date is before the delivery",
                             expression=["visit_date"])
    values = _values(session, data.visit_date)
    given = data.facts.model_dump(exclude_unset=True) if data.facts is not None else {}
    findings = _findings(data.findings)
    visit = PregnancyVisit(pregnancy_id=p.id, person_id=p.person_id, kind=data.kind, visit_date=data.visit_date,
                           ga_days=rules.gestational_days(p.edd, data.visit_date) if data.kind == "antenatal"
                           else None, findings=findings, facts=given, recorded_by=principal.id)
    session.add(visit)
    session.flush()
    audit.record(session, principal, "create", person_ids=[p.person_id],
                 what=[f"Encounter/mch-visit-{visit.id}"], detail={"kind": data.kind})
    record_event(session, "maternal_child.pregnancy.visit_recorded", "EpisodeOfCare", p.id,
                 {"visit_id": visit.id, "kind": data.kind, "visit_date": data.visit_date.isoformat(),
                  "ga_days": visit.ga_days, "organization_id": p.organization_id}, person_id=p.person_id)
    g = None
    if data.kind == "antenatal":
        p.facts = {**(p.facts or {}), **given}
        g = _grade(session, principal, p, data.visit_date, values, visit)
    elif data.kind == "day42":
        p.status = "closed"
    session.flush()
    return visit, g


def assign_case_manager(session: Session, principal: Principal, pregnancy_id: str, data: CaseManagerIn
                        ) -> Pregnancy:
    """专案管理: a named manager (a user of the pregnancy's institution; default the caller) and a plan."""
    p = get(session, principal, pregnancy_id)
    _writable(principal, p)
    if p.status == "closed":
        raise Conflict("该孕产妇档案已结案 / this pregnancy record is closed")
    manager_id = data.manager_id or principal.id
    user = session.get(User, manager_id)
    if user is None or not user.active or user.organization_id != p.organization_id:
        raise BadRequest("专案管理人须为本机构在职用户 / the case manager must be an active user of the pregnancy's "
                         "institution", expression=["manager_id"])
    p.case_manager_id, p.case_manager_name, p.case_plan = user.id, user.display_name, data.plan.strip()
    session.flush()
    audit.record(session, principal, "update", person_ids=[p.person_id],
                 what=[f"EpisodeOfCare/mch-pregnancy-{p.id}"], detail={"case_manager": user.id})
    record_event(session, "maternal_child.pregnancy.case_assigned", "EpisodeOfCare", p.id,
                 {"case_manager_id": user.id, "colour": p.risk_colour, "organization_id": p.organization_id},
                 person_id=p.person_id)
    return p


def escalate(session: Session, principal: Principal, pregnancy_id: str, data: EscalationIn) -> Pregnancy:
    """Escalate an orange or red case to the lead hospital (obstetrics): an upward referral drafted through the
    referral service (urgent when red), sent from there like any other. Once per pregnancy."""
    p = get(session, principal, pregnancy_id)
    _writable(principal, p)
    if p.status != "active":
        raise Conflict(f"该孕产妇档案状态为 {p.status} / the pregnancy is {p.status}")
    if p.risk_colour not in ("orange", "red"):
        raise Conflict("只有橙色及以上风险可上转 / only an orange or red case is escalated")
    if p.referral_id:
        raise Conflict("该孕产妇已上转 / this case was escalated already")
    ga = rules.gestational_age(p.edd, today())
    reason = (f"孕产妇{p.risk_colour}色风险（{', '.join(p.risk_reasons or [])}），孕 {ga[0]}+{ga[1]} 周 / pregnancy "
              f"graded {p.risk_colour} ({', '.join(p.risk_reasons or [])}) at {ga[0]}+{ga[1]} weeks: "
              f"{data.reason.strip()}")
    ref = referral.draft_referral(session, principal, person_id=p.person_id, direction="up", to_organization_id=None,
                                  reason=reason[:2000], criteria_codes=["U1" if p.risk_colour == "red" else "U2"],
                                  source="mch-pregnancy", urgent=p.risk_colour == "red",
                                  note=(p.case_plan or None))
    p.referral_id = ref.id
    session.flush()
    audit.record(session, principal, "update", person_ids=[p.person_id],
                 what=[f"EpisodeOfCare/mch-pregnancy-{p.id}"], detail={"referral_id": ref.id})
    record_event(session, "maternal_child.pregnancy.escalated", "EpisodeOfCare", p.id,
                 {"referral_id": ref.id, "colour": p.risk_colour, "organization_id": p.organization_id,
                  "to_organization_id": ref.to_organization_id}, person_id=p.person_id)
    return p


def record_delivery(session: Session, principal: Principal, pregnancy_id: str, data: DeliveryIn,
                    on: dt.date | None = None) -> Pregnancy:
    """The delivery (or loss) and the discharge day: the postpartum home visit is due within the rule's days of
    discharge, the 42-day check from day 42 after delivery."""
    p = get(session, principal, pregnancy_id)
    _writable(principal, p)
    now_day = on or today()
    if p.status != "active":
        raise Conflict(f"该孕产妇档案状态为 {p.status}，不能登记分娩 / the pregnancy is {p.status}")
    if data.delivery_date > now_day:
        raise BadRequest("分娩日期不能在将来 / delivery_date must not be in the future",
                         expression=["delivery_date"])
    if data.delivery_date < p.lmp:
        raise BadRequest("分娩日期早于末次月经 / delivery_date is before the lmp", expression=["delivery_date"])
    if data.discharge_date < data.delivery_date:
        raise BadRequest("出院日期早于分娩日期 / discharge_date is before delivery_date",
                         expression=["discharge_date"])
    if data.discharge_date > now_day:
        raise BadRequest("出院日期不能在将来 / discharge_date must not be in the future",
                         expression=["discharge_date"])
    p.delivery_date, p.discharge_date = data.delivery_date, data.discharge_date
    p.delivery_outcome, p.delivery_mode, p.status = data.outcome, data.mode, "delivered"
    session.flush()
    audit.record(session, principal, "update", person_ids=[p.person_id],
                 what=[f"EpisodeOfCare/mch-pregnancy-{p.id}"], detail={"status": "delivered"})
    record_event(session, "maternal_child.pregnancy.delivered", "EpisodeOfCare", p.id,
                 {"delivery_date": data.delivery_date.isoformat(), "discharge_date": data.discharge_date.isoformat(),
                  "outcome": data.outcome, "ga_days": rules.gestational_days(p.edd, data.delivery_date),
                  "organization_id": p.organization_id}, person_id=p.person_id)
    return p


@dataclass(frozen=True)
class Row:
    pregnancy: Pregnancy
    record: PatientRecord | None
    plan: list[rules.PlanWindow]
    ga_days: int | None

    def out(self) -> dict[str, Any]:
        p, rec = self.pregnancy, self.record
        return {"id": p.id, "patient_id": p.patient_record_id, "name": mask_name(rec.name if rec else None),
                "phone": mask_phone(rec.phone if rec else None), "edd": p.edd, "gestational_age": ga_text(self.ga_days),
                "status": p.status, "risk_colour": p.risk_colour, "purple": p.purple,
                "risk_reasons": list(p.risk_reasons or []), "case_manager_name": p.case_manager_name,
                "overdue": [w.key for w in self.plan if w.state == rules.OVERDUE],
                "due": [w.key for w in self.plan if w.state == rules.DUE]}


def worklist(session: Session, principal: Principal, which: str = "all", on: dt.date | None = None) -> list[Row]:
    """The institution's open pregnancies: ``all``; ``overdue`` (a plan window past its end without its visit —
    the missed-visit alert); ``case-management`` (orange or red, no case manager yet). Audited as one search."""
    if which not in LISTS:
        raise BadRequest(f"list 须为 {' | '.join(LISTS)} / list must be one of {', '.join(LISTS)}",
                         expression=["list"])
    day = on or today()
    values = _values(session, day)
    org = None if principal.is_operator and not principal.organization_id else _org(principal)
    found = repo.pregnancies_of(session, org, ("active",) if which == "case-management" else OPEN)
    if which == "case-management":
        found = [p for p in found if p.risk_colour in ("orange", "red") and not p.case_manager_id]
    visits = repo.visits_of(session, [p.id for p in found])
    rows = []
    for p in found:
        plan = _plan(p, visits[p.id], day, values)
        if which == "overdue" and not any(w.state == rules.OVERDUE for w in plan):
            continue
        ga = rules.gestational_days(p.edd, day) if p.status == "active" else None
        rows.append(Row(p, session.get(PatientRecord, p.patient_record_id), plan, ga))
    if rows:
        audit.record(session, principal, "search", person_ids=[r.pregnancy.person_id for r in rows],
                     what=[f"EpisodeOfCare/mch-pregnancy-{r.pregnancy.id}" for r in rows], query=f"list={which}")
    return rows
