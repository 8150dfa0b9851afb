"""两癌 screening (issue 21 point 5): the free cervical and breast cancer screening of women 35–64.

A campaign lists its eligible women from the person index (registered at its institution, optionally one
township, female, of its age on the reference date — rules.screening_eligible), invites them through
notifications (once per campaign and woman), records the cervical and breast results, and follows each positive
to diagnosis and treatment against the deadlines of the rule value positive_followup_days. 两癌筛查率 = screened ÷
eligible. Services flush, never commit; every change writes its audit and outbox events.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from onetrip.audit import service as audit
from onetrip.identity import service as identity
from onetrip.kit import clock
from onetrip.kit.errors import BadRequest, Conflict, Forbidden, NotFound
from onetrip.kit.identifiers import SEX_FEMALE, SEX_MALE, SEX_TO_FHIR
from onetrip.kit.masking import mask_id_number, mask_name, mask_phone
from onetrip.kit.principal import Principal
from onetrip.maternal_child import repository as repo
from onetrip.maternal_child import rules
from onetrip.maternal_child.models import Screening, ScreeningCampaign
from onetrip.maternal_child.schemas import ScreeningCampaignIn, ScreeningFollowupIn, ScreeningResultIn
from onetrip.notify import interface as notify
from onetrip.outbox.service import record_event
from onetrip.persons.models import Person
from onetrip.registry.models import Organization
from onetrip.rules.service import rule_values

RULE_SET = "maternal_child"
SEX_CODE = {"female": SEX_FEMALE, "male": SEX_MALE}
WORKLISTS = ("positives-overdue", "positives-open")
_SLACK = dt.timedelta(days=3)  # the SQL pre-filter is wider than the rule (29 February birthdays)


def _rule(session: Session, key: str, day: dt.date) -> dict[str, Any]:
    value = rule_values(session, RULE_SET, on=day).get(key)
    return value if isinstance(value, dict) else {}


def local_today() -> dt.date:
    return clock.local_date(clock.utcnow())


def _org(principal: Principal, organization_id: str | None = None) -> str:
    org = organization_id or principal.organization_id
    if not org:
        raise Forbidden("该账号不属于任何机构：请指定 organization_id / this account belongs to no institution: give "
                        "organization_id")
    if not principal.is_operator and org != principal.organization_id:
        raise Forbidden("只能操作本机构的两癌筛查 / you may only work with your own institution's screening")
    return org


def _what(c: ScreeningCampaign) -> str:
    return f"Group/mch-screening-campaign-{c.id}"


def _row_what(s: Screening) -> str:
    return f"Observation/mch-screening-{s.id}"


def create(session: Session, principal: Principal, data: ScreeningCampaignIn) -> ScreeningCampaign:
    """A campaign of the caller's institution; ages and sex not given come from the rule value
    two_cancers_campaign (35–64, female)."""
    org = _org(principal, data.organization_id)
    if session.get(Organization, org) is None:
        raise NotFound(f"机构不存在：{org[:40]} / no organization {org[:40]!r}")
    if data.end_date < data.start_date:
        raise BadRequest("结束日期不能早于开始日期 / end_date must not be before start_date", expression=["end_date"])
    defaults = _rule(session, "two_cancers_campaign", data.start_date)
    min_age = data.min_age if data.min_age is not None else defaults.get("min_age")
    max_age = data.max_age if data.max_age is not None else defaults.get("max_age")
    if min_age is None or max_age is None:
        raise BadRequest("请给出年龄范围 / give min_age and max_age", expression=["min_age"])
    interval = data.interval_years if data.interval_years is not None else defaults.get("interval_years")
    if int(max_age) < int(min_age):
        raise BadRequest("最大年龄小于最小年龄 / max_age is below min_age", expression=["max_age"])
    if repo.screening_campaign_by_code(session, data.code):
        raise Conflict(f"筛查项目代码 {data.code} 已存在 / a campaign with code {data.code!r} exists",
                       expression=["code"])
    c = ScreeningCampaign(code=data.code, name=data.name, organization_id=org,
                          township=(data.township or "").strip() or None, start_date=data.start_date,
                          end_date=data.end_date, reference_date=data.reference_date or data.start_date,
                          min_age=int(min_age), max_age=int(max_age), sex=str(defaults.get("sex") or "female"),
                          interval_years=int(interval) if interval is not None else None, status="active",
                          created_by=principal.id)
    session.add(c)
    session.flush()
    audit.record(session, principal, "create", what=[_what(c)], detail={"code": c.code})
    record_event(session, "maternal_child.screening.campaign_created", "Group", c.id,
                 {"code": c.code, "organization_id": org, "min_age": c.min_age, "max_age": c.max_age,
                  "start_date": c.start_date.isoformat(), "end_date": c.end_date.isoformat()})
    return c


def get(session: Session, principal: Principal, campaign_id: str) -> ScreeningCampaign:
    c = session.get(ScreeningCampaign, campaign_id)
    if c is None:
        raise NotFound("筛查项目不存在 / campaign not found")
    _org(principal, c.organization_id)
    return c


def listing(session: Session, principal: Principal) -> list[ScreeningCampaign]:
    """The institution's campaigns (the operator without an institution: everyone's)."""
    if principal.is_operator and not principal.organization_id:
        return repo.screening_campaigns(session, None)
    return repo.screening_campaigns(session, _org(principal))


@dataclass(frozen=True)
class Eligible:
    person_id: str
    record_id: str | None
    name: str
    id_number: str | None
    phone: str | None
    birth_date: dt.date
    age: int
    township: str | None


def _add_years(day: dt.date, years: int) -> dt.date:
    return rules.screening_years_reached(day, years)


def _last_screened(session: Session, c: ScreeningCampaign, person_id: str | None) -> dict[str, dt.date]:
    """Each woman's latest screening result day in the institution's other campaigns (before the reference date),
    for the re-screening interval."""
    if not c.interval_years:
        return {}
    q = (select(Screening.person_id, Screening.cervical_date, Screening.breast_date)
         .join(ScreeningCampaign, ScreeningCampaign.id == Screening.campaign_id)
         .where(ScreeningCampaign.organization_id == c.organization_id, Screening.campaign_id != c.id,
                Screening.status == "screened"))
    if person_id is not None:
        q = q.where(Screening.person_id == person_id)
    out: dict[str, dt.date] = {}
    for pid, cervical, breast in session.execute(q):
        days = [d for d in (cervical, breast) if d is not None and d <= c.reference_date]
        if days and (pid not in out or max(days) > out[pid]):
            out[pid] = max(days)
    return out


def eligible(session: Session, c: ScreeningCampaign, person_id: str | None = None) -> list[Eligible]:
    """The campaign's eligible women: registered (an active record) at its institution, alive, not merged away,
    in its township if it has one, of its sex and age on the reference date (rules.screening_eligible), and not
    screened in another campaign within the interval (rules.screening_due_again)."""
    low = _add_years(c.reference_date, -(c.max_age + 1)) - _SLACK
    high = _add_years(c.reference_date, -c.min_age) + _SLACK
    out: dict[str, Eligible] = {}
    last = _last_screened(session, c, person_id)
    for pid, name, idn, phone, birth, sex, street, rec_id, rec_phone in identity.registered_residents(
            session, c.organization_id, born_from=low, born_to=high, sex=SEX_CODE.get(c.sex, SEX_FEMALE),
            township=c.township, person_id=person_id):
        if not rules.screening_due_again(last.get(pid), c.reference_date, c.interval_years):
            continue
        if rules.screening_eligible(birth, SEX_TO_FHIR.get(sex, "unknown"), c.reference_date, c.min_age,
                                    c.max_age, c.sex):
            out[pid] = Eligible(pid, rec_id, name, idn, phone or rec_phone, birth,
                                rules.screening_age(birth, c.reference_date), street)
    return list(out.values())


def eligible_list(session: Session, principal: Principal, campaign_id: str, offset: int = 0,
                  limit: int | None = None) -> tuple[ScreeningCampaign, list[dict[str, Any]], int]:
    """The eligible women (masked) with their screening row's status — the slice ``offset``..``offset+limit``
    (all without a limit) — and how many are eligible. Audited as one search of the women listed."""
    c = get(session, principal, campaign_id)
    people = eligible(session, c)
    total = len(people)
    people = people[offset:offset + limit] if limit is not None else people[offset:]
    rows = repo.screenings(session, c.id)
    out = []
    for e in people:
        s = rows.get(e.person_id)
        out.append({"person_id": e.person_id, "patient_id": e.record_id, "name": mask_name(e.name),
                    "id_number": mask_id_number(e.id_number), "phone": mask_phone(e.phone),
                    "birth_date": e.birth_date, "age": e.age, "township": e.township,
                    "screening_id": s.id if s else None, "status": s.status if s else None})
    if people:
        audit.record(session, principal, "search", person_ids=[e.person_id for e in people],
                     what=[_what(c)] * len(people))
    return c, out, total


def invite(session: Session, principal: Principal, campaign_id: str, now: dt.datetime | None = None
           ) -> dict[str, int]:
    """Invite every eligible woman not invited yet through notifications (one message per campaign and woman:
    running it again sends nothing twice). No phone: the row is kept as ``eligible`` without a message and
    sent when a later run finds a phone."""
    now = now or clock.utcnow()
    c = get(session, principal, campaign_id)
    if c.status != "active":
        raise Conflict("筛查项目已结束 / the campaign is closed")
    people = eligible(session, c)
    rows = repo.screenings(session, c.id)
    counts = {"sent": 0, "already": 0, "no_contact": 0}
    touched: list[tuple[str, str]] = []
    for e in people:
        s = rows.get(e.person_id)
        if s is not None and (s.notification_ref or s.status != "eligible"):
            counts["already"] += 1
            continue
        if s is None:
            s = Screening(campaign_id=c.id, person_id=e.person_id, patient_record_id=e.record_id, status="eligible",
                          followup_status="none", positive=False)
            session.add(s)
            session.flush()
        if not e.phone:
            s.contact = "none"
            counts["no_contact"] += 1
            touched.append((e.person_id, s.id))
            continue
        s.status, s.contact, s.invited_at = "invited", "own", now
        s.notification_ref = notify.message_resident(
            session, "maternal_child.screening.invitation", "CommunicationRequest", s.id,
            {"campaign": c.code, "name": c.name, "free": True, "start_date": c.start_date.isoformat(),
             "end_date": c.end_date.isoformat(), "organization_id": c.organization_id}, person_id=e.person_id)
        counts["sent"] += 1
        touched.append((e.person_id, s.id))
    session.flush()
    if touched:
        audit.record(session, principal, "create", person_ids=[t[0] for t in touched],
                     what=[f"CommunicationRequest/{t[1]}" for t in touched], detail={"campaign": c.code})
    record_event(session, "maternal_child.screening.invited", "Group", c.id, {"code": c.code, **counts})
    return counts


def _past_check(day: dt.date, today: dt.date, key: str, not_before: dt.date | None = None) -> None:
    if day > today:
        raise BadRequest(f"{key} 不能晚于今天 / {key} must not be in the future", expression=[key])
    if not_before is not None and day < not_before:
        raise BadRequest(f"{key} 不能早于筛查开始日期 {not_before} / {key} must not be before the campaign's start "
                         f"{not_before}", expression=[key])


def _apply_deadlines(session: Session, s: Screening) -> None:
    """Positive or not from the parts; the deadlines from the first positive part's day."""
    s.positive = rules.screening_positive(s.cervical_result, s.breast_result, s.breast_birads)
    if not s.positive:
        s.positive_on = s.diagnosis_deadline = s.treatment_deadline = None
        return
    days = [d for d, pos in ((s.cervical_date, s.cervical_result == "positive"),
                             (s.breast_date, rules.screening_breast_positive(s.breast_result, s.breast_birads)))
            if pos and d is not None]
    s.positive_on = min(days)
    limits = _rule(session, "positive_followup_days", s.positive_on)
    s.diagnosis_deadline, s.treatment_deadline = rules.screening_deadlines(
        s.positive_on, int(limits.get("diagnosis", 30)), int(limits.get("treatment", 90)))


