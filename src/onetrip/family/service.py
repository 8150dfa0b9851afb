"""Family-doctor business logic: teams, contracts (sign, renew, switch, expire), chronic-disease
registries and follow-ups (classification R3.3 and urgent referral R3.4), long prescriptions (RULES §4)
with proxy collection and home delivery, the pre-visit summary, worklists and figures (R3.6, R5.3).

Services flush, never commit (STYLE 2). Every state change writes an audit event and an outbox event in
the caller's transaction (event types and payloads in /work/coord/CONTRACTS.md: contract.signed|ended,
registry.enrolled, followup.recorded). Every read of a patient's data goes through ``access``.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from onetrip.access import service as access
from onetrip.audit import service as audit
from onetrip.family import figures as fig
from onetrip.family import repository as repo
from onetrip.family import rules
from onetrip.family.models import (
    Contract,
    ContractStatus,
    DeliveryOrder,
    Followup,
    LongPrescription,
    Package,
    Registry,
    SigningChannel,
    Team,
)
from onetrip.identity.models import Person
from onetrip.kit.clock import local_date, utcnow
from onetrip.kit.errors import ApiError, BadRequest, Conflict, Forbidden, NotFound, Unprocessable
from onetrip.kit.identifiers import IdentifierError, parse_resident_id
from onetrip.kit.masking import mask_id_number, mask_name, mask_phone
from onetrip.kit.principal import Principal
from onetrip.outbox.service import record_event
from onetrip.registry.models import Organization, Practitioner
from onetrip.rules.service import rule_values

RULE_SET = "family"
ADHERENCE = ("regular", "intermittent", "none")
METHODS = ("clinic", "home", "phone")
DIAGNOSIS = {rules.HYPERTENSION: "I10", rules.DIABETES: "E11"}


def params(session: Session, on: dt.date | None = None) -> rules.Params:
    return rules.Params.from_rule_values(rule_values(session, RULE_SET, on))


def today() -> dt.date:
    return local_date(utcnow())


def _iso(d: dt.date | None) -> str | None:
    return d.isoformat() if d else None


# --- who may act ------------------------------------------------------------------------------------

def require_team_member(principal: Principal, organization_id: str) -> None:
    """The institution's own staff, or an operator (admin, system client, CLI)."""
    if principal.is_operator or principal.organization_id == organization_id:
        return
    raise Forbidden("仅本机构家庭医生团队可操作 / only staff of the team's institution may do this")


def _person(session: Session, person_id: str) -> Person:
    person = session.get(Person, person_id)
    if person is None:
        raise NotFound("居民不存在 / person not found", expression=["person_id"])
    if person.merged_into_id:
        person = session.get(Person, person.merged_into_id) or person
    return person


def read_person(session: Session, principal: Principal, person_id: str, what: str) -> Person:
    """The person, if the access policy allows (audited)."""
    person = _person(session, person_id)
    access.require_read(session, principal, person.id, what)
    return person


# --- teams ------------------------------------------------------------------------------------------

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


# --- contracts (R5) ---------------------------------------------------------------------------------

def _contract_payload(c: Contract) -> dict[str, Any]:
    return {"contract_id": c.id, "organization_id": c.organization_id, "team_id": c.team_id,
            "doctor_id": c.doctor_id, "key_groups": list(c.key_groups or []), "start_date": _iso(c.start_date),
            "end_date": _iso(c.end_date)}


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
    person = _person(session, person_id)
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


# --- registries and follow-ups (R3) -----------------------------------------------------------------

def enrol(session: Session, principal: Principal, *, person_id: str, programme: str, organization_id: str | None = None,
          team_id: str | None = None, enrolled_on: dt.date | None = None, diagnosis_code: str | None = None) -> Registry:
    """Enrol a resident in the hypertension or diabetes registry (专案管理). The team and doctor come from
    the resident's active contract unless given; the first follow-up is due on the day of enrolment."""
    if programme not in rules.PROGRAMMES:
        raise BadRequest(f"项目须为 {list(rules.PROGRAMMES)} / programme must be one of {list(rules.PROGRAMMES)}",
                         expression=["programme"])
    person = _person(session, person_id)
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


