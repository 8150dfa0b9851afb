"""Child health 0–6 (儿童健康管理, issue 21 point 2; RULES R11.3): the check plan per child with each check's
state, checks with their measurements and WHO growth z-scores and flags, the institution's overdue worklist.

Services flush, never commit (STYLE 2). A child's record is read through identity's audited read (the access
policy for another institution's patient); every check recorded writes its audit event and the outbox event
``maternal_child.child_check.recorded`` in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from onetrip.audit import service as audit
from onetrip.identity import service as identity
from onetrip.kit import clock
from onetrip.kit.errors import BadRequest, Forbidden
from onetrip.kit.identifiers import SEX_TO_FHIR
from onetrip.kit.masking import mask_name
from onetrip.kit.principal import Principal
from onetrip.maternal_child import growth, rules
from onetrip.maternal_child import repository as repo
from onetrip.maternal_child.models import ChildCheck
from onetrip.maternal_child.schemas import ChildCheckIn
from onetrip.outbox.service import record_event
from onetrip.persons.models import PatientRecord
from onetrip.rules.service import rule_values

RULE_SET = "maternal_child"
MAX_AGE_YEARS = 7  # the plan runs to the check at 6 years (R11.3); "7 岁以下儿童"
WORKLIST_LIMIT = 2000


@dataclass(frozen=True)
class ChildPlan:
    record: PatientRecord
    sex: str
    on: dt.date
    items: list[tuple[rules.ChildCheckWindow, str, dt.date | None]]


def _values(session: Session, on: dt.date) -> tuple[list[dict], list[dict], list[dict], dict]:
    v = rule_values(session, RULE_SET, on=on)
    checks, screenings = v.get("child_checks"), v.get("child_screenings")
    if not isinstance(checks, list) or not isinstance(screenings, list):
        raise BadRequest("规则值 maternal_child.child_checks / child_screenings 缺失 / the rule values "
                         "maternal_child.child_checks and child_screenings are missing: run `onetrip rules seed`")
    flags = v.get("growth_flags") if isinstance(v.get("growth_flags"), list) else []
    plausible = v.get("growth_plausible") if isinstance(v.get("growth_plausible"), dict) else {}
    return checks, screenings, flags, {k: tuple(x) for k, x in plausible.items()}


def _child(session: Session, principal: Principal, record_id: str, subtype: str = "read") -> PatientRecord:
    rec = identity.read(session, principal, record_id, subtype=subtype)
    if rec.birth_date is None:
        raise BadRequest("该患者没有出生日期 / the registered patient has no birth date", expression=["patient"])
    return rec


def _done(checks: list[ChildCheck]) -> list[tuple[str, dt.date, bool, bool]]:
    return [(c.check_key, c.check_date, c.hb_g_l is not None, c.hearing is not None) for c in checks]


def plan(session: Session, principal: Principal, record_id: str, on: dt.date | None = None,
         discharge: dt.date | None = None) -> ChildPlan:
    """The R11.3 plan of a registered child with each check's and screening's state on ``on`` (today)."""
    on = on or clock.local_date(clock.utcnow())
    rec = _child(session, principal, record_id)
    checks, screenings, _f, _p = _values(session, on)
    windows = rules.child_check_windows(rec.birth_date, checks, screenings, discharge)
    items = rules.child_check_states(windows, _done(repo.child_checks(session, rec.person_id)), on)
    return ChildPlan(rec, SEX_TO_FHIR.get(rec.sex, "unknown"), on, items)


def list_checks(session: Session, principal: Principal, record_id: str) -> tuple[PatientRecord, list[ChildCheck]]:
    rec = _child(session, principal, record_id, subtype="search-type")
    return rec, repo.child_checks(session, rec.person_id)


def record_check(session: Session, principal: Principal, record_id: str, data: ChildCheckIn,
                 today: dt.date | None = None) -> ChildCheck:
    """Record a check: the z-scores are computed from the child's sex and age on the check date; a value the
    WHO standards call implausible (|z| beyond the growth_plausible limits) is refused naming the field."""
    today = today or clock.local_date(clock.utcnow())
    org = principal.organization_id
    if not org:
        raise Forbidden("该账号不属于任何机构 / this account belongs to no institution")
    rec = _child(session, principal, record_id)
    checks, _s, flag_rules, plausible = _values(session, data.check_date)
    if data.check_key not in {c["key"] for c in checks}:
        raise BadRequest(f"未知的体检项目 {data.check_key[:16]} / unknown check_key {data.check_key[:16]!r}: one of "
                         + ", ".join(c["key"] for c in checks), expression=["check_key"])
    if data.check_date > today:
        raise BadRequest("体检日期不能晚于今天 / check_date is in the future", expression=["check_date"])
    age_days = (data.check_date - rec.birth_date).days
    if age_days < 0:
        raise BadRequest("体检日期早于出生日期 / check_date is before the date of birth", expression=["check_date"])
    if data.check_date >= rules.add_months_to(rec.birth_date, 12 * MAX_AGE_YEARS):
        raise BadRequest("儿童健康管理至 7 岁以下 / child checks are for children under 7", expression=["check_date"])
    if data.length_cm is not None and data.position is None:
        raise BadRequest("请给出测量方式：卧位身长或立位身高 / give position: recumbent (length) or standing (height)",
                         expression=["position"])
    sex = SEX_TO_FHIR.get(rec.sex, "unknown")
    measured = data.weight_kg is not None or data.length_cm is not None or data.head_cm is not None
    if measured and sex not in (growth.MALE, growth.FEMALE):
        raise BadRequest("WHO 生长标准需要性别男或女 / the WHO standards need the child's sex (male or female)",
                         expression=["patient"])
    result = growth.growth_zscores(sex, age_days, data.weight_kg, data.length_cm, data.position, data.head_cm) \
        if measured else growth.GrowthResult()
    bad = growth.implausible(result, plausible or None)
    if bad:
        field, z = bad[0]
        raise BadRequest(f"测量值不合理（{z} = {getattr(result, z)}，超出 WHO 合理范围）：请复核 {field} / implausible "
                         f"{field}: {z} = {getattr(result, z)} is outside the WHO plausible range — measure again",
                         expression=[field])
    z = result.as_dict()
    c = ChildCheck(person_id=rec.person_id, patient_record_id=rec.id, organization_id=org, check_key=data.check_key,
                   check_date=data.check_date, age_days=age_days, weight_kg=data.weight_kg, length_cm=data.length_cm,
                   position=data.position, head_cm=data.head_cm, hb_g_l=data.hb_g_l, hearing=data.hearing,
                   milestones=data.milestones, zscores=z, flags=growth.growth_flags(z, flag_rules),
                   recorded_by=principal.id)
    session.add(c)
    session.flush()
    audit.record(session, principal, "create", person_ids=[c.person_id], what=[f"Observation/mch-check-{c.id}"])
    record_event(session, "maternal_child.child_check.recorded", "Observation", c.id,
                 {"check_key": c.check_key, "check_date": c.check_date.isoformat(), "age_days": age_days,
                  "organization_id": org, "flags": c.flags,
                  "zscores": {k: z[k] for k in ("waz", "lhaz", "whz", "bmiz", "hcz")}}, person_id=c.person_id)
    return c


@dataclass(frozen=True)
class OverdueItem:
    record: PatientRecord
    window: rules.ChildCheckWindow
    days_overdue: int

    @property
    def masked_name(self) -> str:
        return mask_name(self.record.name or "")


def overdue_worklist(session: Session, principal: Principal, on: dt.date | None = None) -> list[OverdueItem]:
    """The overdue checks and screenings of the children under 7 registered at the caller's institution (the
    newborn visit counted from birth: discharge is not recorded). Audited with the children listed."""
    on = on or clock.local_date(clock.utcnow())
    org = principal.organization_id
    if not org:
        raise Forbidden("该账号不属于任何机构 / this account belongs to no institution")
    checks, screenings, _f, _p = _values(session, on)
    children = repo.children_registered(session, org, rules.add_months_to(on, -12 * MAX_AGE_YEARS)
                                        + dt.timedelta(days=1), WORKLIST_LIMIT)
    by_person: dict[str, list[ChildCheck]] = {}
    for c in repo.child_checks_of(session, [r.person_id for r in children]):
        by_person.setdefault(c.person_id, []).append(c)
    out: list[OverdueItem] = []
    for r in children:
        windows = rules.child_check_windows(r.birth_date, checks, screenings)
        for w, state, _when in rules.child_check_states(windows, _done(by_person.get(r.person_id, [])), on):
            if state == rules.CHILD_OVERDUE:
                out.append(OverdueItem(r, w, (on - w.end).days))
    out.sort(key=lambda i: (i.window.end, i.record.id))
    if out:
        listed = list(dict.fromkeys((i.record.id, i.record.person_id) for i in out))
        audit.record(session, principal, "search-type", person_ids=[p for _r, p in listed],
                     what=[f"Patient/{r}" for r, _p in listed], query="child-checks-overdue")
    return out


def check_out(c: ChildCheck) -> dict[str, Any]:
    return {"id": c.id, "patient_id": c.patient_record_id, "organization_id": c.organization_id,
            "check_key": c.check_key, "check_date": c.check_date, "age_days": c.age_days, "weight_kg": c.weight_kg,
            "length_cm": c.length_cm, "position": c.position, "head_cm": c.head_cm, "hb_g_l": c.hb_g_l,
            "hearing": c.hearing, "milestones": c.milestones, "zscores": c.zscores or {}, "flags": c.flags or []}