def state(s: Screening, on: dt.date) -> str:
    """The row's follow-up state on the day ``on``."""
    return rules.screening_followup_state(
        s.positive, diagnosis_deadline=s.diagnosis_deadline, treatment_deadline=s.treatment_deadline,
        diagnosis_date=s.diagnosis_date, diagnosis_result=s.diagnosis_result, treatment_date=s.treatment_date,
        lost=s.followup_status == "lost", on=on)


def record_result(session: Session, principal: Principal, campaign_id: str, data: ScreeningResultIn,
                  today: dt.date | None = None) -> Screening:
    """Record (or correct) a woman's cervical and/or breast result; a part not given keeps its earlier value.
    Positive (cervical positive, breast positive or BI-RADS ≥ 4) opens the follow-up with its deadlines."""
    today = today or local_today()
    c = get(session, principal, campaign_id)
    breast = rules.screening_breast_result(data.breast_result, data.breast_birads)
    if not data.cervical_result and not breast:
        raise BadRequest("请至少填写宫颈或乳腺一项结果 / give the cervical or the breast result", expression=["cervical_result"])
    if data.breast_result == "negative" and data.breast_birads is not None and data.breast_birads >= 4:
        raise BadRequest("BI-RADS 4–5 不能为阴性 / BI-RADS 4–5 cannot be negative", expression=["breast_birads"])
    people = eligible(session, c, data.person_id)
    rows = repo.screenings(session, c.id)
    s = rows.get(data.person_id)
    if not people and s is None:
        raise Conflict("该居民不在本次筛查范围内 / this person is not eligible for the campaign",
                       expression=["person_id"])
    cervical_date = data.cervical_date or today
    breast_date = data.breast_date or today
    if data.cervical_result:
        _past_check(cervical_date, today, "cervical_date", c.start_date)
    if breast:
        _past_check(breast_date, today, "breast_date", c.start_date)
    created = s is None
    if s is None:
        s = Screening(campaign_id=c.id, person_id=data.person_id, patient_record_id=people[0].record_id,
                      status="eligible", followup_status="none", positive=False)
        session.add(s)
    if data.cervical_result:
        s.cervical_method, s.cervical_result, s.cervical_date = data.cervical_method, data.cervical_result, \
            cervical_date
    if breast:
        s.breast_method, s.breast_result, s.breast_birads, s.breast_date = data.breast_method, breast, \
            data.breast_birads, breast_date
    s.status, s.recorded_by = "screened", principal.id
    _apply_deadlines(session, s)
    if s.followup_status != "lost":
        s.followup_status = state(s, today)
    session.flush()
    audit.record(session, principal, "create" if created else "update", person_ids=[s.person_id],
                 what=[_row_what(s)], detail={"campaign": c.code, "positive": s.positive})
    record_event(session, "maternal_child.screening.result_recorded", "Observation", s.id,
                 {"campaign_id": c.id, "cervical_result": s.cervical_result, "breast_result": s.breast_result,
                  "breast_birads": s.breast_birads, "positive": s.positive,
                  "diagnosis_deadline": s.diagnosis_deadline.isoformat() if s.diagnosis_deadline else None},
                 person_id=s.person_id)
    return s


