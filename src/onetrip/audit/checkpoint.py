"""Signed checkpoints of the chain heads, kept outside the database (issue 26).

One JSON object per line in ``<ONETRIP_AUDIT_CHECKPOINT_DIR>/audit-checkpoints-<database id>.jsonl``, only
ever appended (``O_APPEND``, ``fsync``, under an exclusive ``flock`` so two writers do not interleave). A line
holds, per chain, its head (last position and hash), its row count and its archive marker, the time, the
SHA-256 of the previous line (so the file is itself a chain) and an HMAC-SHA256 signature under a key derived
from an audit key (``Keyring.checkpoint_mac``). Someone who can rewrite the database but not this file and
the keys cannot make a database that matches: a rebuilt chain has other hashes at the checkpoint's
positions, a truncated one ends before them, an older copy does not contain them.

The database id names the database (backend, host, port, name; an SQLite file's absolute path), not its
content, so a database restored in place is compared with the checkpoints of the one it replaced.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL

from onetrip.audit.keys import Keyring

FIRST_PREV = "0" * 64
VERSION = 1


@dataclass(frozen=True)
class Head:
    chain: int
    last_seq: int
    last_hash: str
    rows: int  # rows the chain holds in the database (positions are gapless: last_seq − archived_seq)
    archived_seq: int


@dataclass(frozen=True)
class Checkpoint:
    line: int  # 1-based line number in the file
    at: str  # UTC ISO time it was taken
    key_id: str
    heads: dict[int, Head]


def database_id(url: URL) -> str:
    """A short stable id of the database a URL points to (never its password)."""
    db = url.database or ""
    if url.get_backend_name() == "sqlite" and db and db != ":memory:":
        db = str(Path(db).resolve())
    name = f"{url.get_backend_name()}://{url.host or ''}:{url.port or ''}/{db}"
    return hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]


def checkpoint_file(directory: Path, database: str) -> Path:
    return Path(directory) / f"audit-checkpoints-{database}.jsonl"


def _canonical(body: dict) -> str:
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _signature(keyring: Keyring, kid: str, body: dict) -> str | None:
    mac = keyring.checkpoint_mac(kid)
    if mac is None:
        return None
    mac.update(_canonical({k: v for k, v in body.items() if k != "sig"}).encode("utf-8"))
    return mac.hexdigest()


def make_line(keyring: Keyring, database: str, heads: list[Head], at: str, prev: str) -> str:
    """The text of one signed line (without the newline)."""
    body = {"v": VERSION, "at": at, "database": database, "prev": prev, "key_id": keyring.active,
            "heads": [[h.chain, h.last_seq, h.last_hash, h.rows, h.archived_seq] for h in heads]}
    body["sig"] = _signature(keyring, keyring.active, body)
    return _canonical(body)


def line_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _last_line(fd: int) -> str | None:
    """The file's last complete line, read from its end."""
    size = os.fstat(fd).st_size
    if size == 0:
        return None
    chunk, pos = b"", size
    while pos > 0:
        step = min(65536, pos)
        pos -= step
        chunk = os.pread(fd, step, pos) + chunk
        body = chunk.rstrip(b"\n")
        if b"\n" in body or pos == 0:
            return body.rsplit(b"\n", 1)[-1].decode("utf-8")
    return None


def append(path: Path, keyring: Keyring, database: str, heads: list[Head], at: str) -> str:
    """Append one signed line; returns it. The directory is created if missing (mode 0750)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
    created = not path.exists()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        last = _last_line(fd)
        line = make_line(keyring, database, heads, at, line_hash(last) if last is not None else FIRST_PREV)
        os.write(fd, (line + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)  # releases the lock
    if created:  # the new directory entry survives a crash too
        dfd = os.open(path.parent, os.O_RDONLY)
        with contextlib.suppress(OSError):
            os.fsync(dfd)
        os.close(dfd)
    return line


def _lines(path: Path) -> Iterator[tuple[int, str, bool]]:
    with path.open("rb") as f:
        for n, raw in enumerate(f, start=1):
            yield n, raw.rstrip(b"\n").decode("utf-8", errors="replace"), raw.endswith(b"\n")


def read_latest(path: Path, keyring: Keyring, database: str) -> tuple[Checkpoint | None, list[str]]:
    """The latest correctly signed line of the file, and every problem with the file: a line that is not
    JSON, has a bad or unknown signature, is for another database, or does not carry the hash of the line
    before it (a line removed, changed or inserted)."""
    problems: list[str] = []
    latest: Checkpoint | None = None
    prev = FIRST_PREV
    name = path.name
    for n, text, complete in _lines(path):
        where = f"{name} 第 {n} 行 / {name} line {n}"
        try:
            body = json.loads(text)
            if not isinstance(body, dict):
                raise ValueError
        except ValueError:
            problems.append(f"检查点文件不是有效的 JSON 行 / checkpoint file damaged: {where} is not a JSON object")
            prev = line_hash(text)
            continue
        if not complete:
            problems.append(f"检查点最后一行不完整 / checkpoint file: {where} is incomplete (no newline)")
        if body.get("prev") != prev:
            problems.append(f"检查点文件的行链断裂（有行被删改或插入）/ checkpoint file tampered: {where} does not "
                            "follow the line before it (a line was removed, changed or inserted)")
        kid = str(body.get("key_id"))
        expected = _signature(keyring, kid, body)
        if expected is None:
            problems.append(f"检查点签名密钥 {kid!r} 不在密钥环中 / checkpoint file: {where} is signed with key "
                            f"{kid!r}, which is not in the keyring (add it to ONETRIP_AUDIT_KEYS)")
        elif not hmac.compare_digest(expected, str(body.get("sig"))):
            problems.append(f"检查点签名无效（文件被篡改）/ checkpoint file tampered: {where} has a bad signature")
        elif body.get("database") != database:
            problems.append(f"检查点属于另一个数据库 / checkpoint file: {where} is for another database")
        else:
            try:
                heads = {int(c): Head(int(c), int(s), str(h), int(r), int(a)) for c, s, h, r, a in body["heads"]}
            except (KeyError, TypeError, ValueError):
                problems.append(f"检查点格式错误 / checkpoint file: {where} has no readable heads")
            else:
                latest = Checkpoint(n, str(body.get("at")), kid, heads)
        prev = line_hash(text)
    return latest, problems