def _num(value: Any, field: str, low: float, high: float) -> float | None:
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
    sbp, dbp = _num(sbp, "sbp", 40, 300), _num(dbp, "dbp", 20, 200)
    fasting_glucose = _num(fasting_glucose, "fasting_glucose", 0.5, 60)
    random_glucose = _num(random_glucose, "random_glucose", 0.5, 60)
    if (sbp is None) != (dbp is None):
        raise BadRequest("收缩压和舒张压须同时填写 / give both sbp and dbp", expression=["sbp"])
    if reg.programme == rules.HYPERTENSION and sbp is None:
        raise BadRequest("高血压随访需测血压 / a hypertension follow-up needs a blood pressure", expression=["sbp"])
    if reg.programme == rules.DIABETES and fasting_glucose is None and random_glucose is None:
        raise BadRequest("糖尿病随访需测血糖 / a diabetes follow-up needs a glucose value",
                         expression=["fasting_glucose"])
    person = _person(session, reg.person_id)
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
                  method=method, sbp=sbp, dbp=dbp, heart_rate=_num(heart_rate, "heart_rate", 20, 250),
                  fasting_glucose=fasting_glucose, random_glucose=random_glucose,
                  weight_kg=_num(weight_kg, "weight_kg", 2, 400), symptoms=sorted(set(symptoms or [])),
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
        fu.referral_id = _draft_referral(session, principal, reg, fu, cls)
    audit.record(session, principal, "create", person_ids=[reg.person_id], what=[f"Encounter/{fu.id}"],
                 detail={"classification": cls.code, "referral": fu.referral_id})
    record_event(session, "followup.recorded", "Encounter", fu.id, followup_payload(fu), person_id=reg.person_id)
    session.flush()
    return fu


def followup_payload(fu: Followup) -> dict[str, Any]:
    return {"followup_id": fu.id, "programme": fu.programme, "organization_id": fu.organization_id,
            "team_id": fu.team_id, "doctor_id": fu.doctor_id, "visit_date": fu.visit_date.isoformat(),
            "controlled": bool(fu.controlled), "on_schedule": bool(fu.on_schedule)}


REASON_TEXT = {
    "R3.4:sbp": "收缩压≥{sbp} / SBP ≥{sbp}", "R3.4:dbp": "舒张压≥{dbp} / DBP ≥{dbp}",
    "R3.4:glucose_high": "血糖≥{gh} / glucose ≥{gh}", "R3.4:glucose_low": "血糖≤{gl} / glucose ≤{gl}",
    "R3.4:pregnancy_bp": "妊娠/哺乳期血压升高 / raised BP in pregnancy or lactation",
}


