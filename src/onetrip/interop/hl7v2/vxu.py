"""HL7 v2 VXU^V04 (unsolicited vaccination record update, issue 20 point 7): doses another clinic gave, stored
as vaccination history through the immunization domain's interface so that they count in the forecast.

Unlike ADT and ORU, what a VXU needs is checked *before* it is acknowledged (``check``, called by
``service.receive``): the child must be known (PID-3 MRN at the sending institution, as ORU^R01 finds its
patient), every RXA must carry a date (RXA-3) and a vaccine we know (RXA-5: a nip-vaccine code or a mapped CVX
code), and RXA-20 / RXR codes must be ones we understand. Anything else is answered AE with an ERR naming the
field and the message is kept as ``rejected`` — nothing of it is stored in the vaccination table. An accepted
message is stored in the inbox and ACKed AA (save before ACK), then its handler (``store``) writes every RXA in
one savepoint (all or nothing), idempotent on the dose's identifier (ORC-3 filler order number, else ORC-2,
else sender + MRN + vaccine + RXA-3): the same VXU resent, under its control id or a new one, adds nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from onetrip.identity import repository as identity_repo
from onetrip.immunization.interface import CVX_TO_NIP, VACCINES, HistoryDose, record_history, validate_history
from onetrip.interop.hl7v2.handlers import HandlerError, _identifiers, hl7_datetime, principal_for
from onetrip.interop.hl7v2.parser import (
    DATA_TYPE_ERROR,
    REQUIRED_FIELD_MISSING,
    SEGMENT_SEQUENCE_ERROR,
    TABLE_VALUE_NOT_FOUND,
    UNKNOWN_KEY_IDENTIFIER,
    HL7Problem,
    Message,
    hl7_date,
)
from onetrip.kit.errors import ApiError
from onetrip.kit.principal import Principal
from onetrip.persons.models import PatientRecord

CVX_SYSTEMS = {"CVX", "HL70292"}
# RXA-20 completion status (HL7 table 0322): complete / partially administered count; refused / not
# administered are kept as not-done (they do not count in the forecast).
COMPLETION = {"": "completed", "CP": "completed", "PA": "completed", "RE": "not-done", "NA": "not-done"}
# RXR-1 route (HL7 table 0162, and the NCI thesaurus codes of the CDC guide) → our route codes.
ROUTES = {"IM": "IM", "SC": "SC", "ID": "ID", "PO": "PO", "C28161": "IM", "C38299": "SC", "C38238": "ID",
          "C38288": "PO"}
# RXR-2 site (HL7 table 0163) → the desk's site names; another code is kept as sent.
SITES = {"LD": "left-deltoid", "RD": "right-deltoid", "LT": "left-thigh", "RT": "right-thigh",
         "LVL": "left-thigh", "RVL": "right-thigh", "LA": "left-arm", "RA": "right-arm", "LLFA": "left-forearm",
         "RLFA": "right-forearm", "LG": "left-gluteus", "RG": "right-gluteus"}


class VxuProblem(Exception):
    def __init__(self, problem: HL7Problem) -> None:
        super().__init__(problem.text)
        self.problem = problem


def _ae(code: str, where: str, zh: str, en: str) -> VxuProblem:
    return VxuProblem(HL7Problem("AE", code, f"{zh} / {en}", where))


@dataclass
class _Group:
    orc: list[str] | None
    rxa: list[str]
    rxr: list[str] | None = None


def _groups(msg: Message) -> list[_Group]:
    """Each RXA with the ORC before it and the RXR after it."""
    groups: list[_Group] = []
    orc = None
    for seg in msg.segments:
        if seg[0] == "ORC":
            orc = seg
        elif seg[0] == "RXA":
            groups.append(_Group(orc, seg))
            orc = None
        elif seg[0] == "RXR" and groups and groups[-1].rxr is None:
            groups[-1].rxr = seg
    return groups


def _patient(session: Session, msg: Message, principal: Principal) -> PatientRecord:
    if msg.segment("PID") is None:
        raise _ae(SEGMENT_SEQUENCE_ERROR, "PID", "缺少 PID 段", "PID segment missing")
    mrn, _ = _identifiers(msg, msg.field("PID", 3))
    if not mrn:
        raise _ae(REQUIRED_FIELD_MISSING, "PID^1^3", "PID-3 中没有病案号 (类型 MR)",
                  "PID-3 carries no MRN (identifier type MR)")
    record = identity_repo.record_by_mrn(session, principal.organization_id, mrn)
    if record is None or record.deleted_at is not None:
        raise _ae(UNKNOWN_KEY_IDENTIFIER, "PID^1^3", f"病案号 {mrn} 在机构 {msg.sending_facility} 不存在，请先登记"
                  f"患者（ADT^A04）后重发", f"no patient with MRN {mrn!r} at {msg.sending_facility!r}: register "
                  f"the child (ADT^A04), then resend this message")
    return record


def _vaccine(msg: Message, raw: str, where: str) -> str:
    """RXA-5: a nip-vaccine code (any coding system but CVX) or a CVX code we map, primary or alternate."""
    first = (msg.repetitions(raw) or [""])[0]
    sent = []
    for i in (1, 4):
        code, system = msg.component(first, i).strip(), msg.component(first, i + 2).strip().upper()
        if not code:
            continue
        sent.append(f"{code}^{system}" if system else code)
        if system in CVX_SYSTEMS:
            if code in CVX_TO_NIP:
                return CVX_TO_NIP[code]
        elif code in VACCINES:
            return code
    if not sent:
        raise _ae(REQUIRED_FIELD_MISSING, where, "缺少疫苗代码 RXA-5", "required field missing: RXA-5 vaccine code")
    raise _ae(TABLE_VALUE_NOT_FOUND, where, f"未知疫苗代码 {', '.join(sent)[:60]}（RXA-5 须为国家免疫规划疫苗代码或已对照的 CVX "
              f"代码）", f"unknown vaccine code {', '.join(sent)[:60]!r} in RXA-5: send a nip-vaccine code "
              f"({', '.join(VACCINES)}) or a mapped CVX code ({', '.join(sorted(CVX_TO_NIP))})")


def _person_name(msg: Message, raw: str) -> str | None:
    """An XCN (RXA-10): id^family^given → 张三 / Ann Lee."""
    first = (msg.repetitions(raw) or [""])[0]
    family, given = msg.component(first, 2).strip(), msg.component(first, 3).strip()
    if family.isascii() and given.isascii() and family and given:
        return f"{given} {family}"[:128]
    return (family + given)[:128] or None


def _external_id(msg: Message, g: _Group, mrn: str, code: str) -> str:
    base = f"urn:onetrip:hl7v2:{msg.sending_facility}"
    for n in (3, 2):  # ORC-3 filler order number (the CDC guide's immunization id), else ORC-2 placer's
        value = msg.component(msg.field("ORC", n, segment=g.orc), 1).strip() if g.orc else ""
        if value:
            return f"{base}:immunization|{value}"[:200]
    when = msg.component(msg.field("RXA", 3, segment=g.rxa), 1).strip()
    return f"{base}:rxa|{mrn}-{code}-{when}"[:200]


def _dose(msg: Message, n: int, g: _Group, record: PatientRecord) -> HistoryDose:
    f = lambda k: msg.field("RXA", k, segment=g.rxa)  # noqa: E731
    loc = lambda k: f"RXA^{n}^{k}"  # noqa: E731
    if not f(3).strip():
        raise _ae(REQUIRED_FIELD_MISSING, loc(3), "缺少接种时间 RXA-3", "required field missing: RXA-3 date/time")
    try:
        when = hl7_datetime(msg.component(f(3), 1))
    except OverflowError:  # year 9999 with a negative offset
        when = None
    if when is None:
        raise _ae(DATA_TYPE_ERROR, loc(3), "RXA-3 不是有效的日期时间", "RXA-3 is not a valid date/time")
    code = _vaccine(msg, f(5), loc(5))
    completion = msg.component(f(20), 1).strip().upper()
    if completion not in COMPLETION:
        raise _ae(TABLE_VALUE_NOT_FOUND, loc(20), f"未知完成状态 {completion[:10]}", f"RXA-20 completion status "
                  f"{completion[:10]!r} is not CP, PA, RE or NA")
    if msg.component(f(21), 1).strip().upper() == "D":
        raise _ae(TABLE_VALUE_NOT_FOUND, loc(21), "不接受删除（RXA-21 D），请联系接种门诊更正记录",
                  "RXA-21 D (delete) is not accepted: ask the clinic to mark the record entered-in-error")
    expiry = None
    if f(16).strip():
        expiry = hl7_date(msg.component(f(16), 1))
        if expiry is None:
            raise _ae(DATA_TYPE_ERROR, loc(16), "RXA-16 不是有效日期", "RXA-16 expiration date is not a valid date")
    notes = msg.component((msg.repetitions(f(9)) or [""])[0], 1).strip()
    manufacturer = msg.component(f(17), 2).strip() or msg.component(f(17), 1).strip()
    place = msg.component(f(11), 4).split(msg.subcomponent_sep)[0].strip()
    route = site = None
    if g.rxr is not None:
        raw_route = msg.component(msg.field("RXR", 1, segment=g.rxr), 1).strip().upper()
        if raw_route:
            route = ROUTES.get(raw_route)
            if route is None:
                raise _ae(TABLE_VALUE_NOT_FOUND, f"RXR^{n}^1", f"未知接种途径 {raw_route[:10]}",
                          f"RXR-1 route {raw_route[:10]!r} is not IM, SC, ID or PO")
        raw_site = msg.component(msg.field("RXR", 2, segment=g.rxr), 1).strip().upper()
        site = SITES.get(raw_site, raw_site[:32]) or None
    mrn, _ = _identifiers(msg, msg.field("PID", 3))
    return HistoryDose(
        patient_record_id=record.id, vaccine_code=code, occurred_at=when, source="hl7v2",
        external_id=_external_id(msg, g, mrn or "", code), status=COMPLETION[completion],
        primary_source=notes != "01",  # RXA-9 00 new record (primary source), 01 historical
        recorded_at_name=place[:200] or None, lot_number=msg.component(f(15), 1).strip()[:64] or None,
        expiry=expiry, manufacturer=manufacturer[:128] or None, performer_name=_person_name(msg, f(10)),
        site=site, route=route,
        where=(("occurred_at", loc(3)), ("vaccine_code", loc(5)), ("status", loc(20)), ("lot_number", loc(15)),
               ("manufacturer", loc(17)), ("performer_name", loc(10)), ("recorded_at_name", loc(11)),
               ("site", f"RXR^{n}^2"), ("route", f"RXR^{n}^1"), ("external_id", "ORC^1^3")))


def _read(session: Session, msg: Message) -> tuple[Principal, list[HistoryDose]]:
    """The sender, and every RXA as a dose of the PID-3 child, each checked; ``VxuProblem`` otherwise."""
    try:
        principal = principal_for(session, msg)
    except HandlerError as e:
        raise _ae(UNKNOWN_KEY_IDENTIFIER, "MSH^1^4", "未知发送机构 MSH-4", str(e)) from None
    record = _patient(session, msg, principal)
    groups = _groups(msg)
    if not groups:
        raise _ae(SEGMENT_SEQUENCE_ERROR, "RXA", "缺少 RXA 段", "no RXA segment: nothing to record")
    doses = [_dose(msg, n, g, record) for n, g in enumerate(groups, start=1)]
    for dose in doses:
        try:
            validate_history(dose, record.birth_date)
        except ApiError as e:
            where = (e.expression or ["RXA"])[0]
            raise VxuProblem(HL7Problem("AE", DATA_TYPE_ERROR, e.message, where)) from None
    return principal, doses


def check(session: Session, msg: Message) -> HL7Problem | None:
    """What must hold before a VXU is acknowledged AA (nothing is written)."""
    try:
        _read(session, msg)
    except VxuProblem as e:
        return e.problem
    return None


def store(session: Session, msg: Message) -> str:
    """VXU^V04 after its ACK: every RXA stored as history of the child (all in the caller's savepoint)."""
    try:
        principal, doses = _read(session, msg)
    except VxuProblem as e:
        raise HandlerError(e.problem.text) from None
    out = []
    for dose in doses:
        v, created = record_history(session, principal, dose)
        out.append(f"Immunization/{v.id}" + ("" if created else " (known)"))
    return "stored " + ", ".join(out)


CHECKS: dict[str, Callable[[Session, Message], HL7Problem | None]] = {"VXU^V04": check}
HANDLERS: dict[str, Callable[[Session, Message], str]] = {"VXU^V04": store}
