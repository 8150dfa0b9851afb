"""The hash chain, as pure functions over plain dicts (so ``verify`` can be reasoned about alone)."""

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


def _canonical(value: object) -> object:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value


def row_hash(prev_hash: str, row: Mapping[str, object]) -> str:
    body = {k: _canonical(row.get(k)) for k in CHAINED_FIELDS}
    text = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((prev_hash + text).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ChainProblem:
    seq: int
    problem: str


def verify_rows(rows: Iterable[Mapping[str, object]], head_seq: int, head_hash: str) -> tuple[int, list[ChainProblem]]:
    """Walk the rows in ``seq`` order; report edited rows, removed rows, broken links and a head that
    does not match the last row. Returns (rows checked, problems)."""
    problems: list[ChainProblem] = []
    prev_hash, prev_seq, count = GENESIS, 0, 0
    for row in rows:
        count += 1
        seq = int(row["seq"])
        if seq != prev_seq + 1:
            problems.append(ChainProblem(seq, f"rows {prev_seq + 1}..{seq - 1} are missing"))
        if row["prev_hash"] != prev_hash:
            problems.append(ChainProblem(seq, "link to the previous row is broken"))
        if row_hash(str(row["prev_hash"]), row) != row["row_hash"]:
            problems.append(ChainProblem(seq, "row content does not match its hash (edited)"))
        prev_hash, prev_seq = str(row["row_hash"]), seq
    if head_seq != prev_seq or head_hash != prev_hash:
        problems.append(ChainProblem(prev_seq, f"chain head says {head_seq}, rows end at {prev_seq} (rows removed)"))
    return count, problems