def _row(session: Session, principal: Principal, screening_id: str) -> tuple[ScreeningCampaign, Screening]:
    s = session.get(Screening, screening_id)
    if s is None:
        raise NotFound("筛查记录不存在 / screening not found")
    return get(session, principal, s.campaign_id), s


def decline(session: Session, principal: Principal, screening_id: str) -> Screening:
    """The woman declines the screening (before any result)."""
    _, s = _row(session, principal, screening_id)
    if s.status not in ("eligible", "invited"):
        raise Conflict(f"筛查状态为 {s.status}，不能拒绝 / the screening is {s.status}")
    s.status = "declined"
    session.flush()
    audit.record(session, principal, "update", person_ids=[s.person_id], what=[_row_what(s)],
                 detail={"status": "declined"})
    record_event(session, "maternal_child.screening.declined", "Observation", s.id,
                 {"campaign_id": s.campaign_id}, person_id=s.person_id)
    return s


def followup(session: Session, principal: Principal, screening_id: str, data: ScreeningFollowupIn,
             today: dt.date | None = None) -> Screening:
    """A positive's follow-up: diagnosis (date and result together), treatment (after a diagnosis needing it),
    or lost to follow-up. Dates: not before the positive result, not in the future."""
    today = today or local_today()
    c, s = _row(session, principal, screening_id)
    if not s.positive:
        raise Conflict("该筛查结果非阳性，无需随访 / the screening is not positive: no follow-up",
                       expression=["diagnosis_date"])
    if (data.diagnosis_date is None) != (data.diagnosis_result is None):
        raise BadRequest("诊断日期和诊断结果须一并填写 / give diagnosis_date and diagnosis_result together",
                         expression=["diagnosis_date" if data.diagnosis_date is None else "diagnosis_result"])
    for key in ("diagnosis_date", "treatment_date"):
        day = getattr(data, key)
        if day is None:
            continue
        _past_check(day, today, key)
        if s.positive_on and day < s.positive_on:
            raise BadRequest(f"{key} 不能早于阳性结果日期 / {key} must not be before the positive result",
                             expression=[key])
    if data.diagnosis_date is None and data.treatment_date is None and not data.lost:
        raise BadRequest("请填写诊断、治疗或失访 / give the diagnosis, the treatment or lost", expression=["diagnosis_date"])
    if data.diagnosis_date is not None:
        s.diagnosis_date, s.diagnosis_result = data.diagnosis_date, data.diagnosis_result
    if data.treatment_date is not None:
        if s.diagnosis_date is None:
            raise BadRequest("请先记录诊断 / record the diagnosis first", expression=["treatment_date"])
        if s.diagnosis_result == "benign":
            raise Conflict("良性诊断无需治疗 / a benign diagnosis needs no treatment", expression=["treatment_date"])
        if data.treatment_date < s.diagnosis_date:
            raise BadRequest("治疗日期不能早于诊断日期 / treatment_date must not be before the diagnosis",
                             expression=["treatment_date"])
        s.treatment_date = data.treatment_date
    if data.note:
        s.followup_note = data.note
    if data.lost:
        s.followup_status = "lost"
    else:  # a diagnosis or treatment recorded: the follow-up goes on (also for a woman found again)
        s.followup_status = rules.screening_followup_state(
            True, diagnosis_deadline=s.diagnosis_deadline, treatment_deadline=s.treatment_deadline,
            diagnosis_date=s.diagnosis_date, diagnosis_result=s.diagnosis_result, treatment_date=s.treatment_date,
            lost=False, on=today)
    session.flush()
    audit.record(session, principal, "update", person_ids=[s.person_id], what=[_row_what(s)],
                 detail={"campaign": c.code, "followup_status": s.followup_status})
    record_event(session, "maternal_child.screening.followup_updated", "Observation", s.id,
                 {"campaign_id": c.id, "followup_status": s.followup_status,
                  "diagnosis_result": s.diagnosis_result,
                  "diagnosis_date": s.diagnosis_date.isoformat() if s.diagnosis_date else None,
                  "treatment_date": s.treatment_date.isoformat() if s.treatment_date else None},
                 person_id=s.person_id)
    return s


