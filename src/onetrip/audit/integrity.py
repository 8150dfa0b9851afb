"""Checking the audit trail (``onetrip audit verify``) and sealing it (``onetrip audit checkpoint``), issue 26.

``verify_report`` walks every chain with the keyring (HMAC under the key each row names; legacy rows with
plain SHA-256, counted) from its genesis or its sealed archive marker, and compares the database with the
latest correctly signed checkpoint outside it: the row at each checkpointed position must still be there
with the checkpointed hash. ``write_checkpoint`` first checks that every chain still extends the previous
checkpoint (the rows since then verify under their keys and link to the checkpointed hash), so a rewrite
made between two checkpoints is refused, not sealed.
"""

from __future__ import annotations

import hmac
import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from onetrip.audit import checkpoint as cp
from onetrip.audit.chain import ChainProblem, genesis, seal, walk_chain
from onetrip.audit.keys import Keyring, current_keyring, data_dir
from onetrip.audit.models import AuditChainHead, AuditEvent
from onetrip.config import Environment, get_settings
from onetrip.kit.clock import utcnow

_HEAD = AuditChainHead.__table__
_EVENT = AuditEvent.__table__
_COLS = [c.key for c in _EVENT.columns]


@dataclass(frozen=True)
class ChainHead:
    chain: int
    last_seq: int
    last_hash: str
    archived_seq: int
    archived_hash: str | None
    archived_seal: str | None


def heads(session: Session) -> dict[int, ChainHead]:
    rows = session.execute(select(_HEAD.c.id, _HEAD.c.last_seq, _HEAD.c.last_hash, _HEAD.c.archived_seq,
                                  _HEAD.c.archived_hash, _HEAD.c.archived_seal))
    return {int(r[0]): ChainHead(int(r[0]), int(r[1]), str(r[2]), int(r[3] or 0), r[4], r[5]) for r in rows}


def marker_seal(keyring: Keyring, chain: int, archived_seq: int, archived_hash: str) -> str:
    """``kid:HMAC`` of an archive marker under the active key."""
    return f"{keyring.active}:{seal(keyring.active_mac, chain, archived_seq, archived_hash)}"


def chain_start(head: ChainHead, keyring: Keyring) -> tuple[tuple[int, str], list[ChainProblem]]:
    """Where a chain's rows begin (position and hash before its first row): the genesis, or its archive
    marker — which must carry a valid seal (a made-up marker would hide deleted rows)."""
    if head.archived_seq <= 0:
        return (0, genesis(head.chain)), []
    kid, _, mac_hex = (head.archived_seal or "").partition(":")
    mac = keyring.macs.get(kid)
    ok = (mac is not None and head.archived_hash is not None
          and hmac.compare_digest(seal(mac, head.chain, head.archived_seq, head.archived_hash), mac_hex))
    problems = [] if ok else [ChainProblem(0, f"链 {head.chain} 的归档标记未经有效密钥封印（可能被伪造以掩盖删除）/ "
                                              f"chain {head.chain}: the archive marker (rows 1..{head.archived_seq}) "
                                              "has no valid seal (made up to hide removed rows?)")]
    return (head.archived_seq, head.archived_hash or ""), problems


def _rows(session: Session) -> Iterator[dict[str, Any]]:
    stmt = (select(*_EVENT.columns).order_by(_EVENT.c.chain, _EVENT.c.chain_seq)
            .execution_options(yield_per=5000))
    for row in session.execute(stmt):
        yield dict(zip(_COLS, row, strict=True))


def chain_rows(session: Session, chain: int, lo: int, hi: int) -> Iterator[dict[str, Any]]:
    """One chain's rows at positions lo..hi, in order."""
    stmt = (select(*_EVENT.columns).where(_EVENT.c.chain == chain, _EVENT.c.chain_seq >= lo,
                                          _EVENT.c.chain_seq <= hi)
            .order_by(_EVENT.c.chain_seq).execution_options(yield_per=5000))
    for row in session.execute(stmt):
        yield dict(zip(_COLS, row, strict=True))


