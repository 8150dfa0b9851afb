"""Archiving old audit rows (``onetrip audit archive --before YYYY-MM``), issue 26.

Audit records are kept at least ``audit_retention_months`` (rule table ``security``; RULES §10: ≥ 6 months),
so a cut-off inside that window is refused. Rows recorded before the cut-off — per chain, the prefix of
positions up to its first row at or after the cut-off — are exported to a gzip JSON-lines file with a
manifest (the file's SHA-256, per chain the positions and the hashes they link from and to, sealed with an
audit key); the export is read back and verified (checksum, every link and hash under its key). Only then,
and only when asked, the chain heads get their sealed archive marker and the rows are deleted — the
append-only trigger lets a DELETE through for rows at or below their chain's marker and nothing else.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from onetrip.audit import checkpoint as cp
from onetrip.audit.chain import seal, walk_chain
from onetrip.audit.integrity import ChainHead, chain_rows, chain_start, heads, marker_seal
from onetrip.audit.keys import Keyring
from onetrip.audit.models import AuditChainHead, AuditEvent
from onetrip.kit.clock import LOCAL_TZ

_HEAD = AuditChainHead.__table__
_EVENT = AuditEvent.__table__
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class ArchiveRefused(ValueError):
    """The archive cannot be made as asked; the message says why and what to do (中文 / English)."""


def parse_month(text: str) -> dt.date:
    try:
        month = dt.datetime.strptime(text.strip(), "%Y-%m").date()
    except ValueError:
        raise ArchiveRefused(f"--before 应为 YYYY-MM（如 2026-01）/ --before must be a month as YYYY-MM, e.g. 2026-01 "
                             f"(got {text!r})") from None
    return month


def _months_back(day: dt.date, months: int) -> dt.date:
    y, m = divmod(day.year * 12 + (day.month - 1) - months, 12)
    last_day = (dt.date(y + (m == 11), (m + 1) % 12 + 1, 1) - dt.timedelta(days=1)).day
    return dt.date(y, m + 1, min(day.day, last_day))


def latest_cutoff(today: dt.date, retention_months: int) -> dt.date:
    """The latest month (its first day) whose start may be an archive cut-off on ``today``: every row
    before it is older than the retention. RULES §10: audit records kept ≥ 6 months (rule value)."""
    oldest_kept = _months_back(today, retention_months)
    return oldest_kept.replace(day=1)


def check_cutoff(before: dt.date, today: dt.date, retention_months: int) -> None:
    """Refuse a cut-off inside the retention window (RULES §10)."""
    limit = latest_cutoff(today, retention_months)
    if before > limit:
        raise ArchiveRefused(
            f"审计记录至少保存 {retention_months} 个月：--before 最晚为 {limit:%Y-%m} / audit records are kept at least "
            f"{retention_months} months (rule security.audit_retention_months, RULES §10): --before can be "
            f"{limit:%Y-%m} at the latest today")


@dataclass
class ArchiveResult:
    file: Path
    manifest: Path
    sha256: str
    rows: int
    chains: dict[int, dict[str, Any]]  # chain → {from, to, prev_hash, last_hash}
    deleted: int = 0


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    if isinstance(out.get("recorded_at"), dt.datetime):
        out["recorded_at"] = out["recorded_at"].astimezone(dt.UTC).strftime(TIME_FORMAT)
    return out


def _restored(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    if isinstance(out.get("recorded_at"), str):
        out["recorded_at"] = dt.datetime.strptime(out["recorded_at"], TIME_FORMAT).replace(tzinfo=dt.UTC)
    return out


def _cut(session: Session, head: ChainHead, cutoff: dt.datetime) -> int:
    """The chain's last position to archive: just before its first row at or after the cut-off."""
    first_kept = session.scalar(select(func.min(_EVENT.c.chain_seq)).where(
        _EVENT.c.chain == head.chain, _EVENT.c.chain_seq > head.archived_seq, _EVENT.c.recorded_at >= cutoff))
    return head.last_seq if first_kept is None else int(first_kept) - 1


def _manifest_mac(mac: hmac.HMAC, body: dict[str, Any]) -> str:
    return seal(mac, json.dumps({k: v for k, v in body.items() if k != "seal"}, sort_keys=True, separators=(",", ":")))


