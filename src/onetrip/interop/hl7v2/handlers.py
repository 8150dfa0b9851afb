"""What an accepted message does, run after its ACK (issue 4 §2): ADT A04 registers, A08 updates (or
registers a record we have not seen), A40 merges two registrations' persons through the MPI; ORU^R01
stores each OBR group as a report with its OBX observations in the shared results store.

The handlers act as the system principal ``hl7v2:<sending application>`` of the institution named by
MSH-4 (``Organization.code``), so the identity service's access checks and audit apply as for any client.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from onetrip.identity import mpi
from onetrip.identity import repository as identity_repo
from onetrip.identity import service as identity
from onetrip.identity.schemas import PatientInput
from onetrip.interop.hl7v2.parser import Message, hl7_date
from onetrip.kit.clock import LOCAL_TZ
from onetrip.kit.principal import Principal
from onetrip.kit.scopes import parse_scopes
from onetrip.persons.models import PatientRecord
from onetrip.records import rules as record_rules
from onetrip.records import service as records
from onetrip.records.schemas import ObservationIn, ReportIn
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
    # The MLLP worker handles a batch of messages in one session, mostly from the same few senders: each
    # sending facility's organization is looked up once per session.
    known = session.info.setdefault("hl7v2.organizations", {})
    org = known.get(msg.sending_facility)
    if org is None:
        org = session.scalar(select(Organization).where(Organization.code == msg.sending_facility))
        if org is not None:
            known[msg.sending_facility] = org
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


# ── ORU^R01 ─────────────────────────────────────────────────────────────────────────────────────────
CHINA_TZ = LOCAL_TZ  # a time without an offset is local (Asia/Shanghai)
LOINC = "http://loinc.org"
LOINC_SYSTEMS = {"LN", "LOINC"}
# HL7 table 0123 (OBR-25) / 0085 (OBX-11) result status → FHIR DiagnosticReport / Observation status.
RESULT_STATUS = {"F": "final", "C": "corrected", "P": "preliminary", "R": "preliminary", "S": "preliminary",
                 "A": "partial", "I": "registered", "O": "registered", "X": "cancelled", "D": "entered-in-error",
                 "W": "entered-in-error", "U": "final", "M": "amended"}
TEXT_TYPES = {"TX", "FT"}  # report text: goes to the report's conclusion
_TS = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.\d+)?([+-]\d{4})?$")
_NUMBER = r"[-+]?\d+(?:\.\d+)?"
_RANGE = re.compile(rf"^\s*({_NUMBER})\s*(?:-|~|–|—|\^)\s*({_NUMBER})\s*$")
_BOUND = re.compile(rf"^\s*(<=|>=|<|>|≤|≥)\s*({_NUMBER})\s*$")


def hl7_datetime(value: str) -> dt.datetime | None:
    """An HL7 TS/DTM (``YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ]``, component 1) → aware UTC; no offset =
    China time. None when empty or not a timestamp."""
    m = _TS.match(value.strip())
    if m is None:
        return None
    y, mo, d, h, mi, sec, tz = m.groups()
    if tz:
        sign = 1 if tz[0] == "+" else -1
        zone = dt.timezone(sign * dt.timedelta(hours=int(tz[1:3]), minutes=int(tz[3:5])))
    else:
        zone = CHINA_TZ
    try:
        return dt.datetime(int(y), int(mo or 1), int(d or 1), int(h or 0), int(mi or 0), int(sec or 0),
                           tzinfo=zone).astimezone(dt.UTC)
    except ValueError:
        return None


def _ts_field(msg: Message, raw: str) -> dt.datetime | None:
    return hl7_datetime(msg.component(raw, 1)) if raw.strip() else None


def _coded(msg: Message, raw: str) -> dict[str, str | None]:
    """A CE/CWE (first repetition) → code / code_system / code_local / display. A LOINC triplet (primary
    or alternate) is the standard code; any other coding system's code is kept as the local code."""
    first = (msg.repetitions(raw) or [""])[0]
    out: dict[str, str | None] = {"code": None, "code_system": None, "code_local": None, "display": None}
    for i in (1, 4):
        code = msg.component(first, i).strip()
        system = msg.component(first, i + 2).strip().upper()
        if not code:
            continue
        if system in LOINC_SYSTEMS and out["code"] is None:
            out["code"], out["code_system"] = code[:64], LOINC
        elif out["code_local"] is None:
            out["code_local"] = code[:64]
        out["display"] = out["display"] or (msg.component(first, i + 1).strip()[:200] or None)
    return out


def _status(msg: Message, raw: str) -> str:
    return RESULT_STATUS.get(msg.component(raw, 1).strip().upper(), "final")


def _text(msg: Message, raw: str) -> str:
    """ST/TX/FT value: repetitions are lines (escape sequences resolved)."""
    return "\n".join(msg.unescape(rep) for rep in msg.repetitions(raw)).strip()


def _reference_range(text: str) -> dict:
    if not text:
        return {}
    if m := _RANGE.match(text):
        return {"reference_low": float(m.group(1)), "reference_high": float(m.group(2))}
    if m := _BOUND.match(text):
        key = "reference_high" if m.group(1) in ("<", "<=", "≤") else "reference_low"
        return {key: float(m.group(2))}
    return {"reference_text": text[:100]}