def default_checkpoint_dir() -> Path | None:
    """ONETRIP_AUDIT_CHECKPOINT_DIR; in development without it, a directory under the data directory."""
    settings = get_settings()
    if settings.audit_checkpoint_dir is not None:
        return settings.audit_checkpoint_dir
    return None if settings.env == Environment.production else data_dir() / "audit-checkpoints"


def checkpoint_path(session: Session, directory: Path) -> Path:
    return cp.checkpoint_file(directory, cp.database_id(session.get_bind().url))


@dataclass
class VerifyReport:
    checked: int = 0
    legacy: int = 0  # rows hashed without a key (written before migration 0014)
    problems: list[ChainProblem] = field(default_factory=list)
    checkpoint: cp.Checkpoint | None = None  # the one the database was compared with
    checkpoint_path: Path | None = None


def _check_chain(chain: int, rows: Iterable[Mapping[str, Any]], head: ChainHead, keyring: Keyring,
                 at: cp.Checkpoint | None, report: VerifyReport) -> None:
    start, problems = chain_start(head, keyring)
    report.problems += problems
    mark = at.heads.get(chain) if at is not None else None
    anchor = (mark.last_seq, mark.last_hash) if mark is not None and mark.last_seq > head.archived_seq else None
    walk = walk_chain(rows, chain=chain, macs=keyring.macs, start=start, anchor=anchor)
    report.checked += walk.count
    report.legacy += walk.legacy
    report.problems += walk.problems
    if head.last_seq != walk.last_pos or head.last_hash != walk.last_hash:
        report.problems.append(ChainProblem(walk.last_row_seq, f"chain {chain}: the head says {head.last_seq} rows, "
                                                               f"rows end at {walk.last_pos} (rows removed)"))
    if anchor is not None and not walk.anchor_seen:
        report.problems.append(ChainProblem(walk.last_row_seq, (
            f"链 {chain}：签名检查点（{at.at if at else ''}）记录到第 {anchor[0]} 行，数据库只到第 {walk.last_pos} 行"
            f"（最新的行被删除，或数据库换成了旧副本）/ chain {chain}: the signed checkpoint of "
            f"{at.at if at else ''} has rows up to {anchor[0]}, the database ends at {walk.last_pos} (newest rows "
            "removed, or an older copy of the database)")))
    if mark is not None and mark.archived_seq > head.archived_seq:
        report.problems.append(ChainProblem(0, f"链 {chain} 的归档标记比签名检查点更早（数据库换成了旧副本？）/ chain "
                                               f"{chain}: the archive marker ({head.archived_seq}) is behind the "
                                               f"signed checkpoint's ({mark.archived_seq}) (an older copy?)"))


def verify_report(session: Session, *, keyring: Keyring | None = None,
                  checkpoint_dir: Path | None | bool = True) -> VerifyReport:
    """Check every chain under the keyring (default: the settings') and against the latest signed
    checkpoint in ``checkpoint_dir`` (True: the settings'; None/False: none)."""
    keyring = keyring or current_keyring()
    directory = default_checkpoint_dir() if checkpoint_dir is True else (checkpoint_dir or None)
    report = VerifyReport()
    at = None
    if directory is not None:
        report.checkpoint_path = path = checkpoint_path(session, Path(directory))
        if path.exists():
            at, file_problems = cp.read_latest(path, keyring, cp.database_id(session.get_bind().url))
            report.problems += [ChainProblem(0, p) for p in file_problems]
            report.checkpoint = at
    by_chain = heads(session)
    seen: set[int] = set()
    for chain, rows in itertools.groupby(_rows(session), key=lambda r: r["chain"]):
        seen.add(chain)
        head = by_chain.get(chain)
        if head is None:
            n = sum(1 for _ in rows)
            report.checked += n
            report.problems.append(ChainProblem(0, f"chain {chain}: {n} rows but no chain head (head removed)"))
            continue
        _check_chain(chain, rows, head, keyring, at, report)
    for chain, head in sorted(by_chain.items()):
        if chain not in seen:
            _check_chain(chain, [], head, keyring, at, report)
    if at is not None:
        for chain in sorted(set(at.heads) - set(by_chain)):
            report.problems.append(ChainProblem(0, f"链 {chain} 在签名检查点中，数据库里没有 / chain {chain} is in the "
                                                   "signed checkpoint but not in the database (head removed)"))
    return report


