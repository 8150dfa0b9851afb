"""The inbox: receive (parse → store → the ACK to send) and process (run the handler, with retries).
Services flush and never commit (STYLE 2): the MLLP listener commits ``receive`` *before* it writes the
ACK, and commits each ``process`` on its own (STYLE 7)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from onetrip.interop.hl7v2 import parser, vxu
from onetrip.interop.hl7v2.handlers import HANDLERS
from onetrip.interop.hl7v2.models import InboxMessage
from onetrip.kit.clock import utcnow
from onetrip.kit.errors import ApiError, NotFound
from onetrip.kit.masking import scrub

log = logging.getLogger("onetrip.hl7v2")

STORED = "已保存 / message stored"
REUSE_MARK = "#reuse-"  # a conflicting message's key: <MSH-10>#reuse-N


@dataclass(frozen=True)
class Receipt:
    ack: bytes
    inbox_id: str | None  # None when the input could not be identified (no MSH-10): nothing stored
    status: str | None
    duplicate: bool = False


def receive(session: Session, raw: bytes) -> Receipt:
    """Store the message (unless it cannot be identified) and return the ACK to send once committed.
    A duplicate (same sender + MSH-10) gets the stored ACK back; a refused message whose sender corrects
    it and resends under the same control id is evaluated again."""
    problem: parser.HL7Problem | None
    try:
        msg: parser.Message | None = parser.parse(raw)
        problem = parser.check(msg)
        if problem is None and msg.message_type in vxu.CHECKS:  # VXU: patient and vaccine known before AA
            problem = vxu.CHECKS[msg.message_type](session, msg)
    except parser.HL7Error as e:
        msg, problem = parser.parse_lenient(raw), e.problem
    if problem is not None:
        log.warning(scrub(f"HL7 拒收 / refused {problem.ack_code} {problem.code}: {problem.text}"))
        ack_code, text, status = problem.ack_code, problem.text, "rejected"
    else:
        assert msg is not None
        ack_code, text = "AA", STORED
        status = "received"  # every accepted type has a handler (ADT^A04/A08/A40, ORU^R01, VXU^V04)
    if msg is None or not msg.control_id.strip() or len(msg.control_id) > 64:
        return Receipt(parser.build_ack(msg, ack_code, text, problem=problem, now=utcnow()), None, None)

    ack = parser.build_ack(msg, ack_code, text, problem=problem, now=utcnow())
    fields = {"message_type": msg.message_type[:16], "version": msg.version[:8], "charset": msg.charset[:32],
              "raw": raw, "status": status, "ack_code": ack_code, "ack": ack, "attempts": 0,
              "last_error": None if problem is None else problem.text, "received_at": utcnow(),
              "processed_at": None}
    # Insert first: a new message (nearly every one) costs no look-up; the unique (sender, control id)
    # finds a repeat.
    row = InboxMessage(sender=msg.sender[:200], control_id=msg.control_id, **fields)
    try:
        with session.begin_nested():
            session.add(row)
        return Receipt(ack, row.id, status)
    except IntegrityError:
        pass
    existing = _by_key(session, msg.sender, msg.control_id)
    assert existing is not None
    if existing.raw == raw and not (existing.status == "rejected" and status == "received"):
        # a repeat (or a concurrent copy) gets its ACK; the same bytes refused before for what we held (VXU:
        # an unknown patient since registered) and acceptable now are evaluated again, as a corrected resend
        return Receipt(existing.ack, existing.id, existing.status, duplicate=True)
    if existing.status == "rejected":  # a corrected resend of a refused message
        for k, v in fields.items():
            setattr(existing, k, v)
        session.flush()
        return Receipt(ack, existing.id, status)
    return _conflict(session, msg, raw, fields, existing)


def _conflict(session: Session, msg: parser.Message, raw: bytes, fields: dict,
              existing: InboxMessage) -> Receipt:
    """The sender reused the control id of a stored message for different content (e.g. its counter was
    reset): refuse it (AR, ERR-3 205) rather than answer the stored AA and drop it, and keep it as
    ``conflict`` under ``<MSH-10>#reuse-N`` for a person to decide (``rerun`` applies it). The same
    conflicting bytes again get that row's ACK."""
    problem = parser.HL7Problem(
        "AR", parser.DUPLICATE_KEY, f"控制号 {msg.control_id} 已用于另一条消息（{existing.message_type}，"
        f"{existing.received_at:%Y-%m-%d %H:%M} UTC），本消息未处理，已留待人工核查 / control id "
        f"{msg.control_id} (MSH-10) was already used for a different message ({existing.message_type}); "
        f"this one is not applied and is kept for review; send new messages with new control ids",
        "MSH^1^10")
    log.warning(scrub(f"HL7 控制号重用 / control id reused by {msg.sender}: {msg.control_id}"))
    prefix = f"{msg.control_id[:50]}{REUSE_MARK}"
    for _ in range(5):  # a concurrent copy may take the same number: count again
        earlier = list(session.scalars(select(InboxMessage).where(
            InboxMessage.sender == msg.sender[:200], InboxMessage.control_id.startswith(prefix, autoescape=True))))
        same = next((r for r in earlier if r.raw == raw), None)
        if same is not None:
            return Receipt(same.ack, same.id, same.status, duplicate=True)
        ack = parser.build_ack(msg, "AR", problem.text, problem=problem, now=utcnow())
        row = InboxMessage(sender=msg.sender[:200], control_id=f"{prefix}{len(earlier) + 1}",
                           **{**fields, "status": "conflict", "ack_code": "AR", "ack": ack,
                              "last_error": problem.text})
        try:
            with session.begin_nested():
                session.add(row)
            return Receipt(ack, row.id, "conflict")
        except IntegrityError:
            continue
    raise ApiError("控制号冲突无法保存 / could not store the conflicting message", status=503)


