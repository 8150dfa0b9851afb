"""The hash chains, as pure functions over plain dicts (so ``verify`` can be reasoned about alone).

Audit rows are appended to one of several chains (``audit_chain_head`` rows). Within a chain, row n stores
``prev_hash`` = row n−1's ``row_hash`` and ``row_hash = sha256(prev_hash + canonical JSON of its fields)``,
where the field ``seq`` is the row's **position in its chain** (``chain_seq``). Chain 1 starts from
``GENESIS`` (so rows written before there were several chains verify unchanged: they are chain 1 and
their position equals their ``seq``); chain k > 1 starts from ``genesis(k)``, which binds a chain's first
row — and through the links every row — to its chain: a row moved to another chain breaks both.

Keyed hashes (issue 26): a plain SHA-256 chain can be rebuilt by anyone who can write the table, so rows
written since migration 0014 carry ``key_id`` and ``row_hash = HMAC-SHA256(key, prev_hash + canonical
JSON)`` with a key held outside the database (``audit.keys``). Rows without ``key_id`` (written before 0014)
keep their plain SHA-256 hash ("legacy"); a chain never goes back to unkeyed rows after a keyed one. A
chain whose oldest rows were archived starts from its archive marker (position and hash, sealed with a key).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

GENESIS = "0" * 64

CHAINED_FIELDS = (
    "seq", "recorded_at", "type_code", "subtype", "action", "outcome", "outcome_desc", "agent_user_id",
    "agent_client_id", "agent_name", "agent_org_id", "source", "network_address", "purpose_of_use",
    "entity_person_id", "entity_what", "query", "detail",
)


def genesis(chain: int) -> str:
    """The ``prev_hash`` of a chain's first row."""
    return GENESIS if chain == 1 else hashlib.sha256(f"onetrip audit chain {chain}".encode()).hexdigest()


def _canonical(value: object) -> object:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value


def position(row: Mapping[str, object]) -> int:
    """The row's position in its chain (``chain_seq``; rows given without it: ``seq``)."""
    pos = row.get("chain_seq")
    return int(pos if pos is not None else row["seq"])  # type: ignore[call-overload]


def row_hash(prev_hash: str, row: Mapping[str, object], mac: hmac.HMAC | None = None) -> str:
    """The row's hash: HMAC-SHA256 under ``mac`` (a keyed ``hmac`` object made once per key, copied here;
    never updated itself), or plain SHA-256 without one (legacy rows, written before keys)."""
    body = {k: _canonical(row.get(k)) for k in CHAINED_FIELDS}
    body["seq"] = position(row)
    data = (prev_hash + json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))).encode("utf-8")
    if mac is None:
        return hashlib.sha256(data).hexdigest()
    h = mac.copy()
    h.update(data)
    return h.hexdigest()


def seal(mac: hmac.HMAC, *parts: object) -> str:
    """HMAC of a few plain values (an archive marker: chain, position, hash) under a row key."""
    h = mac.copy()
    h.update(("onetrip audit seal\n" + "\n".join(str(p) for p in parts)).encode("utf-8"))
    return h.hexdigest()


@dataclass(frozen=True)
class ChainProblem:
    seq: int  # the audit_event.seq of the row where the problem shows (0: the chain has no rows left)
    problem: str


@dataclass
class ChainWalk:
    """What walking one chain found."""

    count: int = 0  # rows checked
    legacy: int = 0  # rows without a key id (plain SHA-256, written before keys)
    problems: list[ChainProblem] = field(default_factory=list)
    last_pos: int = 0
    last_hash: str = ""
    last_row_seq: int = 0  # audit_event.seq of the last row (0: none)
    anchor_seen: bool = False  # the row at the anchor's position was among the rows


def walk_chain(rows: Iterable[Mapping[str, object]], *, chain: int = 1,
               macs: Mapping[str, hmac.HMAC] | None = None, start: tuple[int, str] | None = None,
               anchor: tuple[int, str] | None = None) -> ChainWalk:
    """Walk one chain's rows in position order from ``start`` (position, hash of the row before the first
    one given: the genesis, or an archive marker); report missing rows, broken links, rows whose hash does
    not match their content under their key (edited — with or without rebuilding the chain), unknown keys,
    unkeyed rows after keyed ones, and a row at ``anchor``'s position (a signed checkpoint) whose hash is
    another than the anchor's."""
    name = f"chain {chain}"
    macs = macs or {}
    prev_pos, prev_hash = start or (0, genesis(chain))
    walk = ChainWalk(last_pos=prev_pos, last_hash=prev_hash)
    keyed_seen = False
    for row in rows:
        walk.count += 1
        pos, seq = position(row), int(row["seq"])  # type: ignore[call-overload]
        if pos != prev_pos + 1:
            walk.problems.append(ChainProblem(seq, f"{name}: rows {prev_pos + 1}..{pos - 1} are missing"))
        if row["prev_hash"] != prev_hash:
            walk.problems.append(ChainProblem(seq, f"{name}, row {pos}: link to the previous row is broken"))
        kid = row.get("key_id")
        if kid is None:
            walk.legacy += 1
            if keyed_seen:
                walk.problems.append(ChainProblem(seq, f"链 {chain} 第 {pos} 行：在带密钥的行之后出现无密钥行（被改写）/ "
                                                       f"{name}, row {pos}: an unkeyed row after keyed rows (rewritten)"))
            mac = None
        else:
            keyed_seen = True
            mac = macs.get(str(kid))
            if mac is None:
                walk.problems.append(ChainProblem(seq, f"链 {chain} 第 {pos} 行：密钥 {kid!r} 不在密钥环中（请加入 "
                                                       f"ONETRIP_AUDIT_KEYS）/ {name}, row {pos}: key {kid!r} is not "
                                                       "in the keyring (add it to ONETRIP_AUDIT_KEYS)"))
        if (kid is None or mac is not None) and row_hash(str(row["prev_hash"]), row, mac) != row["row_hash"]:
            walk.problems.append(ChainProblem(seq, f"{name}, row {pos}: row content does not match its hash (edited)"))
        if anchor is not None and pos == anchor[0]:
            walk.anchor_seen = True
            if row["row_hash"] != anchor[1]:
                walk.problems.append(ChainProblem(seq, f"链 {chain} 第 {pos} 行与签名检查点不符（数据库被改写或换成旧副本）/ "
                                                       f"{name}, row {pos}: differs from the signed checkpoint "
                                                       "(rewritten, or an older copy of the database)"))
        prev_hash, prev_pos = str(row["row_hash"]), pos
        walk.last_pos, walk.last_hash, walk.last_row_seq = pos, prev_hash, seq
    return walk


def verify_rows(rows: Iterable[Mapping[str, object]], head_seq: int, head_hash: str, *,
                chain: int = 1, macs: Mapping[str, hmac.HMAC] | None = None,
                start: tuple[int, str] | None = None) -> tuple[int, list[ChainProblem]]:
    """Walk one chain's rows in position order; report edited rows, removed rows, broken links and a
    head that does not match the last row. Returns (rows checked, problems)."""
    walk = walk_chain(rows, chain=chain, macs=macs, start=start)
    if head_seq != walk.last_pos or head_hash != walk.last_hash:
        walk.problems.append(ChainProblem(walk.last_row_seq, f"chain {chain}: the head says {head_seq} rows, rows end "
                                                          f"at {walk.last_pos} (rows removed)"))
    return walk.count, walk.problems
