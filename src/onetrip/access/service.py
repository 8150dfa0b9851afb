"""Gathers the facts the policy needs, applies it, and audits what happened."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy import String, bindparam, literal_column, null, or_, select, union_all
from sqlalchemy.orm import Session

from onetrip.access.models import BreakGlass, CareRelationship, Consent
from onetrip.access.policy import AccessFacts, Decision, decide
from onetrip.audit import service as audit
from onetrip.db.base import new_id
from onetrip.db.changes import Row
from onetrip.kit.clock import utcnow
from onetrip.kit.errors import AccessDenied, BadRequest, NotFound
from onetrip.kit.principal import Principal
from onetrip.persons.models import PatientRecord, Person
from onetrip.rules.service import cached_rule_values, rule_values

# v3 PurposeOfUse codes a break-the-glass may give (RULES §10: ETREAT).
BREAK_GLASS_REASONS = {
    "ETREAT": "急诊救治 / emergency treatment",
    "PATSFTY": "患者安全 / patient safety",
    "CLINTRCH": "危急值处理 / critical result follow-up",
}


def facts_for(session: Session, principal: Principal, person_ids: list[str]) -> dict[str, AccessFacts]:
    """The access facts for each person, in one statement whatever the number of persons."""
    ids = list(dict.fromkeys(person_ids))
    policy = str(cached_rule_values(session, "access").get("default_cross_institution", "deny"))
    record_orgs: dict[str, set[str]] = defaultdict(set)
    care: dict[str, set[str]] = defaultdict(set)
    consents: list[tuple[bool, dt.datetime, str, str]] = []
    glass_rows: list[tuple[dt.datetime, str, str]] = []
    if ids and not principal.is_operator:
        org = principal.organization_id
        rows = session.execute(_FACTS, {"ids": ids, "now": utcnow(), "org": org,
                                        "user": principal.id if principal.kind == "user" else None})
        for kind, pid, org_id, value, at in rows:
            if kind == "r":
                record_orgs[pid].add(org_id)
            elif kind == "c":
                care[pid].add(org_id)
            elif kind == "k":
                consents.append((org_id is not None, at, pid, value))
            else:
                glass_rows.append((at, pid, value))
    # Most specific wins (a consent naming this institution over a general one), then the newest.
    consent = {pid: decision for _, _, pid, decision in sorted(consents, key=lambda c: (c[0], c[1]))}
    glass = {pid: reason for _, pid, reason in sorted(glass_rows, key=lambda g: g[0])}  # the newest wins
    return {
        pid: AccessFacts(
            principal_org=principal.organization_id, is_operator=principal.is_operator,
            record_orgs=frozenset(record_orgs[pid]), care_orgs=frozenset(care[pid]),
            consent=consent.get(pid), break_glass=glass.get(pid), default_policy=policy,
        )
        for pid in ids
    }


def _facts_statement():
    """The four facts of ``facts_for`` as one UNION ALL (kind, person, organization, value, time), built once:
    every audited read runs it, and one round trip instead of four halves its cost (issue 26,
    bench/bench_request_cost.py). A NULL ``org`` (no institution) or ``user`` (not a user) matches no care
    relationship, no institution-specific consent and no break-the-glass, as the policy wants."""
    ids, now = bindparam("ids", expanding=True), bindparam("now", type_=Consent.starts_at.type)
    org, user = bindparam("org", type_=String), bindparam("user", type_=String)
    consent = select(literal_column("'k'").label("kind"), Consent.person_id,
                     Consent.grantee_organization_id.label("org"), Consent.decision.label("value"),
                     Consent.created_at.label("at")).where(
        Consent.person_id.in_(ids), Consent.withdrawn_at.is_(None), Consent.starts_at <= now,
        or_(Consent.ends_at.is_(None), Consent.ends_at > now),
        or_(Consent.grantee_organization_id.is_(None), Consent.grantee_organization_id == org))
    records = select(literal_column("'r'"), PatientRecord.person_id, PatientRecord.organization_id, null(),
                     null()).where(PatientRecord.person_id.in_(ids), PatientRecord.deleted_at.is_(None))
    care = select(literal_column("'c'"), CareRelationship.person_id, CareRelationship.organization_id, null(),
                  null()).where(
        CareRelationship.person_id.in_(ids), CareRelationship.organization_id == org,
        CareRelationship.starts_at <= now,
        or_(CareRelationship.ends_at.is_(None), CareRelationship.ends_at > now))
    glass = select(literal_column("'g'"), BreakGlass.person_id, null(), BreakGlass.reason_code,
                   BreakGlass.started_at).where(
        BreakGlass.user_id == user, BreakGlass.person_id.in_(ids), BreakGlass.ended_at.is_(None),
        BreakGlass.expires_at > now)
    # the consent branch first: its column types (the UTC datetime) decide the result's processing
    return union_all(consent, records, care, glass)


_FACTS = _facts_statement()


def granted_person_ids(session: Session, principal: Principal):
    """A subquery of the persons this principal may see at other institutions by a positive grant:
    an active care relationship of their institution, a consent permitting it, or their own active
    break-the-glass. Searches semi-join on it; results are still filtered through ``decide`` so that a
    refusal (consent deny) wins."""
    from sqlalchemy import union

    now = utcnow()
    org = principal.organization_id
    parts = [
        select(CareRelationship.person_id).where(
            CareRelationship.organization_id == org, CareRelationship.starts_at <= now,
            or_(CareRelationship.ends_at.is_(None), CareRelationship.ends_at > now)),
        select(Consent.person_id).where(
            Consent.decision == "permit", Consent.withdrawn_at.is_(None), Consent.starts_at <= now,
            or_(Consent.ends_at.is_(None), Consent.ends_at > now),
            or_(Consent.grantee_organization_id.is_(None), Consent.grantee_organization_id == org)),
    ]
    if principal.kind == "user":
        parts.append(select(BreakGlass.person_id).where(
            BreakGlass.user_id == principal.id, BreakGlass.ended_at.is_(None), BreakGlass.expires_at > now))
    return union(*parts).subquery()


def default_policy(session: Session) -> str:
    return str(rule_values(session, "access").get("default_cross_institution", "deny"))


def decisions(session: Session, principal: Principal, person_ids: list[str]) -> dict[str, Decision]:
    return {pid: decide(f) for pid, f in facts_for(session, principal, person_ids).items()}


def require_read(session: Session, principal: Principal, person_id: str, what: str, subtype: str = "read") -> Decision:
    """Allow and audit, or audit the denial and raise 403 (the denial is committed)."""
    d = decisions(session, principal, [person_id])[person_id]
    if d.allowed:
        audit.record(session, principal, subtype, person_ids=[person_id], what=[what],
                     purpose_of_use=d.purpose_of_use, detail={"rule": d.rule, "basis": d.basis})
        return d
    audit.record(session, principal, subtype, outcome=audit.OUTCOME_MINOR, outcome_desc=f"denied: {d.basis}",
                 person_ids=[person_id], what=[what], detail={"rule": d.rule, "basis": d.basis})
    raise AccessDenied(
        "无权查看其他机构的患者信息：需要诊疗关系、患者授权或紧急访问（须填写理由） / "
        "no access to this patient's data held by another institution: a care relationship, the patient's "
        "consent, or break-the-glass with a reason is required"
    )


def start_break_glass(session: Session, principal: Principal, person_id: str, reason_code: str,
                      reason_text: str) -> BreakGlass:
    """紧急访问: a time-limited, audited override with a stated reason (DICOM 110113/110127, ETREAT)."""
    if principal.kind != "user":
        raise BadRequest("只有用户可以发起紧急访问 / only a signed-in user can break the glass")
    if reason_code not in BREAK_GLASS_REASONS:
        raise BadRequest(f"紧急访问原因代码无效 / reason code must be one of {', '.join(BREAK_GLASS_REASONS)}",
                         expression=["reason_code"])
    text = (reason_text or "").strip()
    if len(text) < 4:
        raise BadRequest("请填写紧急访问的具体理由（至少4个字）/ describe the reason (at least 4 characters)",
                         expression=["reason_text"])
    if session.get(Person, person_id) is None:
        raise NotFound("居民不存在 / person not found")
    minutes = int(rule_values(session, "access").get("break_glass_minutes", 240))
    now = utcnow()
    bg = BreakGlass(user_id=principal.id, organization_id=principal.organization_id, person_id=person_id,
                    reason_code=reason_code, reason_text=text[:500], started_at=now,
                    expires_at=now + dt.timedelta(minutes=minutes))
    session.add(bg)
    session.flush()
    audit.record(session, principal, "break-glass", type_code="110113", purpose_of_use=reason_code,
                 person_ids=[person_id], what=[f"BreakGlass/{bg.id}"],
                 detail={"event": "110127 Emergency Override Started", "reason": text[:500],
                         "expires_at": bg.expires_at.isoformat()})
    return bg


def end_break_glass(session: Session, principal: Principal, break_glass_id: str) -> BreakGlass:
    bg = session.get(BreakGlass, break_glass_id)
    if bg is None or (bg.user_id != principal.id and not principal.is_admin):
        raise NotFound("紧急访问记录不存在 / break-the-glass record not found")
    if bg.ended_at is None:
        bg.ended_at = min(utcnow(), bg.expires_at)
        audit.record(session, principal, "break-glass", type_code="110113", person_ids=[bg.person_id],
                     what=[f"BreakGlass/{bg.id}"], detail={"event": "110138 Emergency Override Stopped"})
    session.flush()
    return bg


def review_break_glass(session: Session, principal: Principal, break_glass_id: str, outcome: str,
                       note: str) -> BreakGlass:
    if not principal.is_admin:
        raise AccessDenied("只有管理员可以审核紧急访问 / only an admin reviews break-the-glass")
    if outcome not in ("justified", "unjustified"):
        raise BadRequest("审核结论须为 justified 或 unjustified / outcome must be justified or unjustified")
    bg = session.get(BreakGlass, break_glass_id)
    if bg is None:
        raise NotFound("紧急访问记录不存在 / break-the-glass record not found")
    bg.reviewed_by, bg.reviewed_at, bg.review_outcome, bg.review_note = principal.id, utcnow(), outcome, note[:500]
    audit.record(session, principal, "break-glass", person_ids=[bg.person_id], what=[f"BreakGlass/{bg.id}"],
                 detail={"event": "review", "outcome": outcome})
    session.flush()
    return bg


def care_relationship_row(person_id: str, organization_id: str, kind: str, source_ref: str | None, *, days: int,
                          now: dt.datetime) -> Row:
    """The ``care_relationship`` row (a dict that knows its table): ``add_care_relationship`` makes it an ORM
    object; a domain adds it to its ``db.changes.Changes`` (the booking's one-statement write)."""
    return Row(CareRelationship.__table__, id=new_id(), person_id=person_id, organization_id=organization_id,
               kind=kind, source_ref=source_ref, starts_at=now, ends_at=now + dt.timedelta(days=days), created_at=now)


def add_care_relationship(session: Session, person_id: str, organization_id: str, kind: str,
                          source_ref: str | None = None, *, days: int | None = None) -> CareRelationship:
    """Called by the domains that create one (encounter, referral, contract, appointment)."""
    if kind not in ("encounter", "referral", "contract", "appointment"):
        raise BadRequest(f"unknown care relationship kind {kind!r}")
    if days is None:
        days = int(rule_values(session, "access").get("care_relationship_days", 365))
    rel = CareRelationship(**care_relationship_row(person_id, organization_id, kind, source_ref, days=days,
                                                   now=utcnow()))
    session.add(rel)
    session.flush()
    return rel


def record_consent(session: Session, principal: Principal, person_id: str, decision: str,
                   grantee_organization_id: str | None = None, ends_at: dt.datetime | None = None) -> Consent:
    if decision not in ("permit", "deny"):
        raise BadRequest("授权决定须为 permit 或 deny / decision must be permit or deny")
    now = utcnow()
    c = Consent(person_id=person_id, grantee_organization_id=grantee_organization_id, decision=decision,
                starts_at=now, ends_at=ends_at, created_at=now,
                recorded_by=principal.id if principal.kind == "user" else None)
    session.add(c)
    session.flush()
    audit.record(session, principal, "create", person_ids=[person_id], what=[f"Consent/{c.id}"],
                 detail={"decision": decision, "grantee": grantee_organization_id})
    return c


def active_break_glass(session: Session, principal: Principal, person_id: str) -> BreakGlass | None:
    if principal.kind != "user":
        return None
    return session.scalars(
        select(BreakGlass).where(BreakGlass.user_id == principal.id, BreakGlass.person_id == person_id,
                                 BreakGlass.ended_at.is_(None), BreakGlass.expires_at > utcnow())
    ).first()