def _by_key(session: Session, sender: str, control_id: str) -> InboxMessage | None:
    return session.scalar(select(InboxMessage).where(InboxMessage.sender == sender[:200],
                                                     InboxMessage.control_id == control_id))


def process(session: Session, inbox_id: str, *, max_attempts: int = 3) -> InboxMessage:
    """Run the handler of a ``received`` message once. Its changes are kept only if it succeeds (savepoint);
    a failure is recorded and the message stays ``received`` for a retry until ``max_attempts``, then
    ``failed``."""
    row = session.get(InboxMessage, inbox_id, with_for_update=True)
    if row is None:
        raise NotFound("收件箱中没有此消息 / no such inbox message")
    _apply(row, _run(session, row, max_attempts))
    session.flush()
    return row


def process_many(session: Session, inbox_ids: list[str], *, max_attempts: int = 3) -> list[InboxMessage]:
    """``process`` for several messages, in the order given, in one transaction: their inbox rows locked by
    one statement, each handler in its own savepoint as in ``process``, and the outcomes written together
    at the end (one UPDATE statement for the batch, not one per message)."""
    rows = {r.id: r for r in session.scalars(select(InboxMessage).where(InboxMessage.id.in_(set(inbox_ids)))
                                             .with_for_update())}
    missing = [i for i in inbox_ids if i not in rows]
    if missing:
        raise NotFound(f"收件箱中没有此消息 / no such inbox message: {missing[0]}")
    changes: dict[str, dict | None] = {}
    for inbox_id in inbox_ids:
        if inbox_id not in changes:  # an id queued twice runs once
            changes[inbox_id] = _run(session, rows[inbox_id], max_attempts)
    for inbox_id, change in changes.items():  # after every handler: a savepoint would flush each row
        _apply(rows[inbox_id], change)
    session.flush()
    return [rows[i] for i in inbox_ids]


def _apply(row: InboxMessage, changes: dict | None) -> None:
    for key, value in (changes or {}).items():
        setattr(row, key, value)


def _run(session: Session, row: InboxMessage, max_attempts: int) -> dict | None:
    """Run the message's handler in a savepoint; the inbox row's new values (None: nothing to do). The row
    itself is not changed here: a handler's savepoint would flush it, one UPDATE per message."""
    if row.status != "received":
        return None
    handler = HANDLERS.get(row.message_type) or vxu.HANDLERS.get(row.message_type)
    if handler is None:  # an accepted type whose handler does not exist (yet): kept for a later re-run
        return {"status": "pending-handler"}
    attempts = row.attempts + 1  # written with the outcome: one UPDATE of the inbox row per run
    try:
        with session.begin_nested():
            outcome = handler(session, parser.parse(row.raw))
    except Exception as e:  # noqa: BLE001 — any handler failure is recorded on the message, never raised
        detail = e.message if isinstance(e, ApiError) else str(e)
        last_error = f"{type(e).__name__}: {detail}"[:4000]
        log.warning(scrub(f"HL7 处理失败 / handler failed ({attempts}/{max_attempts}) {row.sender} "
                          f"{row.control_id} {row.message_type}: {last_error}"))
        return {"attempts": attempts, "last_error": last_error,
                "status": "failed" if attempts >= max_attempts else "received"}
    log.info(scrub(f"HL7 已处理 / processed {row.sender} {row.control_id} {row.message_type}: {outcome}"))
    return {"attempts": attempts, "status": "processed", "last_error": None, "processed_at": utcnow()}


def runnable_ids(session: Session) -> list[str]:
    """Messages whose handler has not succeeded yet and may be (re)tried, oldest first."""
    return list(session.scalars(select(InboxMessage.id).where(InboxMessage.status == "received")
                                .order_by(InboxMessage.received_at)))


def rerun(session: Session, inbox_id: str) -> InboxMessage:
    """Re-run a failed (or ``pending-handler``) message's handler now, once more; for a ``conflict`` (a
    reused control id) this is the person's decision to apply it after all."""
    row = session.get(InboxMessage, inbox_id, with_for_update=True)
    if row is None:
        raise NotFound("收件箱中没有此消息 / no such inbox message")
    if row.status == "rejected":
        raise ApiError("被拒收的消息不能重跑，请发送方更正后重发 / a refused message cannot be re-run: the "
                       "sender must correct and resend it", status=409, code="conflict")
    if row.status == "processed":
        return row
    if row.status == "conflict":  # a person decided to apply it after all
        log.info(scrub(f"HL7 人工应用控制号冲突消息 / conflict applied on request: {row.sender} {row.control_id}"))
        row.attempts = 0
    row.status = "received"
    session.flush()
    return process(session, inbox_id, max_attempts=row.attempts + 1)


def list_messages(session: Session, *, status: str | None = None, limit: int = 50) -> list[InboxMessage]:
    q = select(InboxMessage).order_by(InboxMessage.received_at.desc()).limit(limit)
    if status:
        q = q.where(InboxMessage.status == status)
    return list(session.scalars(q))
