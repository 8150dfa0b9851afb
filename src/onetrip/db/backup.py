"""Backup and restore of the whole database (``onetrip backup`` / ``onetrip restore``, docs/operations.md).

A backup is a directory: the dump (one file) and ``manifest.json`` — database kind, Alembic revision, time,
per-table row counts, the audit chain heads and the SHA-256 of every file. The counts and the heads are read
from the very snapshot that was dumped, so a restore can be checked against them even when the server was
writing during the backup:

- SQLite: the online backup API copies the live file in one step (one read transaction; in WAL mode writers
  go on), and the counts are read from the copy.
- PostgreSQL: a REPEATABLE READ transaction exports its snapshot, counts there, and ``pg_dump -Fc
  --snapshot`` dumps exactly that snapshot while the transaction stays open.

This module is the one place that asks which database it is on for backups; it knows nothing of the audit
trail: the caller passes ``facts``, a function run on a connection inside the snapshot (the CLI reads the
audit chain heads with it), and checks the restored database itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, func, inspect, select, table, text
from sqlalchemy.engine import make_url

from onetrip.db.session import normalize_url
from onetrip.kit.clock import utcnow

MANIFEST = "manifest.json"
FORMAT = "onetrip-backup"
FORMAT_VERSION = 1
SQLITE_DUMP = "onetrip.sqlite3"
PG_DUMP = "onetrip.pgdump"

Progress = Callable[[str, int, int | None], None]
"""progress(step, done, total): a step's advance; total None when unknown (a spinner)."""
Facts = Callable[[Connection], dict[str, Any]]


def _no_progress(_step: str, _done: int, _total: int | None) -> None:
    return None


class BackupError(Exception):
    """A problem the operator can fix; ``message`` is bilingual and says what to do. ``code``: the exit code
    (2 bad input / refused, 1 a failed check)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


# ---- pure parts: checksums and the manifest ------------------------------------------------------------------

def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def build_manifest(*, kind: str, revision: str | None, created_at: str, tables: Mapping[str, int],
                   extra: Mapping[str, Any], files: Mapping[str, Mapping[str, Any]], dump: str,
                   source: str, server_version: str | None = None) -> dict[str, Any]:
    """The manifest as written to ``manifest.json`` (``extra``: the caller's facts, e.g. audit chain heads)."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_at": created_at,
        "database": {"kind": kind, "source": source, "server_version": server_version},
        "alembic_revision": revision,
        "dump": dump,
        "tables": dict(sorted(tables.items())),
        **extra,
        "files": dict(sorted(files.items())),
    }


def file_entry(path: Path) -> dict[str, Any]:
    return {"sha256": sha256_file(path), "bytes": path.stat().st_size}


def write_manifest(directory: Path, manifest: Mapping[str, Any]) -> Path:
    """Written last and renamed into place: a directory with a manifest holds a complete backup."""
    tmp = directory / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    tmp.chmod(0o600)
    final = directory / MANIFEST
    os.replace(tmp, final)
    return final


def read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    if not directory.is_dir():
        raise BackupError(f"备份目录不存在 / no backup directory at {directory}")
    if not path.is_file():
        raise BackupError(f"{directory} 中没有 {MANIFEST}（备份不完整或不是备份目录）/ no {MANIFEST} in {directory}: "
                          "not a backup directory, or the backup did not finish — use another backup")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise BackupError(f"{MANIFEST} 无法解析 / {MANIFEST} is not valid JSON ({e}); the backup is damaged — "
                          "use another backup") from e
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{path} 不是 OneTrip 备份清单 / {path} is not a OneTrip backup manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(f"备份格式版本 {manifest.get('format_version')} 不受支持 / backup format version "
                          f"{manifest.get('format_version')} is not supported by this OneTrip (expects "
                          f"{FORMAT_VERSION}); restore it with the OneTrip version that made it")
    for key in ("database", "tables", "files", "dump"):
        if key not in manifest:
            raise BackupError(f"{MANIFEST} 缺少字段 {key!r} / {MANIFEST} lacks {key!r}; the backup is damaged")
    if manifest["dump"] not in manifest["files"]:
        raise BackupError(f"{MANIFEST} 未列出转储文件的校验和 / {MANIFEST} has no checksum for its dump file "
                          f"{manifest['dump']!r}; the backup is damaged")
    return manifest