def figures(session: Session, c: ScreeningCampaign, today: dt.date | None = None) -> dict[str, Any]:
    """Eligible, invited, no contact, screened, declined, 两癌筛查率 (screened ÷ eligible), positives, positives
    diagnosed within the deadline, overdue today."""
    today = today or local_today()
    eligible_n = len(eligible(session, c))
    rows = list(repo.screenings(session, c.id).values())
    screened = sum(1 for s in rows if s.status == "screened")
    positives = [s for s in rows if s.positive]
    in_time = sum(1 for s in positives if rules.screening_diagnosed_in_time(s.diagnosis_date, s.diagnosis_deadline))
    return {"eligible": eligible_n, "invited": sum(1 for s in rows if s.notification_ref),
            "no_contact": sum(1 for s in rows if s.status == "eligible" and not s.notification_ref),
            "screened": screened, "declined": sum(1 for s in rows if s.status == "declined"),
            "rate": round(100 * screened / eligible_n, 1) if eligible_n else None,
            "positives": len(positives), "followed_in_time": in_time,
            "followed_percent": round(100 * in_time / len(positives), 1) if positives else None,
            "overdue": sum(1 for s in positives if state(s, today) == "overdue")}


def row_out(s: Screening, name: str | None, today: dt.date) -> dict[str, Any]:
    """A screening row for lists (the name masked; the follow-up state computed on ``today``)."""
    return {"id": s.id, "campaign_id": s.campaign_id, "person_id": s.person_id, "patient_id": s.patient_record_id,
            "name": mask_name(name), "status": s.status, "cervical_method": s.cervical_method,
            "cervical_result": s.cervical_result, "cervical_date": s.cervical_date, "breast_method": s.breast_method,
            "breast_result": s.breast_result, "breast_birads": s.breast_birads, "breast_date": s.breast_date,
            "positive": s.positive, "positive_on": s.positive_on, "diagnosis_deadline": s.diagnosis_deadline,
            "treatment_deadline": s.treatment_deadline, "diagnosis_date": s.diagnosis_date,
            "diagnosis_result": s.diagnosis_result, "treatment_date": s.treatment_date,
            "followup_status": state(s, today)}


