"""The hash chains, as pure functions over plain dicts (so ``verify`` can be reasoned about alone).

Audit rows are appended to one of several chains (``audit_chain_head`` rows). Within a chain, row n stores
``prev_hash`` = row n−1's ``row_hash`` and ``row_hash = sha256(prev_hash + canonical JSON of its fields)``,
where the field ``seq`` is the row's **position in its chain** (``chain_seq``). Chain 1 starts from
``GENESIS`` (so rows written before there were several chains verify unchanged: they are chain 1 and
their position equals their ``seq``); chain k > 1 starts from ``genesis(k)``, which binds a chain's first
row — and through the links every row — to its chain: a row moved to another chain breaks both.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

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


def row_hash(prev_hash: str, row: Mapping[str, object]) -> str:
    body = {k: _canonical(row.get(k)) for k in CHAINED_FIELDS}
    body["seq"] = position(row)
    text = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((prev_hash + text).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ChainProblem:
    seq: int  # the audit_event.seq of the row where the problem shows (0: the chain has no rows left)
    problem: str


def verify_rows(rows: Iterable[Mapping[str, object]], head_seq: int, head_hash: str, *,
                chain: int = 1) -> tuple[int, list[ChainProblem]]:
    """Walk one chain's rows in position order; report edited rows, removed rows, broken links and a
    head that does not match the last row. Returns (rows checked, problems)."""
    problems: list[ChainProblem] = []
    name = f"chain {chain}"
    prev_hash, prev_pos, last_seq, count = genesis(chain), 0, 0, 0
    for row in rows:
        count += 1
        pos, seq = position(row), int(row["seq"])  # type: ignore[call-overload]
        if pos != prev_pos + 1:
            problems.append(ChainProblem(seq, f"{name}: rows {prev_pos + 1}..{pos - 1} are missing"))
        if row["prev_hash"] != prev_hash:
            problems.append(ChainProblem(seq, f"{name}, row {pos}: link to the previous row is broken"))
        if row_hash(str(row["prev_hash"]), row) != row["row_hash"]:
            problems.append(ChainProblem(seq, f"{name}, row {pos}: row content does not match its hash (edited)"))
        prev_hash, prev_pos, last_seq = str(row["row_hash"]), pos, seq
    if head_seq != prev_pos or head_hash != prev_hash:
        problems.append(ChainProblem(last_seq, f"{name}: the head says {head_seq} rows, rows end at {prev_pos} "
                                               "(rows removed)"))
    return count, problems