def checksum_problems(directory: Path, files: Mapping[str, Mapping[str, Any]],
                      progress: Progress = _no_progress) -> list[str]:
    """What differs between the files in ``directory`` and their manifest entries (empty: all intact)."""
    problems = []
    for i, (name, entry) in enumerate(sorted(files.items())):
        path = directory / name
        if Path(name).name != name:  # a manifest naming ../something is not ours
            problems.append(f"{name}: not a plain file name")
        elif not path.is_file():
            problems.append(f"{name}: missing")
        elif path.stat().st_size != entry.get("bytes"):
            problems.append(f"{name}: {path.stat().st_size} bytes, manifest says {entry.get('bytes')}")
        elif sha256_file(path) != entry.get("sha256"):
            problems.append(f"{name}: SHA-256 differs from the manifest")
        progress("checksums", i + 1, len(files))
    return problems


def count_differences(expected: Mapping[str, int], actual: Mapping[str, int]) -> list[str]:
    """Tables whose row count differs from the manifest (a table missing after restore counts as a difference)."""
    out = []
    for name, n in sorted(expected.items()):
        got = actual.get(name)
        if got is None:
            out.append(f"{name}: missing (manifest {n})")
        elif got != n:
            out.append(f"{name}: {got} rows, manifest {n}")
    return out


# ---- the database side ----------------------------------------------------------------------------------------

def database_kind(url: str) -> str:
    name = make_url(normalize_url(url)).get_backend_name()
    if name not in ("sqlite", "postgresql"):
        raise BackupError(f"不支持的数据库 {name} / backup supports SQLite and PostgreSQL, not {name}; "
                          "check ONETRIP_DATABASE_URL")
    return name


def public_url(url: str) -> str:
    """The URL with its password hidden (it goes into the manifest and messages)."""
    return make_url(url).render_as_string(hide_password=True)


def row_counts(conn: Connection, progress: Progress = _no_progress) -> dict[str, int]:
    """Rows in every table of the connection's default schema."""
    names = sorted(inspect(conn).get_table_names())
    counts = {}
    for i, name in enumerate(names):
        counts[name] = int(conn.execute(select(func.count()).select_from(table(name))).scalar_one())
        progress("row counts", i + 1, len(names))
    return counts


def alembic_revision(conn: Connection) -> str | None:
    if "alembic_version" not in inspect(conn).get_table_names():
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


@dataclass
class Dumped:
    kind: str
    dump: str  # file name inside the backup directory
    tables: dict[str, int]
    revision: str | None
    extra: dict[str, Any]
    server_version: str | None


def backup(url: str, directory: Path, facts: Facts, progress: Progress = _no_progress) -> dict[str, Any]:
    """Dump the database at ``url`` into ``directory`` (created; must not exist or be empty) and write the
    manifest. Returns the manifest."""
    kind = database_kind(url)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise BackupError(f"{directory} 已存在且非空 / {directory} already exists and is not empty: give a new "
                          "directory for each backup (a backup is never overwritten)")
    # Every patient's data is in there: readable by the owner only (RULES §10), whatever the umask.
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    directory.chmod(0o700)
    created_at = utcnow().isoformat()
    dumped = _backup_sqlite(url, directory, facts, progress) if kind == "sqlite" else \
        _backup_postgresql(url, directory, facts, progress)
    files = {}
    names = sorted(p.name for p in directory.iterdir() if p.is_file())
    for i, name in enumerate(names):
        (directory / name).chmod(0o600)
        files[name] = file_entry(directory / name)
        progress("checksums", i + 1, len(names))
    manifest = build_manifest(kind=kind, revision=dumped.revision, created_at=created_at, tables=dumped.tables,
                              extra=dumped.extra, files=files, dump=dumped.dump, source=public_url(url),
                              server_version=dumped.server_version)
    write_manifest(directory, manifest)
    return manifest


