"""Audit rows. Append-only: database triggers refuse UPDATE and DELETE (see the migration), and each row
carries the HMAC-SHA256 (under a key held outside the database; plain SHA-256 for rows from before migration
0014) of its content and of the previous row of its chain, so an edit made by someone who disabled the
triggers is still found by ``onetrip audit verify`` — even when they rebuilt the chain after it.

There are several chains (one ``audit_chain_head`` row each, 32 from migration 0011): a transaction
appends to one chain, picking one no other transaction holds, so concurrent writers do not queue behind a
single head lock. Each chain is linear and verified on its own (``chain``, ``chain_seq`` = position)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Index, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from onetrip.db.base import Base, JSONVariant


class AuditEvent(Base):
    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_person_recorded", "entity_person_id", "recorded_at"),
        Index("ix_audit_event_recorded", "recorded_at"),
        Index("uq_audit_event_chain_position", "chain", "chain_seq", unique=True),
    )
    # BigInteger on PostgreSQL, INTEGER PRIMARY KEY (rowid) on SQLite; assigned by the database (a
    # sequence / the rowid) at insert. The row's id and display order; the chain position is below.
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    chain: Mapped[int] = mapped_column(SmallInteger, server_default="1", doc="audit_chain_head.id")
    chain_seq: Mapped[int] = mapped_column(BigInteger, server_default="0",
                                           doc="position in its chain, 1, 2, 3 ... without gaps (hashed)")
    recorded_at: Mapped[dt.datetime]
    type_code: Mapped[str] = mapped_column(String(32), doc="DICOM/FHIR audit event type, e.g. rest, 110113")
    subtype: Mapped[str | None] = mapped_column(String(32), doc="read | vread | search-type | create | login")
    action: Mapped[str] = mapped_column(String(1), doc="C R U D E")
    outcome: Mapped[str] = mapped_column(String(2), doc="0 success, 4 minor failure, 8 serious, 12 major")
    outcome_desc: Mapped[str | None] = mapped_column(String(500))
    agent_user_id: Mapped[str | None] = mapped_column(String(32))
    agent_client_id: Mapped[str | None] = mapped_column(String(64))
    agent_name: Mapped[str | None] = mapped_column(String(64))
    agent_org_id: Mapped[str | None] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(16), doc="api | fhir | web | cli | hl7 | job")
    network_address: Mapped[str | None] = mapped_column(String(64))
    purpose_of_use: Mapped[str | None] = mapped_column(String(16), doc="ETREAT when break-the-glass")
    entity_person_id: Mapped[str | None] = mapped_column(String(32))
    entity_what: Mapped[str | None] = mapped_column(String(128), doc="Patient/abc, Organization/xyz")
    query: Mapped[str | None] = mapped_column(String(1000), doc="search query string, masked")
    detail: Mapped[dict | None] = mapped_column(JSONVariant)
    prev_hash: Mapped[str] = mapped_column(String(64))
    row_hash: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str | None] = mapped_column(
        String(16), doc="id of the key (held outside the database) whose HMAC-SHA256 row_hash is; NULL: a row "
                        "written before migration 0014, hashed with plain SHA-256 (legacy)")


class AuditChainHead(Base):
    """One row per chain (``id`` = chain number): its last position and hash. A writer locks one head row
    until commit, so each chain stays linear; other writers take another chain (SKIP LOCKED)."""

    __tablename__ = "audit_chain_head"
    id: Mapped[int] = mapped_column(primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))
    # The archive marker (issue 26): rows 1..archived_seq of this chain were exported (`onetrip audit archive`)
    # and removed; archived_hash is the row_hash of the last one (the next row links to it) and archived_seal
    # "kid:HMAC" of (chain, archived_seq, archived_hash) under an audit key, so a marker cannot be made up
    # to hide deleted rows. The append-only trigger lets DELETE through only for rows at or below it.
    archived_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    archived_hash: Mapped[str | None] = mapped_column(String(64))
    archived_seal: Mapped[str | None] = mapped_column(String(100))
