"""What an accepted ADT message does, run after its ACK (issue 4 §2): A04 registers, A08 updates (or
registers a record we have not seen), A40 merges two registrations' persons through the MPI.

The handlers act as the system principal ``hl7v2:<sending application>`` of the institution named by
MSH-4 (``Organization.code``), so the identity service's access checks and audit apply as for any client.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from onetrip.auth.principal import Principal
from onetrip.auth.scopes import parse_scopes
from onetrip.identity import mpi
from onetrip.identity import repository as identity_repo
from onetrip.identity import service as identity
from onetrip.identity.models import PatientRecord
from onetrip.identity.schemas import PatientInput
from onetrip.interop.hl7v2.parser import Message, hl7_date
from onetrip.registry.models import Organization

# PID-3 identifier type codes (CX-5, HL7 table 0203 + the Chinese profile) that carry the resident ID.
RESIDENT_ID_TYPES = {"NNCHN", "ID", "NI"}
MRN_TYPES = {"MR", "PI", "PT"}
HL7_SEX = {"M": "1", "F": "2", "U": "9", "O": "9", "A": "9", "N": "9"}
HL7_NULL = '""'  # an HL7 explicit null: "delete the value we hold"
SCOPES = parse_scopes("system/*.cruds")


class HandlerError(Exception):
    """A message that was accepted but cannot be applied (bilingual text, kept as ``last_error``)."""


def principal_for(session: Session, msg: Message) -> Principal:
    org = session.scalar(select(Organization).where(Organization.code == msg.sending_facility))
    if org is None:
        raise HandlerError(f"未知机构 MSH-4 {msg.sending_facility!r} / unknown sending facility: no "
                           f"organization with this code")
    return Principal(kind="client", id="hl7", name=f"hl7v2:{msg.sending_application}", organization_id=org.id,
                     scopes=SCOPES, source="hl7", raw_scope="system/*.cruds")


def _identifiers(msg: Message, raw: str) -> tuple[str | None, str | None]:
    """(MRN, resident ID) from a CX list (PID-3 or MRG-1)."""
    mrn = resident_id = None
    for rep in msg.repetitions(raw):
        value, kind = msg.component(rep, 1).strip(), msg.component(rep, 5).strip().upper()
        if not value:
            continue
        if kind in RESIDENT_ID_TYPES:
            resident_id = resident_id or value
        elif kind in MRN_TYPES or (not kind and mrn is None):
            mrn = mrn or value
    return mrn, resident_id


def _name(msg: Message) -> str:
    first = (msg.repetitions(msg.field("PID", 5)) or [""])[0]
    family = msg.component(first, 1).split(msg.subcomponent_sep)[0].strip()
    given = msg.component(first, 2).strip()
    if family.isascii() and given.isascii() and family and given:
        return f"{given} {family}"
    return family + given  # 张 + 三 → 张三 (Chinese names have no space)


def _value(msg: Message, raw_field: str, component: int = 1) -> str | None:
    """A component's value; None when absent (keep what we hold), "" for the HL7 null ``""``."""
    if raw_field.strip() == HL7_NULL:
        return ""
    first = (msg.repetitions(raw_field) or [""])[0]
    v = msg.component(first, component).split(msg.subcomponent_sep)[0].strip()
    if v == HL7_NULL:
        return ""
    return v or None


def _patient_input(msg: Message, organization_id: str, current: PatientRecord | None) -> PatientInput:
    mrn, resident_id = _identifiers(msg, msg.field("PID", 3))
    if not mrn:
        raise HandlerError("PID-3 中没有病案号 (类型 MR) / PID-3 carries no MRN (identifier type MR)")
    pid11, pid13 = msg.field("PID", 11), msg.field("PID", 13)
    phone = _value(msg, pid13, 1)
    if phone is None:
        phone = _value(msg, pid13, 12) or _value(msg, pid13, 7)
    sex = _value(msg, msg.field("PID", 8))
    sent = {
        "id_number": resident_id,
        "phone": phone,
        "address_line": _value(msg, pid11, 1),
        "city": _value(msg, pid11, 3),
        "province": _value(msg, pid11, 4),
        "district": _value(msg, pid11, 9),
        "sex": HL7_SEX.get(sex.upper(), "9") if sex else sex,
        "birth_date": hl7_date(msg.field("PID", 7)),
    }
    data: dict = {"organization_id": organization_id, "mrn": mrn, "name": _name(msg)}
    for key, value in sent.items():
        if value is None and current is not None:  # not sent: keep the value we hold (HL7 update rules)
            value = getattr(current, key)
        data[key] = value or None
    return PatientInput(**data)


def register_or_update(session: Session, msg: Message) -> str:
    """ADT^A04 / ADT^A08: the record with this MRN at the sending institution is created or updated."""
    principal = principal_for(session, msg)
    mrn, _ = _identifiers(msg, msg.field("PID", 3))
    current = identity_repo.record_by_mrn(session, principal.organization_id, mrn) if mrn else None
    data = _patient_input(msg, principal.organization_id, current)
    if current is None:
        rec = identity.register(session, principal, data)
        return f"registered Patient/{rec.id}"
    rec = identity.update(session, principal, current.id, data)
    return f"updated Patient/{rec.id}"


def merge(session: Session, msg: Message) -> str:
    """ADT^A40: MRG-1's record (the prior identifier) joins PID-3's record; the MPI merges their persons."""
    principal = principal_for(session, msg)
    survivor_mrn, _ = _identifiers(msg, msg.field("PID", 3))
    prior_mrn, _ = _identifiers(msg, msg.field("MRG", 1))
    if not survivor_mrn or not prior_mrn:
        raise HandlerError("PID-3 与 MRG-1 须含病案号 / PID-3 and MRG-1 must both carry an MRN")
    survivor = identity_repo.record_by_mrn(session, principal.organization_id, survivor_mrn)
    prior = identity_repo.record_by_mrn(session, principal.organization_id, prior_mrn)
    if survivor is None or prior is None:
        missing = survivor_mrn if survivor is None else prior_mrn
        raise HandlerError(f"病案号 {missing} 在该机构不存在 / no record with MRN {missing!r} at this institution")
    a = mpi.surviving_person_id(session, survivor.person_id)
    b = mpi.surviving_person_id(session, prior.person_id)
    if a == b:
        return "already one person"
    m = mpi.merge_persons(session, principal, a, b, reason=f"HL7 ADT^A40 {msg.sender} {msg.control_id}")
    return f"merged Person/{b} into Person/{a} (merge {m.id})"


HANDLERS: dict[str, Callable[[Session, Message], str]] = {
    "ADT^A04": register_or_update,
    "ADT^A08": register_or_update,
    "ADT^A40": merge,
}