def target_state(url: str) -> tuple[int, int]:
    """(tables, rows) in the database at ``url``; (0, 0) for a missing SQLite file."""
    if database_kind(url) == "sqlite" and not _sqlite_path(url).exists():
        return 0, 0
    engine = _plain_engine(url)
    try:
        with engine.connect() as conn:
            counts = row_counts(conn)
    except Exception as e:  # noqa: BLE001 — any failure to connect: say so
        raise BackupError(f"无法连接目标数据库 / cannot connect to the target database {public_url(url)}: "
                          f"{type(e).__name__}: {e}. Create it first (PostgreSQL: CREATE DATABASE) and check "
                          "ONETRIP_DATABASE_URL", code=1) from e
    finally:
        engine.dispose()
    return len(counts), sum(counts.values())


def restore(url: str, directory: Path, manifest: Mapping[str, Any], *, force: bool,
            progress: Progress = _no_progress) -> None:
    """Restore the (already checksum-verified) backup in ``directory`` into the database at ``url``.
    Refuses a target that has tables unless ``force`` (then the target is replaced)."""
    kind = database_kind(url)
    if manifest["database"]["kind"] != kind:
        raise BackupError(f"备份来自 {manifest['database']['kind']}，目标是 {kind} / the backup is of a "
                          f"{manifest['database']['kind']} database but ONETRIP_DATABASE_URL points to {kind}: "
                          "restore into the same kind of database")
    tables, rows = target_state(url)
    if tables and not force:
        raise BackupError(f"目标数据库非空（{tables} 张表，{rows} 行）/ the target database {public_url(url)} is not "
                          f"empty ({tables} tables, {rows} rows): restore into a new, empty database, or add --force "
                          "to replace its contents with the backup")
    dump = directory / manifest["dump"]
    if kind == "sqlite":
        _restore_sqlite(url, dump, progress)
    else:
        _restore_postgresql(url, dump, force=force and tables > 0, progress=progress)


def restored_facts(url: str, facts: Facts) -> tuple[dict[str, int], dict[str, Any]]:
    """Row counts and the caller's facts, read from the restored database."""
    engine = _plain_engine(url)
    try:
        with engine.connect() as conn:
            return row_counts(conn), facts(conn)
    finally:
        engine.dispose()


def _plain_engine(url: str, **kwargs: Any) -> Engine:
    """No pool, no pragmas: the backup must not switch a copy's journal mode nor hold connections."""
    from sqlalchemy.pool import NullPool

    return create_engine(normalize_url(url), poolclass=NullPool, **kwargs)


# ---- SQLite: the online backup API -------------------------------------------------------------------------------

def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        raise BackupError("内存数据库无法备份 / an in-memory SQLite database cannot be backed up or restored; "
                          "set ONETRIP_DATABASE_URL to a file (sqlite:///path/onetrip.db)")
    return Path(database)


def _backup_sqlite(url: str, directory: Path, facts: Facts, progress: Progress) -> Dumped:
    path = _sqlite_path(url)
    if not path.is_file():
        raise BackupError(f"没有数据库文件 {path} / no SQLite database at {path}; check ONETRIP_DATABASE_URL")
    copy = directory / SQLITE_DUMP
    progress("copy (SQLite online backup)", 0, None)
    source = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    target = sqlite3.connect(copy)
    try:
        # One step (pages=-1): one read transaction, so the copy is one consistent snapshot. Copying in
        # several steps would start over whenever another connection writes — under steady writes, forever.
        source.backup(target, pages=-1)
        # A self-contained single file: no -wal beside it.
        target.execute("PRAGMA journal_mode=DELETE")
    finally:
        target.close()
        source.close()
    progress("copy (SQLite online backup)", 1, 1)
    engine = _plain_engine(f"sqlite:///file:{copy.resolve()}?mode=ro&uri=true")
    try:
        with engine.connect() as conn:
            tables = row_counts(conn, progress)
            extra = facts(conn)
            revision = alembic_revision(conn)
    finally:
        engine.dispose()
    return Dumped("sqlite", SQLITE_DUMP, tables, revision, extra, sqlite3.sqlite_version)