def _draft_referral(session: Session, principal: Principal, reg: Registry, fu: Followup,
                    cls: rules.Classification) -> str | None:
    """Draft the referral R3.3/R3.4 calls for (contract in CONTRACTS.md). Returns its id, or None when the
    referral service refuses (e.g. no hospital above this institution) — the follow-up stands."""
    try:
        from onetrip.referral.service import draft_referral
    except ImportError:  # the referral capability is not installed
        return None
    p = params(session, fu.visit_date)
    reasons = [REASON_TEXT.get(r, r.replace("R3.4:symptom:", "症状 / symptom: ")).format(
        sbp=int(p.urgent_sbp), dbp=int(p.urgent_dbp), gh=p.urgent_glucose_high, gl=p.urgent_glucose_low)
        for r in cls.urgent_reasons]
    measured = f"BP {fu.sbp:.0f}/{fu.dbp:.0f} mmHg" if fu.sbp is not None else ""
    if fu.fasting_glucose is not None:
        measured += f" FPG {fu.fasting_glucose} mmol/L"
    if cls.code == rules.URGENT:
        reason = f"慢病随访紧急转诊（R3.4）/ urgent referral from chronic follow-up (R3.4): {'; '.join(reasons)}. {measured}"
    elif cls.code == rules.COMPLICATION:
        reason = f"出现新的并发症或原有并发症加重（R3.3）/ new or worse complication (R3.3). {measured}"
    else:
        reason = (f"连续 {cls.consecutive_uncontrolled} 次随访控制不满意（R3.3）/ {cls.consecutive_uncontrolled} "
                  f"consecutive uncontrolled follow-ups (R3.3). {measured}")
    sender = principal
    if principal.organization_id is None:  # an operator acting for the team's institution
        from dataclasses import replace

        sender = replace(principal, organization_id=reg.organization_id)
    try:
        with session.begin_nested():
            ref = draft_referral(session, sender, person_id=reg.person_id, direction="up", to_organization_id=None,
                                 reason=reason.strip()[:2000], criteria_codes=["U1" if cls.code == rules.URGENT else "U2"],
                                 source="chronic-followup", urgent=cls.code == rules.URGENT)
    except ApiError:
        return None
    return ref.id


def get_registry(session: Session, principal: Principal, registry_id: str) -> Registry:
    reg = session.get(Registry, registry_id)
    if reg is None:
        raise NotFound("慢病档案不存在 / registry entry not found")
    access.require_read(session, principal, reg.person_id, f"CarePlan/{reg.id}")
    return reg


# --- long prescriptions (R4) ------------------------------------------------------------------------

def rx_facts(session: Session, person_id: str) -> rules.RxFacts:
    regs = [r for r in repo.registries_of(session, person_id) if r.status == "active"]
    fus = repo.followups(session, person_id=person_id, limit=10)
    return rules.RxFacts(enrolled=bool(regs), latest_controlled=[f.controlled for f in fus],
                         adherence=fus[0].adherence if fus else None)


def check_prescription(session: Session, person_id: str, items: list[dict], weeks: int, *, assessment: str | None,
                       patient_confirmed: bool) -> list[rules.RxProblem]:
    rx_items = [rules.RxItem(drug=str(i.get("drug") or "").strip(), drug_class=i.get("drug_class"),
                             indication=i.get("indication")) for i in items]
    return rules.check_long_prescription(rx_items, weeks, rx_facts(session, person_id), assessment=assessment,
                                         patient_confirmed=patient_confirmed, p=params(session))


def issue_long_prescription(session: Session, principal: Principal, *, person_id: str, items: list[dict], weeks: int,
                            assessment: str | None = None, patient_confirmed: bool = False,
                            organization_id: str | None = None) -> LongPrescription:
    """Issue a long prescription (RULES §4). 422 listing every rule it breaks (R4.1–R4.3)."""
    person = _person(session, person_id)
    org = organization_id or principal.organization_id
    if org is None:
        raise BadRequest("需要开方机构 / organization_id is required", expression=["organization_id"])
    require_team_member(principal, org)
    if any(not str(i.get("drug") or "").strip() for i in items):
        raise BadRequest("药品名称必填 / every item needs a drug name", expression=["items"])
    problems = check_prescription(session, person.id, items, weeks, assessment=assessment,
                                  patient_confirmed=patient_confirmed)
    if problems:
        raise Unprocessable("；".join(f"[{x.rule}] {x.message.split(' / ')[0]}" for x in problems) + " / "
                            + "; ".join(f"[{x.rule}] {x.message.split(' / ')[-1]}" for x in problems),
                            expression=[x.code for x in problems])
    regs = [r for r in repo.registries_of(session, person.id) if r.status == "active"]
    now = utcnow()
    rx = LongPrescription(person_id=person.id, registry_id=regs[0].id if regs else None, organization_id=org,
                          prescriber=principal.name[:64], items=[dict(i) for i in items], weeks=weeks,
                          assessment=assessment, patient_confirmed=patient_confirmed,
                          confirmed_at=now if patient_confirmed else None, issued_at=now, status="issued")
    session.add(rx)
    session.flush()
    audit.record(session, principal, "create", person_ids=[person.id], what=[f"MedicationRequest/{rx.id}"],
                 detail={"weeks": weeks})
    record_event(session, "long_prescription.issued", "MedicationRequest", rx.id,
                 {"organization_id": org, "weeks": weeks}, person_id=person.id)
    return rx