@dataclass
class CheckpointResult:
    path: Path
    heads: list[cp.Head]
    problems: list[str]
    written: bool


def write_checkpoint(session: Session, *, keyring: Keyring | None = None,
                     directory: Path | None = None) -> CheckpointResult:
    """Seal the chain heads in the checkpoint file — after checking that every chain still extends the
    previous checkpoint (its rows since then verify and link to it). With a problem nothing is written.
    Reads only; the caller's transaction can be read-only."""
    keyring = keyring or current_keyring()
    directory = directory or default_checkpoint_dir()
    if directory is None:
        raise ValueError("未设置 ONETRIP_AUDIT_CHECKPOINT_DIR / set ONETRIP_AUDIT_CHECKPOINT_DIR to a directory outside "
                         "the database server (append-only storage if you have it)")
    database = cp.database_id(session.get_bind().url)
    path = cp.checkpoint_file(Path(directory), database)
    problems: list[str] = []
    previous = None
    if path.exists():
        previous, problems = cp.read_latest(path, keyring, database)
    if problems:
        return CheckpointResult(path, [], problems, False)
    now = heads(session)
    for _, head in sorted(now.items()):
        problems += [p.problem for p in _extends(session, head, keyring, previous)]
    if previous is not None:
        problems += [f"链 {c} 在上一个检查点中，数据库里没有 / chain {c} is in the previous checkpoint but not in the "
                     "database" for c in sorted(set(previous.heads) - set(now))]
    sealed = [cp.Head(h.chain, h.last_seq, h.last_hash, h.last_seq - h.archived_seq, h.archived_seq)
              for _, h in sorted(now.items())]
    if problems:
        return CheckpointResult(path, sealed, problems, False)
    cp.append(path, keyring, database, sealed, utcnow().isoformat())
    return CheckpointResult(path, sealed, [], True)


def _extends(session: Session, head: ChainHead, keyring: Keyring, previous: cp.Checkpoint | None
             ) -> list[ChainProblem]:
    """A chain's rows since the previous checkpoint (all of them for the first) verify and end at its head."""
    chain = head.chain
    mark = previous.heads.get(chain) if previous is not None else None
    problems: list[ChainProblem] = []
    if mark is not None and mark.last_seq > head.last_seq:
        return [ChainProblem(0, f"链 {chain}：上一个检查点到第 {mark.last_seq} 行，数据库只到第 {head.last_seq} 行 / chain "
                                f"{chain}: the previous checkpoint has rows up to {mark.last_seq}, the database's head "
                                f"is at {head.last_seq} (rows removed or an older copy)")]
    if mark is not None and mark.last_seq > head.archived_seq:
        rows = chain_rows(session, chain, mark.last_seq, head.last_seq)
        first = next(rows, None)
        if first is None or first["chain_seq"] != mark.last_seq or first["row_hash"] != mark.last_hash:
            return [ChainProblem(0, f"链 {chain} 第 {mark.last_seq} 行与上一个检查点不符 / chain {chain}, row "
                                    f"{mark.last_seq}: differs from the previous checkpoint (rewritten)")]
        start = (mark.last_seq, mark.last_hash)
    else:
        start, problems = chain_start(head, keyring)
        rows = chain_rows(session, chain, head.archived_seq + 1, head.last_seq)
    walk = walk_chain(rows, chain=chain, macs=keyring.macs, start=start)
    problems += walk.problems
    if (walk.last_pos, walk.last_hash) != (head.last_seq, head.last_hash):
        problems.append(ChainProblem(0, f"chain {chain}: the head says {head.last_seq} rows, rows end at "
                                        f"{walk.last_pos} (rows removed)"))
    if mark is not None and walk.legacy:
        problems.append(ChainProblem(0, f"链 {chain}：上一个检查点之后出现无密钥行 / chain {chain}: unkeyed rows after "
                                        "the previous checkpoint (rewritten without the key)"))
    return problems