def export(session: Session, keyring: Keyring, *, before: dt.date, today: dt.date, retention_months: int,
           out_dir: Path) -> ArchiveResult:
    """Export the rows recorded before ``before`` (a month's first day, local time) that are not archived
    yet, write the manifest, and verify both. Refuses a cut-off inside the retention."""
    check_cutoff(before, today, retention_months)
    cutoff = dt.datetime(before.year, before.month, 1, tzinfo=LOCAL_TZ).astimezone(dt.UTC)
    database = cp.database_id(session.get_bind().url)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    file = out_dir / f"audit-archive-{database}-before-{before:%Y-%m}-{stamp}.jsonl.gz"
    chains: dict[int, dict[str, Any]] = {}
    rows = 0
    with gzip.open(file, "wt", encoding="utf-8") as out:
        for chain, head in sorted(heads(session).items()):
            (start_pos, start_hash), problems = chain_start(head, keyring)
            if problems:
                raise ArchiveRefused(problems[0].problem)
            last = _cut(session, head, cutoff)
            if last <= start_pos:
                continue
            last_hash = start_hash
            for row in chain_rows(session, chain, start_pos + 1, last):
                out.write(json.dumps(_plain(row), ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n")
                last_hash = row["row_hash"]
                rows += 1
            chains[chain] = {"from": start_pos + 1, "to": last, "prev_hash": start_hash, "last_hash": last_hash}
    if rows == 0:  # nothing older than the cut-off left in the database: leave no empty archive behind
        file.unlink()
        return ArchiveResult(file, file, "", 0, {})
    digest = _sha256(file)
    body: dict[str, Any] = {"database": database, "before": f"{before:%Y-%m}", "cutoff_utc": cutoff.isoformat(),
                            "created_at": dt.datetime.now(dt.UTC).isoformat(), "file": file.name, "sha256": digest,
                            "rows": rows, "chains": {str(c): v for c, v in chains.items()}}
    body["seal"] = f"{keyring.active}:{_manifest_mac(keyring.active_mac, body)}"
    manifest = file.with_name(file.name.removesuffix(".jsonl.gz") + ".manifest.json")
    manifest.write_text(json.dumps(body, ensure_ascii=False, indent=1, sort_keys=True) + "\n", "utf-8")
    result = ArchiveResult(file, manifest, digest, rows, chains)
    problems = verify_export(manifest, keyring)
    if problems:
        raise ArchiveRefused("导出校验失败 / the export did not verify: " + "; ".join(problems[:5]))
    return result


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _exported(file: Path) -> Iterator[dict[str, Any]]:
    with gzip.open(file, "rt", encoding="utf-8") as f:
        for line in f:
            yield _restored(json.loads(line))


def verify_export(manifest: Path, keyring: Keyring) -> list[str]:
    """Check an archive against its manifest: the manifest's seal, the file's SHA-256, and per chain every
    row's link and hash under its key, from the manifest's first position to its last."""
    body = json.loads(manifest.read_text("utf-8"))
    problems = []
    kid, _, mac_hex = str(body.get("seal", "")).partition(":")
    mac = keyring.macs.get(kid)
    if mac is None or not hmac.compare_digest(_manifest_mac(mac, body), mac_hex):
        problems.append(f"清单封印无效 / manifest {manifest.name}: bad or unknown seal")
    file = manifest.with_name(body["file"])
    if _sha256(file) != body["sha256"]:
        return [*problems, f"归档文件校验和不符 / {file.name}: SHA-256 does not match the manifest"]
    chains = {int(c): v for c, v in body["chains"].items()}
    by_chain: dict[int, list[dict[str, Any]]] = {}
    count = 0
    for row in _exported(file):
        by_chain.setdefault(int(row["chain"]), []).append(row)
        count += 1
    if count != body["rows"]:
        problems.append(f"{file.name}: {count} rows, the manifest says {body['rows']}")
    for chain, spec in chains.items():
        walk = walk_chain(by_chain.get(chain, []), chain=chain, macs=keyring.macs,
                          start=(spec["from"] - 1, spec["prev_hash"]))
        problems += [p.problem for p in walk.problems]
        if (walk.last_pos, walk.last_hash) != (spec["to"], spec["last_hash"]):
            problems.append(f"{file.name}: chain {chain} ends at {walk.last_pos}, the manifest says {spec['to']}")
    return problems


def delete_archived(session: Session, keyring: Keyring, result: ArchiveResult) -> int:
    """Move each exported chain's archive marker (sealed) to its last exported row, then delete the rows at
    or below it (which the append-only trigger now lets through). In the caller's transaction."""
    deleted = 0
    for chain, spec in sorted(result.chains.items()):
        moved = session.execute(update(_HEAD).where(_HEAD.c.id == chain, _HEAD.c.archived_seq == spec["from"] - 1)
                                .values(archived_seq=spec["to"], archived_hash=spec["last_hash"],
                                        archived_seal=marker_seal(keyring, chain, spec["to"], spec["last_hash"])))
        if moved.rowcount != 1:
            raise ArchiveRefused(f"链 {chain} 已被另一次归档处理 / chain {chain} was archived by another run meanwhile: "
                                 "run the archive again")
        deleted += session.execute(delete(_EVENT).where(_EVENT.c.chain == chain,
                                                        _EVENT.c.chain_seq <= spec["to"])).rowcount
    result.deleted = deleted
    return deleted
