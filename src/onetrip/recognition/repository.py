"""Every query of the order-time check (互认), the hot path of issue 4's "order check p95 ≤ 20 ms".

A check is three statements of its own: ``check_facts`` (the ordering institution and its QC standing, whether
the person exists, the catalogue item, the ordering department, and the lock of a free audit chain head)
before the access decision,
``priors_of_person`` (the person's and merged persons' final reports, with their issuers, QC standing, whether
they carry result data and the catalogue's mapping of their local code) after it, and one write: the check
row (``check_row``) with its outbox event and audit events, by ``db.changes.apply`` (one statement on
PostgreSQL). Core statements built once with bound parameters and no ORM objects, as
scheduling/repository.py does: building, cache-keying and loading ORM objects per check costs more Python
time than the queries take.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, exists, func, literal_column, or_, select
from sqlalchemy.engine import Row as Fetched
from sqlalchemy.orm import Session

from onetrip.audit import service as audit
from onetrip.db.changes import Row
from onetrip.persons.models import Person
from onetrip.recognition.models import RecognitionDecision, RecognitionInstitution, RecognitionItem
from onetrip.records.interface import DiagnosticReport, Observation
from onetrip.registry.models import Department, Organization, Practitioner, User

# Report states a recognisable prior may have (a preliminary or cancelled report is never offered).
FINAL_STATUSES = ("final", "amended", "corrected")

_ORG, _QC, _ITEM = Organization.__table__, RecognitionInstitution.__table__, RecognitionItem.__table__
_PERSON, _DEP, _USER, _PRAC = Person.__table__, Department.__table__, User.__table__, Practitioner.__table__
_REPORT, _OBS = DiagnosticReport.__table__, Observation.__table__
_CHECK = RecognitionDecision.__table__

# The active item with this local or standard code (the first by local code, as ``service.find_item``).
_ITEM_ID = (select(_ITEM.c.id)
            .where(_ITEM.c.active.is_(True),
                   or_(_ITEM.c.local_code == bindparam("item_code"), _ITEM.c.standard_code == bindparam("item_code")))
            .order_by(_ITEM.c.local_code).limit(1).scalar_subquery())
_ONE_ROW = select(literal_column("1").label("one")).subquery("one_row")
_CHECK_FACTS = (
    select(exists().where(_PERSON.c.id == bindparam("person_id")).label("person_exists"),
           _ORG.c.id.label("org_id"), _ORG.c.name.label("org_name"), _ORG.c.grade, _ORG.c.community_id,
           _QC.c.qc_passed, _ITEM.c.local_code, _ITEM.c.standard_code, _ITEM.c.name_zh, _ITEM.c.category,
           _ITEM.c.price, _ITEM.c.window_days, _ITEM.c.scope,
           _DEP.c.id.label("department_id"), _DEP.c.organization_id.label("department_org_id"),
           _PRAC.c.department_id.label("practitioner_department_id"),
           _PRAC.c.organization_id.label("practitioner_org_id"))
    .select_from(_ONE_ROW.outerjoin(_ORG, _ORG.c.id == bindparam("org_id"))
                 .outerjoin(_QC, _QC.c.organization_id == _ORG.c.id)
                 .outerjoin(_ITEM, _ITEM.c.id == _ITEM_ID)
                 .outerjoin(_DEP, _DEP.c.id == bindparam("department_id"))
                 .outerjoin(_USER, _USER.c.id == bindparam("user_id"))
                 .outerjoin(_PRAC, _PRAC.c.id == _USER.c.practitioner_id))
)
# (Run through SQLAlchemy: ``fastpath`` has no result processor for the item's NUMERIC price.)
_FACTS = audit.with_head_lock(_CHECK_FACTS)


def check_facts(session: Session, person_id: str, ordering_org_id: str, item_code: str,
                department_id: str | None, user_id: str | None, audit_head: Mapping[str, Any]) -> Fetched:
    """One row, whatever exists: ``person_exists``; the ordering institution (``org_id`` … NULL when unknown)
    with its ``qc_passed`` (NULL: no standing row); the active catalogue item with this local or standard
    code (``local_code`` … NULL when none); the given department (``department_id``,
    ``department_org_id``) and the signed-in user's practitioner's department and institution
    (``practitioner_department_id``, ``practitioner_org_id``; pass ``user_id`` None for a non-user) — and
    the lock of a free audit chain head for the check's events (``audit.with_head_lock``; ``audit_head``:
    ``audit.head_lock_params``)."""
    return session.connection().execute(_FACTS, {
        "person_id": person_id, "org_id": ordering_org_id, "item_code": item_code,
        "department_id": department_id, "user_id": user_id, **audit_head}).one()


_MERGED = select(_PERSON.c.id).where(_PERSON.c.id == bindparam("person_id")).cte("merged_person", recursive=True)
# UNION (not UNION ALL) ends on a cycle, as ``records.repository.merged_person_ids`` does
_MERGED = _MERGED.union(select(_PERSON.c.id).where(_PERSON.c.merged_into_id == _MERGED.c.id))
_MAPPED = _ITEM.alias("mapped_item")
_PRIORS = (
    select(_REPORT.c.id, _REPORT.c.code, _REPORT.c.code_local, _REPORT.c.display, _REPORT.c.category,
           _REPORT.c.section, _REPORT.c.effective_at, _REPORT.c.organization_id, _REPORT.c.recognition_mark,
           _ORG.c.id.label("issuer_id"), _ORG.c.name.label("org_name"), _ORG.c.grade, _ORG.c.community_id,
           _QC.c.qc_passed, exists().where(_OBS.c.report_id == _REPORT.c.id).label("has_data"),
           _MAPPED.c.standard_code.label("mapped_code"))
    .select_from(_REPORT.outerjoin(_ORG, _ORG.c.id == _REPORT.c.organization_id)
                 .outerjoin(_QC, _QC.c.organization_id == _REPORT.c.organization_id)
                 .outerjoin(_MAPPED, _MAPPED.c.local_code == _REPORT.c.code_local))
    .where(_REPORT.c.person_id.in_(select(_MERGED.c.id)),
           _REPORT.c.status.in_([literal_column(f"'{s}'") for s in FINAL_STATUSES]))  # inline: no expanding IN
    .order_by(_REPORT.c.effective_at.desc(), _REPORT.c.id)
)


def priors_of_person(session: Session, person_id: str) -> Sequence[Fetched]:
    """The final reports of the person and of every person merged into it (directly or through a chain),
    newest first, each with its issuing institution (``issuer_id`` NULL when unknown), that institution's
    ``qc_passed`` (NULL: no standing row), ``has_data`` (it has observations) and ``mapped_code`` (the
    standard code the catalogue maps the report's local code to, active item or not). Imaging studies are
    not read: only a report is recognisable."""
    return session.connection().execute(_PRIORS, {"person_id": person_id}).all()


_CHECK_NULLS = {"check_id": None, "decision": None, "reason_code": None, "disease": None, "remark": None}


def check_row(check: dict[str, Any], now: dt.datetime) -> Row:
    """The check's ``recognition_decision`` row (kind ``check``, created now) for the check's ``Changes``:
    ``check`` has id, person_id, ordering_org_id, department_id, item_code, user_id, prior_ids, channel and
    hook_instance."""
    return Row(_CHECK, check, kind="check", created_at=now, updated_at=now, **_CHECK_NULLS)


def catalogue_search(session: Session, q: str, limit: int = 50) -> list[RecognitionItem]:
    """Active catalogue items whose code or name (Chinese or English) contains ``q`` (the order screen)."""
    stmt = select(RecognitionItem).where(RecognitionItem.active.is_(True))
    term = q.strip()[:64]
    if term:
        like = f"%{term.lower()}%"
        stmt = stmt.where(or_(func.lower(RecognitionItem.local_code).like(like),
                              func.lower(func.coalesce(RecognitionItem.standard_code, "")).like(like),
                              RecognitionItem.name_zh.like(f"%{term}%"),
                              func.lower(RecognitionItem.name_en).like(like)))
    return list(session.scalars(stmt.order_by(RecognitionItem.category, RecognitionItem.local_code).limit(limit)))


def decisions_of_checks(session: Session, check_ids: list[str]) -> list[RecognitionDecision]:
    """The decisions recorded on these checks, oldest first (the latest one counts)."""
    return list(session.scalars(select(RecognitionDecision).where(
        RecognitionDecision.kind == "decision", RecognitionDecision.check_id.in_(check_ids))
        .order_by(RecognitionDecision.created_at, RecognitionDecision.id)))