def _observation(msg: Message, obx: list[str], filler: str, system: str, index: int) -> ObservationIn | None:
    """One OBX (NM, ST, CE/CWE, or any other type kept as text). None for an OBX without a value."""
    f = lambda n: msg.field("OBX", n, segment=obx)  # noqa: E731
    vtype = f(2).strip().upper()
    raw_value = f(5)
    if not raw_value.strip() or raw_value.strip() == HL7_NULL:
        return None
    value: dict = {}
    if vtype == "NM":
        text = msg.component(raw_value, 1).strip()
        try:
            value["value_quantity"] = float(text)
        except ValueError:  # "<0.1", "阴性" sent as NM: keep what the sender wrote
            value["value_string"] = text[:500]
    elif vtype in ("CE", "CWE", "CNE"):
        coded = _coded(msg, raw_value)
        value["value_string"] = (coded["display"] or coded["code"] or coded["code_local"] or "")[:500]
    else:  # ST (and SN, DT ... sent as text)
        value["value_string"] = _text(msg, raw_value)[:500]
    if value.get("value_quantity") is None and not value.get("value_string"):
        return None
    set_id = f(1).strip() or str(index)
    flags = [msg.component(r, 1).strip() for r in msg.repetitions(f(8))]
    unit = msg.component(f(6), 1).strip() or msg.component(f(6), 2).strip()
    return ObservationIn(
        identifier_system=f"{system}:obx", identifier_value=f"{filler}-{set_id}"[:100],
        status=_status(msg, f(11)), **_coded(msg, f(3)), effective_at=_ts_field(msg, f(14)),
        unit=unit[:32] or None, **_reference_range(msg.unescape(f(7)).strip()),
        interpretation=next((x[:8] for x in flags if x), None), **value)


def _report_groups(msg: Message) -> list[tuple[list[str], list[list[str]], list[str]]]:
    """(OBR, its OBX segments, its notes) for each OBR in the message; NTE before the first OBR (patient
    notes) are ignored."""
    groups: list[tuple[list[str], list[list[str]], list[str]]] = []
    for seg in msg.segments:
        if seg[0] == "OBR":
            groups.append((seg, [], []))
        elif groups and seg[0] == "OBX":
            groups[-1][1].append(seg)
        elif groups and seg[0] == "NTE":
            note = _text(msg, msg.field("NTE", 3, segment=seg))
            if note:
                groups[-1][2].append(note)
    return groups


def store_results(session: Session, msg: Message) -> str:
    """ORU^R01: each OBR (with its OBX and NTE) becomes a report of the PID-3 patient's record at the
    sending institution, stored through ``records.service.store_report`` (idempotent on OBR-3)."""
    principal = principal_for(session, msg)
    if msg.segment("PID") is None:
        raise HandlerError("缺少 PID 段 / PID segment missing")
    mrn, _ = _identifiers(msg, msg.field("PID", 3))
    if not mrn:
        raise HandlerError("PID-3 中没有病案号 (类型 MR) / PID-3 carries no MRN (identifier type MR)")
    record = identity_repo.record_by_mrn(session, principal.organization_id, mrn)
    if record is None or record.deleted_at is not None:
        raise HandlerError(f"病案号 {mrn} 在机构 {msg.sending_facility} 不存在，请先登记患者（ADT^A04）后重跑 / no "
                           f"patient with MRN {mrn!r} at {msg.sending_facility!r}: register it (ADT^A04), then "
                           f"re-run this message")
    groups = _report_groups(msg)
    if not groups:
        raise HandlerError("缺少 OBR 段 / no OBR segment: nothing to store")
    system = f"urn:onetrip:hl7v2:{msg.sending_facility}:filler-order"[:200]
    out = []
    for n, (obr, obxs, notes) in enumerate(groups, start=1):
        f = lambda k, obr=obr: msg.field("OBR", k, segment=obr)  # noqa: E731
        filler = msg.component(f(3), 1).strip()
        if not filler:
            raise HandlerError(f"第 {n} 个 OBR 缺少 OBR-3 报告号 / OBR #{n} has no filler order number (OBR-3)")
        effective = _ts_field(msg, f(7)) or _ts_field(msg, f(22)) or _ts_field(msg, msg.field("MSH", 7))
        if effective is None:
            raise HandlerError(f"报告 {filler} 没有检查时间 (OBR-7) / report {filler!r} has no observation time "
                               f"(OBR-7)")
        category, section = record_rules.classify([msg.component(f(24), 1).strip()])
        texts = [_text(msg, msg.field("OBX", 5, segment=o)) for o in obxs
                 if msg.field("OBX", 2, segment=o).strip().upper() in TEXT_TYPES]
        observations = [o for i, seg in enumerate(obxs, start=1)
                        if msg.field("OBX", 2, segment=seg).strip().upper() not in TEXT_TYPES
                        and (o := _observation(msg, seg, filler, system, i)) is not None]
        conclusion = "\n".join(t for t in [*texts, *notes] if t) or None
        status = _status(msg, f(25))
        if status == "final" and any(o.status == "corrected" for o in observations):
            status = "corrected"  # OBX-11 C under a final OBR: the report carries a corrected result
        report = records.store_report(session, principal, ReportIn(
            organization_id=principal.organization_id, patient_record_id=record.id,
            identifier_system=system, identifier_value=filler[:100], status=status,
            **_coded(msg, f(4)), category=category, section=section, effective_at=effective,
            issued=_ts_field(msg, f(22)), conclusion=conclusion, observations=observations))
        out.append(f"DiagnosticReport/{report.id}")
    return "stored " + ", ".join(out)


HANDLERS: dict[str, Callable[[Session, Message], str]] = {
    "ADT^A04": register_or_update,
    "ADT^A08": register_or_update,
    "ADT^A40": merge,
    "ORU^R01": store_results,
}
