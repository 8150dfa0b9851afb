"""Every query of the order-time check (互认), the hot path of issue 4's "order check p95 ≤ 20 ms".

A check is three statements of its own: ``check_facts`` (the ordering institution and its QC standing, whether
the person exists, the catalogue item, the ordering department) before the access decision,
``priors_of_person`` (the person's and merged persons' final reports, with their issuers, QC standing, whether
they carry result data and the catalogue's mapping of their local code) after it, and ``insert_check`` (the
check row, its outbox event and its audit events with their chain head in one statement on PostgreSQL; one
INSERT per table on SQLite). Core statements built once with bound parameters and no ORM objects, as
scheduling/repository.py does: building, cache-keying and loading ORM objects per check costs more Python
time than the queries take.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, bindparam, exists, insert, literal_column, null, or_, select
from sqlalchemy.orm import Session

from onetrip.audit import service as audit
from onetrip.audit.models import AuditEvent
from onetrip.db.fastpath import DriverStatement, column_param
from onetrip.identity.models import Person
from onetrip.outbox.models import OutboxEvent
from onetrip.recognition.models import RecognitionDecision, RecognitionInstitution, RecognitionItem
from onetrip.records.models import DiagnosticReport, Observation
from onetrip.registry.models import Department, Organization, Practitioner, User

# Report states a recognisable prior may have (a preliminary or cancelled report is never offered).
FINAL_STATUSES = ("final", "amended", "corrected")

_ORG, _QC, _ITEM = Organization.__table__, RecognitionInstitution.__table__, RecognitionItem.__table__
_PERSON, _DEP, _USER, _PRAC = Person.__table__, Department.__table__, User.__table__, Practitioner.__table__
_REPORT, _OBS = DiagnosticReport.__table__, Observation.__table__
_CHECK, _OUTBOX, _AUDIT = RecognitionDecision.__table__, OutboxEvent.__table__, AuditEvent.__table__

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


def check_facts(session: Session, person_id: str, ordering_org_id: str, item_code: str,
                department_id: str | None, user_id: str | None) -> Row:
    """One row, whatever exists: ``person_exists``; the ordering institution (``org_id`` … NULL when unknown)
    with its ``qc_passed`` (NULL: no standing row); the active catalogue item with this local or standard
    code (``local_code`` … NULL when none); the given department (``department_id``,
    ``department_org_id``) and the signed-in user's practitioner's department and institution
    (``practitioner_department_id``, ``practitioner_org_id``; pass ``user_id`` None for a non-user)."""
    return session.connection().execute(_CHECK_FACTS, {
        "person_id": person_id, "org_id": ordering_org_id, "item_code": item_code,
        "department_id": department_id, "user_id": user_id}).one()


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


def priors_of_person(session: Session, person_id: str) -> Sequence[Row]:
    """The final reports of the person and of every person merged into it (directly or through a chain),
    newest first, each with its issuing institution (``issuer_id`` NULL when unknown), that institution's
    ``qc_passed`` (NULL: no standing row), ``has_data`` (it has observations) and ``mapped_code`` (the
    standard code the catalogue maps the report's local code to, active item or not). Imaging studies are
    not read: only a report is recognisable."""
    return session.connection().execute(_PRIORS, {"person_id": person_id}).all()


_p = column_param


# Audit columns the read event and the check's create event share: both are computed from the same
# principal and person, on the same chain (``audit.combined_params`` checks it).
_SHARED_AUDIT = ("chain", "type_code", "agent_user_id", "agent_client_id", "agent_name", "agent_org_id",
                 "source", "network_address", "entity_person_id")


def _check_write(with_read: bool):
    """PostgreSQL: the check row, its outbox event and the audit events (the read first when
    ``with_read``, then the check's create) with their chain head — one statement (data-modifying
    CTEs, ``audit.combined_write``). Values shared between rows are one parameter each."""
    now, check_id, person = _p("now", _CHECK.c.created_at), _p("check_id", _CHECK.c.id), _p("person_id", _CHECK.c.person_id)
    shared = {"id": check_id, "created_at": now, "updated_at": now, "kind": literal_column("'check'"),
              "person_id": person, "check_id": null(), "decision": null(), "reason_code": null(), "disease": null(),
              "remark": null()}
    row = {c.name: shared.get(c.name, _p(c.name, c)) for c in _CHECK.columns}
    outbox = {"event_id": _p("event_id", _OUTBOX.c.event_id), "occurred_at": now,
              "event_type": literal_column("'recognition.checked'"),
              "aggregate_type": literal_column("'RecognitionDecision'"), "aggregate_id": check_id,
              "person_id": person, "payload": _p("payload", _OUTBOX.c.payload), "published_at": null()}
    return audit.combined_write(insert(_CHECK).values(row).cte("check_row"),
                                insert(_OUTBOX).values(outbox).cte("check_outbox"),
                                events=2 if with_read else 1, shared=_SHARED_AUDIT)


_WRITE_CHECK, _WRITE_CHECK_AND_READ = DriverStatement(_check_write(False)), DriverStatement(_check_write(True))
_INSERT_CHECK, _INSERT_OUTBOX = insert(_CHECK), insert(_OUTBOX)
_CHECK_OWN = ("ordering_org_id", "department_id", "item_code", "user_id", "prior_ids", "channel", "hook_instance")


def insert_check(session: Session, check: dict[str, Any], outbox: dict[str, Any], audited: audit.Appended,
                 now: dt.datetime) -> None:
    """Write the check row (``check``: id, person_id and ``_CHECK_OWN``; kind ``check``, created now), its
    outbox event (``outbox.event_row``, occurred now) and the prepared audit events — one or two, the last
    being the check's create — in the caller's transaction: one statement on PostgreSQL, one INSERT per
    table on SQLite."""
    conn = session.connection()
    rows = audited.rows
    if conn.dialect.name == "postgresql" and len(rows) <= 2:
        try:
            audit_params = audit.combined_params(audited, shared=_SHARED_AUDIT)
        except ValueError:  # the events differ in a shared column: plain INSERTs below
            audit_params = None
        if audit_params is not None:
            params = {k: check[k] for k in _CHECK_OWN}
            params.update(now=now, check_id=check["id"], person_id=check["person_id"],
                          event_id=outbox["event_id"], payload=outbox["payload"], **audit_params)
            (_WRITE_CHECK_AND_READ if len(rows) == 2 else _WRITE_CHECK).execute(session, params)
            return
    conn.execute(_INSERT_CHECK, {**check, "kind": "check", "created_at": now, "updated_at": now})
    conn.execute(_INSERT_OUTBOX, outbox)
    audit.write(session, audited)
