"""Programmes (issue 20 point 6): the free influenza campaign for elderly residents and HPV2 for girls at 13.

A programme lists its eligible residents from the person index (registered at its institution, optionally one
township), invites them through notifications (once per programme and person), and follows the doses given at
the desk: an open invitation is a due dose there, and the dose marks the invitation vaccinated. Coverage =
vaccinated / eligible. Services flush, never commit; every change writes its audit and outbox events.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from onetrip.audit import service as audit
from onetrip.identity import service as identity
from onetrip.immunization import repository as repo
from onetrip.immunization import rules, service
from onetrip.immunization.codes import VACCINES
from onetrip.immunization.forecast import add_months
from onetrip.immunization.models import Invitation, Programme
from onetrip.immunization.schedule import RULE_SET
from onetrip.immunization.schemas import ProgrammeIn
from onetrip.kit import clock
from onetrip.kit.errors import BadRequest, Conflict, NotFound
from onetrip.kit.identifiers import SEX_FEMALE, SEX_MALE, SEX_TO_FHIR
from onetrip.kit.masking import mask_id_number, mask_name, mask_phone
from onetrip.kit.principal import Principal
from onetrip.notify import interface as notify
from onetrip.outbox.service import record_event
from onetrip.rules.service import rule_values

SEX_CODE = {"female": SEX_FEMALE, "male": SEX_MALE}
ADULT_YEARS = 18  # a phone registered for a minor is the guardian's (the person index has no guardian link)
_SLACK = dt.timedelta(days=3)  # the SQL pre-filter is wider than the rule (29 February birthdays)


def _rule(session: Session, key: str, day: dt.date) -> dict[str, Any]:
    value = rule_values(session, RULE_SET, on=day).get(key)
    return value if isinstance(value, dict) else {}


def create(session: Session, principal: Principal, data: ProgrammeIn) -> Programme:
    """A programme of the caller's institution; what is not given comes from the rule values influenza_campaign
    (a campaign) or hpv2_cohort (a cohort)."""
    org = service._existing_clinic(session, principal, data.organization_id)
    if data.end_date < data.start_date:
        raise BadRequest("结束日期不能早于开始日期 / end_date must not be before start_date", expression=["end_date"])
    defaults = _rule(session, "influenza_campaign" if data.kind == "campaign" else "hpv2_cohort", data.start_date)
    vaccine = data.vaccine_code or defaults.get("vaccine_code")
    if vaccine not in VACCINES:
        raise BadRequest("请给出疫苗代码 / give vaccine_code", expression=["vaccine_code"])
    min_age = data.min_age_years if data.min_age_years is not None else \
        defaults.get("min_age_years" if data.kind == "campaign" else "age_years")
    if data.kind == "cohort" and min_age is None:
        raise BadRequest("队列须给出年龄 / a cohort needs min_age_years (the age reached)",
                         expression=["min_age_years"])
    if data.max_age_years is not None and min_age is not None and data.max_age_years < int(min_age):
        raise BadRequest("最大年龄小于最小年龄 / max_age_years is below min_age_years", expression=["max_age_years"])
    if repo.programme_by_code(session, data.code):
        raise Conflict(f"项目代码 {data.code} 已存在 / a programme with code {data.code!r} exists")
    sex = data.sex or (defaults.get("sex") if data.kind == "cohort" else None)
    p = Programme(code=data.code, name_zh=data.name_zh, name_en=data.name_en, vaccine_code=vaccine, kind=data.kind,
                  min_age_years=None if min_age is None else int(min_age), max_age_years=data.max_age_years,
                  reference_date=data.reference_date or data.start_date, sex=sex, organization_id=org,
                  township=(data.township or "").strip() or None, start_date=data.start_date,
                  end_date=data.end_date, free=bool(defaults.get("free", True)) if data.free is None else data.free,
                  status="active", created_by=principal.id)
    session.add(p)
    session.flush()
    audit.record(session, principal, "create", what=[f"Group/imm-programme-{p.id}"],
                 detail={"code": p.code, "vaccine": p.vaccine_code, "kind": p.kind})
    record_event(session, "immunization.programme.created", "Group", p.id,
                 {"code": p.code, "vaccine_code": p.vaccine_code, "kind": p.kind, "organization_id": org,
                  "start_date": p.start_date.isoformat(), "end_date": p.end_date.isoformat()})
    return p


def get(session: Session, principal: Principal, programme_id: str) -> Programme:
    p = session.get(Programme, programme_id)
    if p is None:
        raise NotFound("项目不存在 / programme not found")
    service._clinic(principal, p.organization_id)
    return p


def listing(session: Session, principal: Principal) -> list[Programme]:
    return repo.programmes(session, service._clinic_or_all(principal, None))


@dataclass(frozen=True)
class Eligible:
    person_id: str
    record_id: str | None
    name: str
    id_number: str | None
    phone: str | None
    birth_date: dt.date
    sex: str  # FHIR gender
    age: int
    township: str | None

    @property
    def contact(self) -> str:
        """own | guardian | none: a minor's registered phone is the guardian's."""
        if not self.phone:
            return "none"
        return "guardian" if self.age < ADULT_YEARS else "own"


def _age(birth: dt.date, on: dt.date) -> int:
    years = on.year - birth.year
    return years if rules.age_reached(birth, years) <= on else years - 1


def _bounds(p: Programme) -> tuple[dt.date | None, dt.date | None]:
    """Birth dates the SQL pre-filter keeps (a little wider than the rule; the pure function decides)."""
    if p.kind == "cohort":
        age = p.min_age_years or 0
        return (add_months(p.start_date, -12 * age) - _SLACK, add_months(p.end_date, -12 * age) + _SLACK)
    low = None if p.max_age_years is None else add_months(p.reference_date, -12 * (p.max_age_years + 1)) - _SLACK
    high = None if p.min_age_years is None else add_months(p.reference_date, -12 * p.min_age_years) + _SLACK
    return low, high


def eligible(session: Session, p: Programme) -> list[Eligible]:
    """The programme's eligible residents: registered (an active record) at its institution, alive, not merged
    away, in its township if it has one, of its sex, and of its age (rules.campaign_eligible / cohort_eligible)."""
    low, high = _bounds(p)
    out: dict[str, Eligible] = {}
    for pid, name, idn, phone, birth, sex, street, rec_id, rec_phone in identity.registered_residents(
            session, p.organization_id, born_from=low, born_to=high, sex=SEX_CODE[p.sex] if p.sex else None,
            township=p.township):
        gender = SEX_TO_FHIR.get(sex, "unknown")
        if p.kind == "cohort":
            ok = rules.cohort_eligible(birth, gender, p.start_date, p.end_date, p.min_age_years or 0, p.sex)
            age = p.min_age_years or 0
        else:
            ok = rules.campaign_eligible(birth, gender, p.reference_date, p.min_age_years, p.max_age_years, p.sex)
            age = _age(birth, p.reference_date)
        if ok:
            out[pid] = Eligible(pid, rec_id, name, idn, phone or rec_phone, birth, gender, age, street)
    return list(out.values())


@dataclass(frozen=True)
class EligibleRow:
    person: Eligible
    invitation: Invitation | None
    forecast: Any = None  # SeriesForecast of the programme's vaccine (cohort programmes of a scheduled vaccine)

    def out(self) -> dict[str, Any]:
        e, f = self.person, self.forecast
        return {"person_id": e.person_id, "patient_id": e.record_id, "name": mask_name(e.name),
                "id_number": mask_id_number(e.id_number), "phone": mask_phone(e.phone), "birth_date": e.birth_date,
                "age": e.age, "township": e.township, "invitation": self.invitation.status if self.invitation else None,
                "forecast_dose": f.dose if f else None, "forecast_status": f.status if f else None,
                "forecast_earliest": f.earliest if f else None}


def eligible_list(session: Session, principal: Principal, programme_id: str, today: dt.date | None = None
                  ) -> tuple[Programme, list[EligibleRow]]:
    """The eligible list with each person's invitation and, for a cohort of a scheduled vaccine (HPV2), the
    forecaster's next dose and status on ``today`` (dose 2 ≥ 6 months after dose 1). Audited as one search."""
    p = get(session, principal, programme_id)
    today = today or clock.local_date(clock.utcnow())
    people = eligible(session, p)
    invited = repo.invitations(session, p.id)
    rows = []
    for e in people:
        f = None
        if p.kind == "cohort":
            child = service.Child(e.birth_date, e.sex)
            f = next((x for x in service.forecast_child(session, child, today, service.history(session, e.person_id))
                      if x.vaccine == p.vaccine_code), None)
        rows.append(EligibleRow(e, invited.get(e.person_id), f))
    if rows:
        audit.record(session, principal, "search", person_ids=[e.person_id for e in people],
                     what=[f"Group/imm-programme-{p.id}"] * len(people))
    return p, rows