def out(session: Session, s: Screening, today: dt.date | None = None) -> dict[str, Any]:
    """One row as the API returns it after a change (the name masked)."""
    return row_out(s, _names(session, [s.person_id]).get(s.person_id), today or local_today())


def _names(session: Session, person_ids: list[str]) -> dict[str, str]:
    if not person_ids:
        return {}
    return dict(session.execute(select(Person.id, Person.name).where(Person.id.in_(person_ids))).all())


def worklist(session: Session, principal: Principal, campaign_id: str, which: str, today: dt.date | None = None
             ) -> tuple[ScreeningCampaign, list[dict[str, Any]]]:
    """The campaign's positives on ``today``: ``positives-overdue`` (diagnosis or treatment past its deadline)
    or ``positives-open`` (every positive still to follow: open, overdue or diagnosed awaiting treatment).
    Audited as one search."""
    if which not in WORKLISTS:
        raise BadRequest(f"list 须为 {' | '.join(WORKLISTS)} / list must be one of {', '.join(WORKLISTS)}",
                         expression=["list"])
    today = today or local_today()
    c = get(session, principal, campaign_id)
    keep = ("overdue",) if which == "positives-overdue" else ("open", "overdue", "diagnosed")
    rows = []
    for s in repo.screening_positives(session, c.id):
        st = state(s, today)
        if st not in keep:
            continue
        if st == "diagnosed" and s.diagnosis_result == "benign":
            continue  # closed: nothing left to follow
        rows.append(s)
    names = _names(session, [s.person_id for s in rows])
    if rows:
        audit.record(session, principal, "search", person_ids=[s.person_id for s in rows],
                     what=[_row_what(s) for s in rows], detail={"list": which})
    return c, [row_out(s, names.get(s.person_id), today) for s in rows]