def _rx(session: Session, principal: Principal, rx_id: str) -> LongPrescription:
    rx = session.get(LongPrescription, rx_id, with_for_update=True)
    if rx is None:
        raise NotFound("处方不存在 / prescription not found")
    require_team_member(principal, rx.organization_id)
    return rx


def _valid_id(value: str | None, field: str) -> str:
    try:
        return parse_resident_id((value or "").strip()).number
    except IdentifierError:
        raise BadRequest(f"{field} 不是有效的居民身份证号 / {field} is not a valid resident ID number",
                         expression=[field]) from None


def collect(session: Session, principal: Principal, rx_id: str, *, by_proxy: bool, patient_id_number: str | None,
            collector_name: str | None = None, collector_id_number: str | None = None) -> LongPrescription:
    """Pickup (R4.4): by the patient, or by a proxy with both ID numbers recorded."""
    rx = _rx(session, principal, rx_id)
    if rx.status != "issued":
        raise Conflict("处方已取药或已配送 / already collected or out for delivery")
    person = _person(session, rx.person_id)
    pid = _valid_id(patient_id_number, "patient_id_number")
    if person.id_number and pid != person.id_number:
        raise BadRequest("患者身份证号与档案不符 / the patient's ID number does not match the record",
                         expression=["patient_id_number"])
    if by_proxy:
        rx.collector_id_number = _valid_id(collector_id_number, "collector_id_number")
        if not (collector_name or "").strip():
            raise BadRequest("代取人姓名必填 / the proxy's name is required", expression=["collector_name"])
        if rx.collector_id_number == pid:
            raise BadRequest("代取人与患者不能为同一人 / the proxy cannot be the patient", expression=["collector_id_number"])
        rx.collector_name = collector_name.strip()[:64]
    rx.patient_id_number, rx.collected_by_proxy = pid, by_proxy
    rx.status, rx.collected_at = "collected", utcnow()
    session.flush()
    audit.record(session, principal, "update", person_ids=[rx.person_id], what=[f"MedicationRequest/{rx.id}"],
                 detail={"collected": "proxy" if by_proxy else "patient"})
    record_event(session, "long_prescription.collected", "MedicationRequest", rx.id,
                 {"organization_id": rx.organization_id, "by_proxy": by_proxy}, person_id=rx.person_id)
    return rx


DELIVERY_STEPS = {"packed": "sent", "sent": "delivered"}


def create_delivery(session: Session, principal: Principal, rx_id: str, *, address: str,
                    carrier: str | None = None) -> DeliveryOrder:
    rx = _rx(session, principal, rx_id)
    if rx.status != "issued":
        raise Conflict("处方已取药或已配送 / already collected or out for delivery")
    if not address.strip():
        raise BadRequest("配送地址必填 / address is required", expression=["address"])
    d = DeliveryOrder(prescription_id=rx.id, person_id=rx.person_id, address=address.strip()[:255], status="packed",
                      packed_at=utcnow(), carrier=carrier)
    rx.status = "delivering"
    session.add(d)
    session.flush()
    audit.record(session, principal, "create", person_ids=[rx.person_id], what=[f"SupplyDelivery/{d.id}"])
    record_event(session, "delivery.packed", "SupplyDelivery", d.id, {"prescription_id": rx.id}, person_id=rx.person_id)
    return d