def invite(session: Session, principal: Principal, programme_id: str, now: dt.datetime | None = None
           ) -> dict[str, int]:
    """Invite every eligible resident not invited yet, through notifications (one message per programme and
    person: running it again sends nothing twice). No phone: the invitation is kept without a message and sent
    when a later run finds a phone. Earlier invitations of people no longer eligible become ``ineligible``."""
    now = now or clock.utcnow()
    p = get(session, principal, programme_id)
    if p.status != "active":
        raise Conflict("项目已结束 / the programme is closed")
    people = eligible(session, p)
    invited = repo.invitations(session, p.id)
    counts = {"sent": 0, "already": 0, "no_contact": 0, "ineligible": 0}
    touched: list[tuple[str, str]] = []
    for e in people:
        inv = invited.get(e.person_id)
        if inv is not None and (inv.notification_ref or inv.status != "invited"):
            counts["already"] += 1
            continue
        if inv is None:
            inv = Invitation(programme_id=p.id, person_id=e.person_id, patient_record_id=e.record_id,
                             status="invited", invited_at=now, contact=e.contact)
            session.add(inv)
            session.flush()
            touched.append((e.person_id, inv.id))
        if e.contact == "none":
            counts["no_contact"] += 1
            continue
        inv.contact, inv.invited_at = e.contact, now
        inv.notification_ref = notify.message_resident(
            session, "immunization.invitation", "CommunicationRequest", inv.id,
            {"programme": p.code, "vaccine_code": p.vaccine_code, "free": p.free, "contact": e.contact,
             "start_date": p.start_date.isoformat(), "end_date": p.end_date.isoformat(),
             "organization_id": p.organization_id}, person_id=e.person_id)
        counts["sent"] += 1
        if (e.person_id, inv.id) not in touched:
            touched.append((e.person_id, inv.id))
    current = {e.person_id for e in people}
    for person_id, inv in invited.items():
        if person_id not in current and inv.status == "invited":
            inv.status = "ineligible"
            counts["ineligible"] += 1
            touched.append((person_id, inv.id))
    session.flush()
    if touched:
        audit.record(session, principal, "create", person_ids=[t[0] for t in touched],
                     what=[f"CommunicationRequest/{t[1]}" for t in touched], detail={"programme": p.code})
    record_event(session, "immunization.programme.invited", "Group", p.id, {"code": p.code, **counts})
    return counts