def screening_rows(session: Session, principal: Principal, campaign_id: str, today: dt.date | None = None
                   ) -> list[dict[str, Any]]:
    """Every row of the campaign with a result (masked names), for the campaign page. Audited."""
    today = today or local_today()
    c = get(session, principal, campaign_id)
    rows = [s for s in repo.screenings(session, c.id).values() if s.status == "screened"]
    rows.sort(key=lambda s: (s.cervical_date or s.breast_date or dt.date.min, s.id), reverse=True)
    names = _names(session, [s.person_id for s in rows])
    if rows:
        audit.record(session, principal, "search", person_ids=[s.person_id for s in rows],
                     what=[_row_what(s) for s in rows])
    return [row_out(s, names.get(s.person_id), today) for s in rows]


def totals(session: Session, organization_id: str | None = None, today: dt.date | None = None) -> dict[str, Any]:
    """The cockpit's 两癌 figures over every campaign (of one institution, or the whole district): the sums of
    each campaign's figures and the rates recomputed from the sums. No principal: the caller checks access."""
    today = today or local_today()
    keys = ("eligible", "invited", "no_contact", "screened", "declined", "positives", "followed_in_time", "overdue")
    out: dict[str, Any] = dict.fromkeys(keys, 0)
    campaigns = repo.screening_campaigns(session, organization_id)
    for c in campaigns:
        f = figures(session, c, today)
        for k in keys:
            out[k] += f[k]
    out["campaigns"] = len(campaigns)
    out["rate"] = round(100 * out["screened"] / out["eligible"], 1) if out["eligible"] else None
    out["followed_percent"] = round(100 * out["followed_in_time"] / out["positives"], 1) if out["positives"] else None
    return out
