"""What every result write shares: may this principal send this institution's results, who is the patient,
and the idempotent insert of one row (a report, an imaging study, an order).

Writes are idempotent on the sender's identifier (unique per issuing organization): a repeat returns the
stored row unchanged. Every write is audited as a create and leaves an outbox event in the same
transaction. Observations have their own path (``observations.store``), built on the same checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from onetrip.audit import service as audit
from onetrip.db.base import new_id
from onetrip.identity import repository as identity_repo
from onetrip.kit.clock import utcnow
from onetrip.kit.errors import AccessDenied, BadRequest
from onetrip.kit.principal import Principal
from onetrip.outbox.service import event_row, record_event
from onetrip.persons.models import PatientRecord
from onetrip.records import repository as repo
from onetrip.records.schemas import _ResultIn
from onetrip.registry.models import Organization

COMMON = ("organization_id", "identifier_system", "identifier_value", "status", "code_local", "code_system",
          "code", "display")


@dataclass
class Stored:
    """What a store call did: the row, and whether it is new (False: the sender's identifier was known)."""

    row: Any
    created: bool


def check_write(session: Session, principal: Principal, organization_id: str) -> None:
    # The session keeps the organizations it has checked (the identity map alone holds them only weakly):
    # a report with its observations, a bundle or a batch of HL7 messages asks for the same one many times.
    known = session.info.setdefault("records.organizations", {})
    org = known.get(organization_id) or session.get(Organization, organization_id)
    if org is not None:
        known[organization_id] = org
    if org is None:
        raise BadRequest(f"机构不存在 / unknown organization {organization_id!r}", expression=["performer"])
    if not principal.is_operator and principal.organization_id != organization_id:
        raise AccessDenied("只能上传本机构的结果 / you can only send your own institution's results")


def resolve_patient(session: Session, data: _ResultIn) -> PatientRecord:
    """The patient: an existing PatientRecord id, or the MRN of a record at the issuing organization."""
    rec = None
    if data.patient_record_id:
        rec = session.get(PatientRecord, data.patient_record_id)
    elif data.mrn:
        rec = identity_repo.record_by_mrn(session, data.organization_id, data.mrn)
    else:
        raise BadRequest("需要患者（记录号或本机构病案号）/ a patient is required (record id or MRN at the "
                         "issuing institution)", expression=["subject"])
    if rec is None or rec.deleted_at is not None:
        raise BadRequest("患者不存在 / the referenced patient does not exist", code="not-found",
                         expression=["subject"])
    return rec


def same_person(session: Session, model, row_id: str | None, person_id: str, what: str):
    """The referenced row (None when no reference), which must be the same patient's."""
    if row_id is None:
        return None
    target = session.get(model, row_id)
    if target is None or target.person_id != person_id:
        raise BadRequest(f"引用的{what}不存在或不属于该患者 / the referenced {model.__name__} does not exist "
                         "or belongs to another patient", code="not-found")
    return target


def stored_event(row) -> dict[str, Any]:
    """The payload of a ``result.stored`` / ``order.stored`` outbox event."""
    return {"organization_id": row.organization_id, "code": row.code or row.code_local,
            "identifier": {"system": row.identifier_system, "value": row.identifier_value}}


def insert_or_winner(session: Session, model, values: dict[str, Any], data: _ResultIn) -> Stored:
    """Insert one row in its own savepoint. A concurrent sender of the same identifier loses the race on
    the unique constraint and gets the winner's row back, as a repeat would."""
    try:
        with session.begin_nested():
            (row,) = repo.insert_rows(session, model, [values])
    except IntegrityError:
        found = repo.by_identifier(session, model, data.organization_id, data.identifier_system,
                                   data.identifier_value)
        if found is None:
            raise
        return Stored(found, False)
    return Stored(row, True)


def store_one(session: Session, principal: Principal, model, data: _ResultIn, fields: dict[str, Any],
              *, event: str, audit_now: bool = True, outbox: list[dict[str, Any]] | None = None) -> Stored:
    """Insert one row of ``model`` from ``data`` and ``fields`` unless the sender's identifier is known.
    ``audit_now`` False: the caller writes this row's audit event together with others; ``outbox`` given:
    the outbox row is appended to it for the caller to write with others (one statement)."""
    check_write(session, principal, data.organization_id)
    found = repo.by_identifier(session, model, data.organization_id, data.identifier_system, data.identifier_value)
    if found is not None:
        return Stored(found, False)
    rec = resolve_patient(session, data)
    now = utcnow()
    values = {"id": new_id(), "created_at": now, "updated_at": now, "person_id": rec.person_id,
              "patient_record_id": rec.id, "resource": data.resource or {},
              **{k: getattr(data, k) for k in COMMON}, **fields}
    inserted = insert_or_winner(session, model, values, data)
    if not inserted.created:
        return inserted
    row = inserted.row
    rtype = model.__name__
    if audit_now:
        audit.record(session, principal, "create", person_ids=[rec.person_id], what=[f"{rtype}/{row.id}"])
    if outbox is not None:
        outbox.append(event_row(event, rtype, row.id, stored_event(row), person_id=rec.person_id))
    else:
        record_event(session, event, rtype, row.id, stored_event(row), person_id=rec.person_id)
    return Stored(row, True)