def coverage(session: Session, p: Programme) -> dict[str, Any]:
    """Eligible, invited, notified, vaccinated (and declined, no contact); percent = vaccinated / eligible."""
    n = repo.invitation_counts(session, p.id)
    eligible_n = len(eligible(session, p))
    invited = sum(v for k, v in n.items() if k in ("invited", "vaccinated", "declined"))
    vaccinated = n.get("vaccinated", 0)
    no_contact = session.scalar(select(func.count(Invitation.id)).where(
        Invitation.programme_id == p.id, Invitation.status == "invited", Invitation.notification_ref.is_(None))) or 0
    return {"eligible": eligible_n, "invited": invited, "notified": n.get("notified", 0), "no_contact": no_contact,
            "vaccinated": vaccinated, "declined": n.get("declined", 0),
            "percent": round(100 * vaccinated / eligible_n, 1) if eligible_n else None}


def decline(session: Session, principal: Principal, invitation_id: str) -> Invitation:
    """The resident (or guardian) declines: the invitation stays, no longer a due dose at the desk."""
    inv = session.get(Invitation, invitation_id)
    if inv is None:
        raise NotFound("邀请不存在 / invitation not found")
    get(session, principal, inv.programme_id)
    if inv.status != "invited":
        raise Conflict(f"邀请状态为 {inv.status}，不能拒绝 / the invitation is {inv.status}")
    inv.status = "declined"
    session.flush()
    audit.record(session, principal, "update", person_ids=[inv.person_id], what=[f"CommunicationRequest/{inv.id}"],
                 detail={"status": "declined"})
    record_event(session, "immunization.invitation.declined", "CommunicationRequest", inv.id,
                 {"programme_id": inv.programme_id}, person_id=inv.person_id)
    return inv
