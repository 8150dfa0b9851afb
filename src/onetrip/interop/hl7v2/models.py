"""The HL7 v2 inbox (STYLE 7): every message we accept is stored here, committed, before its ACK."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from onetrip.db.base import Base, IdMixin, TimestampMixin
from onetrip.kit.clock import utcnow

# received        stored and ACKed AA; the handler has not succeeded yet (it will be (re)tried)
# processed       the handler ran and its changes are committed
# failed          the handler failed ``attempts`` times; an integration engineer can re-run it
# rejected        stored with the AE/AR we sent (a duplicate gets the same answer)
# pending-handler: an accepted message type with no handler registered yet (none today); waits for one
# conflict        answered AR: the sender reused an MSH-10 of a stored message for different content. Kept
#                 (under ``<MSH-10>#reuse-N``) for a person: ``inbox rerun`` applies it, otherwise it stays
STATUSES = ("received", "processed", "failed", "rejected", "pending-handler", "conflict")


class InboxMessage(IdMixin, TimestampMixin, Base):
    """One HL7 v2 message as received over MLLP."""

    __tablename__ = "hl7_inbox"
    __table_args__ = (
        UniqueConstraint("sender", "control_id"),
        Index("ix_hl7_inbox_status_received", "status", "received_at"),
    )
    sender: Mapped[str] = mapped_column(String(200), doc="MSH-3 sending application | MSH-4 sending facility")
    control_id: Mapped[str] = mapped_column(String(64), doc="MSH-10 message control id")
    message_type: Mapped[str] = mapped_column(String(16), doc="MSH-9 code^event, e.g. ADT^A04")
    version: Mapped[str] = mapped_column(String(8), doc="MSH-12")
    charset: Mapped[str] = mapped_column(String(32), doc="MSH-18 as sent; empty = UTF-8")
    raw: Mapped[bytes] = mapped_column(LargeBinary, doc="the bytes between the MLLP start and end blocks")
    status: Mapped[str] = mapped_column(String(16))
    ack_code: Mapped[str] = mapped_column(String(2), doc="MSA-1 we answered: AA, AE or AR")
    ack: Mapped[bytes] = mapped_column(LargeBinary, doc="the ACK sent; a duplicate gets these bytes again")
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[dt.datetime | None]
