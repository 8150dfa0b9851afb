"""The order-time recognition check (互认) and the decision log (issue 4 §5).

Priors are read after the access decision (policy; a denial is audited by ``access.require_read``), as the
records service does, through this domain's repository (the check is the hot path: Core statements, no ORM
objects). Every check and every decision is a ``recognition_decision`` row, audited as a create and evented
through the outbox in the same transaction. Services flush, never commit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from onetrip.access import service as access
from onetrip.audit import service as audit
from onetrip.db.base import new_id
from onetrip.db.changes import Changes, apply
from onetrip.kit.clock import utcnow
from onetrip.kit.errors import AccessDenied, BadRequest, NotFound
from onetrip.kit.principal import Principal
from onetrip.outbox.service import event_row as outbox_event_row
from onetrip.outbox.service import record_event
from onetrip.recognition import repository as repo
from onetrip.recognition import rules
from onetrip.recognition.models import RecognitionDecision, RecognitionItem, RecognitionReason
from onetrip.recognition.schemas import PriorOut
from onetrip.records import interface as records
from onetrip.rules.service import rule_values

SEED = Path(__file__).resolve().parents[1] / "db" / "seeds" / "recognition_catalogue.json"
DECISIONS = ("recognised", "repeated")


class RecognisablePrior(PriorOut):
    """A recognisable prior result, as the API shows it, plus the id of the check that found it (CDS Hooks
    cards and ``check_order`` callers need it; the REST answer carries it once, beside the priors)."""

    check_id: str


def seed_catalogue(session: Session, path: Path = SEED) -> int:
    """Insert the catalogue items and reason codes that are missing (edits to existing rows are kept)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    have_items = set(session.scalars(select(RecognitionItem.local_code)))
    have_reasons = set(session.scalars(select(RecognitionReason.code)))
    n = 0
    for it in data["items"]:
        if it["local_code"] not in have_items:
            session.add(RecognitionItem(**{**it, "price": Decimal(it["price"])}))
            n += 1
    for r in data["reasons"]:
        if r["code"] not in have_reasons:
            session.add(RecognitionReason(**r))
            n += 1
    session.flush()
    return n


def reasons(session: Session) -> list[RecognitionReason]:
    return list(session.scalars(select(RecognitionReason).where(RecognitionReason.active.is_(True))
                                .order_by(RecognitionReason.code)))


def find_item(session: Session, code: str) -> RecognitionItem | None:
    return session.scalars(select(RecognitionItem).where(
        RecognitionItem.active.is_(True),
        or_(RecognitionItem.local_code == code, RecognitionItem.standard_code == code))
        .order_by(RecognitionItem.local_code)).first()


def _department(facts, principal: Principal, ordering_org_id: str, department_id: str | None) -> str | None:
    """The ordering department: the one given (it must belong to the ordering institution), else the
    signed-in doctor's own department (user → practitioner), else none. ``facts`` is ``check_facts``'s row."""
    if department_id:
        if facts.department_id is None or facts.department_org_id != ordering_org_id:
            raise BadRequest("科室不存在或不属于开单机构 / unknown department, or not of the ordering institution",
                             expression=["department_id"])
        return facts.department_id
    if principal.kind != "user" or facts.practitioner_org_id != ordering_org_id:
        return None
    return facts.practitioner_department_id


def _issuer(org_id: str | None, grade: str | None, community_id: str | None, qc_passed: bool | None) -> rules.Issuer:
    """An institution as the rules see it (no standing row → in standing; an unknown institution never
    qualifies)."""
    if org_id is None:
        return rules.Issuer(None, None, False)
    return rules.Issuer(grade, community_id, True if qc_passed is None else qc_passed)


@dataclass(frozen=True)
class LoggedCheck:
    """The ``recognition_decision`` row (kind ``check``) a check wrote."""

    id: str
    person_id: str
    ordering_org_id: str
    department_id: str | None
    item_code: str
    prior_ids: list[str]