def advance_delivery(session: Session, principal: Principal, delivery_id: str, status: str,
                     tracking_no: str | None = None) -> DeliveryOrder:
    """packed → sent → delivered (no skipping, no going back)."""
    d = session.get(DeliveryOrder, delivery_id, with_for_update=True)
    if d is None:
        raise NotFound("配送单不存在 / delivery order not found")
    rx = _rx(session, principal, d.prescription_id)
    if DELIVERY_STEPS.get(d.status) != status:
        raise Conflict(f"配送状态不能从 {d.status} 变为 {status} / a delivery goes packed → sent → delivered")
    now = utcnow()
    d.status = status
    if status == "sent":
        d.sent_at, d.tracking_no = now, tracking_no or d.tracking_no
    else:
        d.delivered_at, rx.status = now, "delivered"
    session.flush()
    audit.record(session, principal, "update", person_ids=[d.person_id], what=[f"SupplyDelivery/{d.id}"],
                 detail={"status": status})
    record_event(session, f"delivery.{status}", "SupplyDelivery", d.id, {"prescription_id": rx.id},
                 person_id=d.person_id)
    return d


# --- pre-visit summary ------------------------------------------------------------------------------

def previsit_summary(session: Session, principal: Principal, person_id: str, on: dt.date | None = None,
                     *, audit_read: bool = True) -> dict[str, Any]:
    """What reaches the doctor's screen first when the patient checks in (诊前评估): registries with their
    latest classification and due dates, self-check trends (14 days against the 14 before), adherence,
    open alerts, the year's glucose tests (R3.2), the contract and the last long prescription."""
    person = read_person(session, principal, person_id, f"Patient/{person_id}") if audit_read else _person(session,
                                                                                                           person_id)
    day = on or today()
    p = params(session, day)
    regs = repo.registries_of(session, person.id)
    fus = repo.followups(session, person_id=person.id, limit=12)
    since = dt.datetime.combine(day - dt.timedelta(days=28), dt.time(), dt.UTC)
    reads = repo.readings(session, person.id, since)

    def series(attr: str) -> list[tuple[dt.date, float]]:
        return [(local_date(r.measured_at), getattr(r, attr)) for r in reads if getattr(r, attr) is not None]

    reading_days = {local_date(r.measured_at) for r in reads}
    year_start = day.replace(month=1, day=1)
    test_days = {f.visit_date for f in repo.followups(session, person_id=person.id, limit=100)
                 if f.visit_date >= year_start and f.fasting_glucose is not None}
    lab = lab_fasting_glucose(session, principal, person.id) if audit_read else []
    test_days |= {local_date(t.effective_at) for t in lab if local_date(t.effective_at) >= year_start}
    glucose_tests = len(test_days)
    alerts = repo.open_alerts(session, person_id=person.id)
    contract = repo.active_contract(session, person.id)
    rxs = repo.prescriptions_of(session, person.id, limit=1)
    return {
        "person": {"id": person.id, "name": person.name, "age": rules.age_on(person.birth_date, day),
                   "sex": person.sex, "id_number": mask_id_number(person.id_number), "phone": mask_phone(person.phone)},
        "registries": [{"id": r.id, "programme": r.programme, "status": r.status, "last_visit": _iso(r.last_visit_date),
                        "next_due": _iso(r.next_due_date), "classification": r.last_classification,
                        "controlled": r.controlled, "bucket": rules.worklist_bucket(r.next_due_date, day, p)
                        if r.status == "active" else None} for r in regs],
        "last_followups": [{"id": f.id, "date": f.visit_date.isoformat(), "programme": f.programme, "sbp": f.sbp,
                            "dbp": f.dbp, "fasting_glucose": f.fasting_glucose, "classification": f.classification,
                            "referral_id": f.referral_id} for f in fus[:3]],
        "trend": {"sbp": rules.trend(series("sbp"), day), "dbp": rules.trend(series("dbp"), day),
                  "glucose": rules.trend(series("glucose"), day)},
        "adherence": {"medication": fus[0].adherence if fus else None,
                      "self_check_days_28": len(reading_days), "self_check_share": round(len(reading_days) / 28, 2)},
        "glucose_tests_this_year": glucose_tests, "glucose_tests_expected": p.glucose_tests_per_year,
        "lab_fasting_glucose": {"value": lab[-1].value, "unit": lab[-1].unit,
                                "date": local_date(lab[-1].effective_at).isoformat(),
                                "organization": lab[-1].organization_name} if lab else None,
        "alerts": [{"id": a.id, "at": a.created_at.isoformat(), "summary": a.summary, "codes": a.codes} for a in alerts],
        "contract": {"id": contract.id, "team_id": contract.team_id, "end_date": _iso(contract.end_date),
                     "package": contract.package, "key_groups": contract.key_groups} if contract else None,
        "last_long_prescription": {"id": rxs[0].id, "weeks": rxs[0].weeks, "status": rxs[0].status,
                                   "issued_at": rxs[0].issued_at.isoformat()} if rxs else None,
    }