def _restore_sqlite(url: str, dump: Path, progress: Progress) -> None:
    path = _sqlite_path(url)
    if not path.parent.is_dir():
        raise BackupError(f"目录不存在 / directory {path.parent} does not exist; create it or fix "
                          "ONETRIP_DATABASE_URL")
    progress("restore (SQLite online backup)", 0, None)
    source = sqlite3.connect(f"{dump.resolve().as_uri()}?mode=ro", uri=True)
    target = sqlite3.connect(path, timeout=30)
    try:
        # The backup API replaces the target's pages in one transaction, so a target that exists (--force) is
        # replaced whole, its -wal included; the server must be stopped (docs/operations.md).
        source.backup(target, pages=-1)
        target.execute("PRAGMA journal_mode=WAL")  # as the server runs it (db.session)
    except sqlite3.Error as e:
        raise BackupError(f"SQLite 恢复失败 / SQLite restore into {path} failed: {e}. Stop the server using "
                          "this database and try again", code=1) from e
    finally:
        target.close()
        source.close()
    progress("restore (SQLite online backup)", 1, 1)


# ---- PostgreSQL: pg_dump / pg_restore ------------------------------------------------------------------------------

def _tool(name: str, server_major: int | None) -> str:
    found = shutil.which(name)
    if found:
        return found
    major = str(server_major) if server_major else "<N>"
    raise BackupError(
        f"未找到 {name}：请安装与服务器主版本（{major}）相同或更新的 PostgreSQL 客户端工具并加入 PATH / {name} not "
        f"found on PATH: install the PostgreSQL client tools of the server's major version ({major}) or newer — "
        f"Debian/Ubuntu: apt-get install postgresql-client-{major}; RHEL/Rocky: dnf install postgresql{major}; "
        "macOS: brew install libpq — and put their bin directory on PATH")


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq connection URI without the password, and the environment carrying it (never on the command
    line, where ``ps`` shows it)."""
    u = make_url(normalize_url(url))
    env = dict(os.environ)
    if u.password:
        env["PGPASSWORD"] = str(u.password)
    conninfo = u.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return conninfo, env


def _server_major(conn: Connection) -> tuple[int, str]:
    num = int(conn.execute(text("SHOW server_version_num")).scalar_one())
    return num // 10000, str(conn.execute(text("SHOW server_version")).scalar_one())


def _run(pipeline: list[list[str]], env: dict[str, str], what: str, watch: Callable[[], None] | None = None,
         on_line: Callable[[str], None] | None = None) -> None:
    """Run a client tool, or a pipeline of them (each one's output into the next); a failure is a BackupError
    with the last lines of their stderr. ``on_line`` sees the first tool's stderr lines as they come."""
    procs: list[subprocess.Popen[str]] = []
    for i, args in enumerate(pipeline):
        last = i == len(pipeline) - 1
        procs.append(subprocess.Popen(args, env=env, stdin=procs[-1].stdout if procs else subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL if last else subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, errors="replace"))
        if i:
            procs[-2].stdout.close()  # type: ignore[union-attr] — the next tool owns it now
    lines: list[list[str]] = [[] for _ in procs]

    def read(i: int) -> None:
        for line in procs[i].stderr:  # type: ignore[union-attr]
            lines[i].append(line.rstrip())
            if on_line and i == 0:
                on_line(line)

    readers = [threading.Thread(target=read, args=(i,), daemon=True) for i in range(len(procs))]
    for r in readers:
        r.start()
    while any(p.poll() is None for p in procs):
        if watch:
            watch()
        time.sleep(0.2)
    for r in readers:
        r.join()
    failed = [(args[0], p, out) for args, p, out in zip(pipeline, procs, lines, strict=True) if p.returncode != 0]
    if failed:
        failed.sort(key=lambda f: f[0] != pipeline[-1][0])  # the consumer's error says why; the producer's is a broken pipe
        tool, proc, out = failed[0]
        tail = "\n".join(line for line in out if line and "processing" not in line and "creating" not in line)[-1500:]
        raise BackupError(f"{what} 失败 / {what} failed ({Path(tool).name} exit {proc.returncode}):\n{tail}", code=1)


def _backup_postgresql(url: str, directory: Path, facts: Facts, progress: Progress) -> Dumped:
    dump = directory / PG_DUMP
    engine = _plain_engine(url)
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                conn.execute(text("SET TRANSACTION READ ONLY"))
                major, version = _server_major(conn)
                pg_dump = _tool("pg_dump", major)
                snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
                tables = row_counts(conn, progress)
                extra = facts(conn)
                revision = alembic_revision(conn)
                conninfo, env = _libpq(url)
                step = "dump (pg_dump -Fc)"
                progress(step, 0, None)

                def watch() -> None:  # bytes written so far: pg_dump reports no progress of its own
                    progress(step, dump.stat().st_size if dump.exists() else 0, None)

                # The transaction stays open until pg_dump is done: it holds the exported snapshot.
                _run([[pg_dump, "--format=custom", f"--snapshot={snapshot}", "--no-password",
                       f"--file={dump}", f"--dbname={conninfo}"]], env, "pg_dump", watch=watch)
                progress(step, dump.stat().st_size, None)
                progress(step, 1, 1)
    except BackupError:
        raise
    except Exception as e:  # connection refused, authentication, ...
        raise BackupError(f"无法连接数据库 / cannot read the database at {public_url(url)}: "
                          f"{type(e).__name__}: {e}", code=1) from e
    finally:
        engine.dispose()
    return Dumped("postgresql", PG_DUMP, tables, revision, extra, version)


_RESTORE_ITEM = re.compile(r"pg_restore: (creating|processing data|processing item|executing)")


def _restore_postgresql(url: str, dump: Path, *, force: bool, progress: Progress) -> None:
    engine = _plain_engine(url)
    try:
        with engine.connect() as conn:
            major, _ = _server_major(conn)
            schema_name = str(conn.execute(text("SELECT current_schema()")).scalar_one())
    except Exception as e:  # noqa: BLE001 — any failure to connect: say so
        raise BackupError(f"无法连接目标数据库 / cannot connect to the target database {public_url(url)}: "
                          f"{type(e).__name__}: {e}. Create it first (CREATE DATABASE) and check "
                          "ONETRIP_DATABASE_URL", code=1) from e
    finally:
        engine.dispose()
    pg_restore = _tool("pg_restore", major)
    conninfo, env = _libpq(url)
    listing = subprocess.run([pg_restore, "--list", str(dump)], capture_output=True, text=True, env=env)
    if listing.returncode != 0:
        raise BackupError(f"pg_restore 无法读取转储 / pg_restore cannot read {dump}: {listing.stderr.strip()}",
                          code=1)
    total = sum(1 for line in listing.stdout.splitlines() if line and not line.startswith(";"))
    step = "restore (pg_restore)"
    done = 0
    progress(step, 0, total)

    def on_line(line: str) -> None:
        nonlocal done
        if _RESTORE_ITEM.match(line):
            done = min(done + 1, total)
            progress(step, done, total)

    # One transaction: a failed restore leaves the target as it was. Objects are owned by the restoring
    # role (--no-owner): the source's roles need not exist on a recovery server.
    if not force:
        _run([[pg_restore, "--verbose", "--no-owner", "--single-transaction", "--exit-on-error", "--no-password",
               f"--dbname={conninfo}", str(dump)]], env, "pg_restore", on_line=on_line)
    else:
        # Replace: the schema is dropped and made anew in the same transaction as the restore (psql -1), so
        # what a newer schema added (tables, functions) goes too, and a failure changes nothing.
        psql = _tool("psql", major)
        schema = '"' + schema_name.replace('"', '""') + '"'
        _run([[pg_restore, "--verbose", "--no-owner", "--file=-", str(dump)],
              [psql, "--no-psqlrc", "--single-transaction", "--set=ON_ERROR_STOP=1", "--quiet", "--no-password",
               f"--dbname={conninfo}", "-c", f"DROP SCHEMA {schema} CASCADE", "-c", f"CREATE SCHEMA {schema}",
               "-f", "-"]], env, "pg_restore | psql", on_line=on_line)
    progress(step, total, total)