def run_check(session: Session, principal: Principal, person_id: str, item_code: str, ordering_org_id: str,
              *, channel: str = "rest", hook_instance: str | None = None, department_id: str | None = None
              ) -> tuple[LoggedCheck, list[RecognisablePrior]]:
    """Check one order; returns the logged check row and the recognisable priors (newest first). Results
    of persons merged into ``person_id`` count as the person's own (MPI merge); only reports are offered —
    an imaging study without a report is not a recognisable result (R1.1: images with their report).

    Three statements of its own besides the access decision (see ``repository``; the first also locks the
    audit chain head); the rules stay the pure functions of ``rules``."""
    facts = repo.check_facts(session, person_id, ordering_org_id, item_code, department_id,
                             principal.id if principal.kind == "user" else None, audit.head_lock_params(session))
    # errors in this order: unknown person, unknown institution, another institution's order, unknown item
    if not facts.person_exists:
        raise NotFound("居民不存在 / person not found")
    if facts.org_id is None:
        raise BadRequest(f"机构不存在 / unknown organization {ordering_org_id!r}", expression=["ordering_org_id"])
    if not principal.is_operator and principal.organization_id != ordering_org_id:
        raise AccessDenied("只能为本机构的申请核查 / you can only check your own institution's orders")
    if facts.local_code is None:
        raise BadRequest(f"目录中无此项目 / item {item_code!r} is not in the recognition catalogue",
                         expression=["item_code"])
    department = _department(facts, principal, ordering_org_id, department_id)
    # An allowed read is audited below together with the check's own event (one audit write, same
    # statement as the check row); a denial is audited and raised by require_read, as everywhere else.
    read_what = f"Person/{person_id}/recognition?item={item_code}"
    decision = access.decisions(session, principal, [person_id])[person_id]
    read_audited = False
    if not decision.allowed:
        decision = access.require_read(session, principal, person_id, read_what)
        read_audited = True
    reports = repo.priors_of_person(session, person_id)  # read only once the read is allowed
    now = utcnow()
    order = rules.OrderItem(facts.local_code, facts.standard_code, facts.category, facts.window_days)
    orderer = _issuer(facts.org_id, facts.grade, facts.community_id, facts.qc_passed)
    mapping = {r.code_local: r.mapped_code for r in reports if r.mapped_code is not None}
    windows: dict[str, object] | None = None  # read only when an item has no window of its own
    found = []
    for r in reports:
        if facts.window_days is None and windows is None:
            windows = rule_values(session, "records")
        days = facts.window_days if facts.window_days is not None else records.validity_days(
            windows, [r.code, r.code_local], r.section)
        prior = rules.PriorResult(r.id, r.code, r.code_local, r.category, r.effective_at, r.recognition_mark,
                                  r.has_data, _issuer(r.issuer_id, r.grade, r.community_id, r.qc_passed))
        if not rules.failures(order, orderer, prior, mapping, days, now, facts.scope):
            found.append((r, days))
    check = {"id": new_id(), "person_id": person_id, "ordering_org_id": ordering_org_id, "department_id": department,
             "item_code": facts.local_code, "user_id": principal.id, "prior_ids": [r.id for r, _ in found],
             "channel": channel, "hook_instance": hook_instance}
    created = {"person_ids": [person_id], "what": [f"RecognitionDecision/{check['id']}"]}
    events: list[tuple[str, dict]] = [] if read_audited else [
        ("read", {"person_ids": [person_id], "what": [read_what], "purpose_of_use": decision.purpose_of_use,
                  "detail": {"rule": decision.rule, "basis": decision.basis}})]
    apply(session, Changes(
        repo.check_row(check, now),
        outbox_event_row("recognition.checked", "RecognitionDecision", check["id"],
                         {"item": facts.local_code, "ordering_org_id": ordering_org_id, "priors": len(found)},
                         person_id=person_id, occurred_at=now),
        *audit.events(session, principal, [*events, ("create", created)], head=facts)))  # read first, same chain
    priors = [RecognisablePrior(
        check_id=check["id"], report_id=r.id, code=r.code, code_local=r.code_local,
        display=r.display or facts.name_zh, category=r.category, effective_at=r.effective_at,
        organization_id=r.organization_id, organization_name=r.org_name, recognition_mark=r.recognition_mark,
        validity_days=days, price=facts.price) for r, days in found]
    return LoggedCheck(check["id"], person_id, ordering_org_id, department, facts.local_code, check["prior_ids"]), priors


def check_order(session: Session, principal: Principal, person_id: str, item_code: str,
                ordering_org_id: str) -> list[RecognisablePrior]:
    """The recognisable prior results for an order (each carries the logged check's id)."""
    return run_check(session, principal, person_id, item_code, ordering_org_id)[1]


def record_decision(session: Session, principal: Principal, check_id: str, decision: str,
                    reason_code: str | None = None, remark: str | None = None, *, disease: str | None = None,
                    channel: str = "rest") -> RecognitionDecision:
    """Log the doctor's choice for a check: ``recognised`` (re-use) or ``repeated`` with a valid reason
    code (R1.3; 99 needs a disease name). 400 otherwise; 404 for an unknown check."""
    check = session.get(RecognitionDecision, check_id)
    if check is None or check.kind != "check":
        raise NotFound(f"核查记录不存在 / check {check_id!r} not found")
    access.require_read(session, principal, check.person_id, f"Person/{check.person_id}/recognition-decision")
    if not principal.is_operator and principal.organization_id != check.ordering_org_id:
        raise AccessDenied("只能处理本机构的申请 / you can only decide your own institution's orders")
    if decision not in DECISIONS:
        raise BadRequest("decision 必须为 recognised 或 repeated / decision must be recognised or repeated",
                         expression=["decision"])
    if decision == "recognised":
        if not check.prior_ids:
            raise BadRequest("没有可互认的结果 / no recognisable prior result for this check", expression=["decision"])
        reason_code = None
    else:
        problem = rules.override_error(reason_code, {r.code: r.needs_disease for r in reasons(session)}, disease)
        if problem == "reason":
            raise BadRequest("重复检查需要有效的理由代码 / a repeat needs a valid reason code (RULES R1.3)",
                             expression=["reason_code"])
        if problem == "disease":
            raise BadRequest("理由 99（连续动态监测）需要疾病名称 / reason 99 needs the disease name",
                             expression=["disease"])
    row = RecognitionDecision(kind="decision", person_id=check.person_id, check_id=check.id,
                              ordering_org_id=check.ordering_org_id, department_id=check.department_id,
                              item_code=check.item_code, user_id=principal.id,
                              prior_ids=check.prior_ids, decision=decision, reason_code=reason_code,
                              disease=disease if decision == "repeated" else None, remark=remark, channel=channel)
    session.add(row)
    session.flush()
    audit.record(session, principal, "create", person_ids=[check.person_id], what=[f"RecognitionDecision/{row.id}"])
    record_event(session, "recognition.decided", "RecognitionDecision", row.id,
                 {"check_id": check.id, "decision": decision, "reason_code": reason_code, "item": check.item_code},
                 person_id=check.person_id)
    return row