LAB_FASTING_GLUCOSE = ("14771-0", "1558-6")  # LOINC fasting glucose, mmol/L and mg/dL


def lab_fasting_glucose(session: Session, principal: Principal, person_id: str) -> list:
    """Laboratory fasting glucose results from the shared results store (records.service.trend, through
    the access policy), oldest first — they count towards the R3.2 glucose tests."""
    from onetrip.records import service as records

    out = []
    for code in LAB_FASTING_GLUCOSE:
        try:
            out.extend(records.trend(session, principal, person_id, code))
        except ApiError:
            return []
    return sorted(out, key=lambda t: t.effective_at)


def check_in(session: Session, principal: Principal, *, person_id: str | None = None,
             id_number: str | None = None) -> dict[str, Any]:
    """The patient swipes their ID card at the chronic-disease clinic: find them and return the pre-visit
    summary (audited as a read)."""
    if person_id is None:
        number = _valid_id(id_number, "id_number")
        person = session.scalars(select(Person).where(Person.id_number == number)).first()
        if person is None:
            raise NotFound("未找到该居民 / no resident with this ID number", expression=["id_number"])
        person_id = person.id
    summary = previsit_summary(session, principal, person_id)
    record_event(session, "chronic.checked_in", "Patient", summary["person"]["id"],
                 {"organization_id": principal.organization_id}, person_id=summary["person"]["id"])
    return summary


# --- worklists --------------------------------------------------------------------------------------

def worklist(session: Session, principal: Principal, *, team_id: str | None = None, doctor_id: str | None = None,
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
    rows, more = repo.worklist_rows(session, team_id=team_id, doctor_id=doctor_id, organization_id=organization_id,
                                    due_by=day if only == "overdue" else due_by, lost_before=lost_before,
                                    only=None if only == "due" else only, limit=limit, offset=offset)
    counts = repo.worklist_counts(session, team_id=team_id, doctor_id=doctor_id, organization_id=organization_id,
                                  today=day, due_by=due_by, lost_before=lost_before)
    alerts = repo.alert_counts(session, [r.person_id for r in rows])
    items = []
    for r in rows:
        items.append({
            "registry_id": r.id, "person_id": r.person_id,
            "name": mask_name(r.name) if masked else r.name,
            "id_number": mask_id_number(r.id_number), "phone": mask_phone(r.phone),
            "age": rules.age_on(r.birth_date, day), "programme": r.programme,
            "last_visit": _iso(r.last_visit_date), "next_due": _iso(r.next_due_date),
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
           for a, person in repo.alert_patients(session, team_id, organization_id)]
    if out:
        audit.record(session, principal, "search-type", person_ids=[o["person_id"] for o in out],
                     what=[f"Flag/{o['id']}" for o in out], query="alerts")
    return out


def acknowledge_alert(session: Session, principal: Principal, alert_id: str):
    from onetrip.family.models import Alert

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


# --- figures (R3.6, R5.3) ---------------------------------------------------------------------------

def compute_figures(session: Session, principal: Principal, *, year: int | None = None, level: str = "institution",
                    organization_id: str | None = None, on: dt.date | None = None) -> dict[str, Any]:
    """签约率 (overall and per key group), and per programme 管理率, 规范管理率, 控制率 for the calendar
    ``year`` (to ``on`` if the year is running), per institution, team or doctor, plus the total."""
    if level not in repo.GROUP_COLUMNS:
        raise BadRequest("level 须为 institution / team / doctor", expression=["level"])
    if organization_id:
        if not (principal.is_operator or principal.organization_id == organization_id
                or "bureau_manager" in principal.roles):
            raise Forbidden("只能查看本机构的指标 / only your own institution's figures")
    elif not (principal.is_operator or "bureau_manager" in principal.roles):
        organization_id = principal.organization_id
    now = on or today()
    year = year or now.year
    start = dt.date(year, 1, 1)
    end = min(dt.date(year, 12, 31), now) if year == now.year else dt.date(year, 12, 31)
    if start > now:
        raise BadRequest("年份不能在将来 / the year is in the future", expression=["year"])
    p = params(session, end)
    out: dict[str, Any] = {"year": year, "start": start.isoformat(), "end": end.isoformat(), "level": level,
                           "organization_id": organization_id, "programmes": {}, "contracts": {}}
    adults = repo.adults(session, end, p.prevalence_min_age, organization_id)
    adults_at = repo.adults_by_organization(session, end, p.prevalence_min_age) if level == "institution" else {}
    for programme in rules.PROGRAMMES:
        groups = repo.programme_counts(session, programme, start, end, level, p.standard_followups, organization_id)
        total = fig.ProgrammeCounts(*(sum(c[i] for c in groups.values()) for i in range(3)))
        estimated = fig.estimated_patients(adults, programme, p)
        by = {}
        for key, c in sorted(groups.items(), key=lambda kv: str(kv[0])):
            est = fig.estimated_patients(adults_at.get(key, 0), programme, p) if level == "institution" and key \
                else None
            by[str(key)] = fig.programme_figures(fig.ProgrammeCounts(*c), est)
        out["programmes"][programme] = {"total": fig.programme_figures(total, estimated), "by": by}
    out["contracts"] = contract_figures(session, end, level, organization_id, p)
    return out


def contract_figures(session: Session, on: dt.date, level: str, organization_id: str | None,
                     p: rules.Params) -> dict[str, Any]:
    rows = repo.contracted(session, on, level, organization_id)
    registered = {g: repo.registered(session, g, on, organization_id) for g in rules.PROGRAMMES}
    persons: dict[str, set[str]] = {}
    by_key: dict[str, set[str]] = defaultdict(set)
    for key, person_id, declared, birth, sex in rows:
        by_key[str(key)].add(person_id)
        programmes = [g for g in rules.PROGRAMMES if person_id in registered[g]]
        persons[person_id] = set(rules.key_groups(birth, on, programmes, declared or [], p, sex=sex))
    group_members: dict[str, set[str]] = defaultdict(set)
    for pid, groups in persons.items():
        for g in groups:
            group_members[g].add(pid)
    populations: dict[str, int | None] = {
        rules.ELDERLY: repo.population(session, on, organization_id, min_age=p.key_elderly_age),
        rules.CHILDREN: repo.population(session, on, organization_id, max_age=p.key_child_max_age),
        rules.HYPERTENSION: len(registered[rules.HYPERTENSION]),
        rules.DIABETES: len(registered[rules.DIABETES]),
    }
    by_group = {g: (len(group_members.get(g, ())), populations.get(g)) for g in rules.KEY_GROUPS}
    total = fig.contract_figures(len(persons), repo.population(session, on, organization_id), by_group)
    total["by"] = {k: {"contracted": len(v)} for k, v in sorted(by_key.items())}
    return total
