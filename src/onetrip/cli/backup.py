"""``onetrip backup DIR`` / ``onetrip restore DIR`` — the whole database to a directory and back (issue 26 §9;
docs/operations.md). Registered in ``cli.main`` with ``app.add_typer(backup_app)``.

The dump and its checks are ``db.backup``'s; this module adds what the storage layer must not know: the audit
chain heads in the manifest, the audit chain verification after a restore, and the progress display.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from sqlalchemy import Connection, inspect, select

backup_app = typer.Typer()
console = Console()
err = Console(stderr=True)


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]错误 / error:[/] {message}")
    raise typer.Exit(code)


def _audit_heads(conn: Connection) -> dict[str, Any]:
    """The audit chain heads as the snapshot holds them (``audit_chain_heads`` in the manifest)."""
    from onetrip.audit.models import AuditChainHead

    if not inspect(conn).has_table(AuditChainHead.__tablename__):
        return {"audit_chain_heads": []}
    rows = conn.execute(select(AuditChainHead.id, AuditChainHead.last_seq, AuditChainHead.last_hash)
                        .order_by(AuditChainHead.id))
    return {"audit_chain_heads": [{"chain": c, "last_seq": int(n), "last_hash": h} for c, n, h in rows]}


class _Display:
    """One progress row per step (``db.backup``'s progress callback): a bar when the total is known, bytes
    written when it is not (pg_dump)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, step: str, done: int, total: int | None) -> None:
        if step not in self.tasks:
            self.tasks[step] = self.progress.add_task(step, total=total)
        if total is None:  # only a size to show: the bar pulses
            label = f"{step} — {done / 1e6:,.1f} MB" if done > 1 else step
            self.progress.update(self.tasks[step], description=label)
        else:
            self.progress.update(self.tasks[step], completed=done, total=total)


def _progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                    MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                    transient=False)


@backup_app.command("backup")
def backup(directory: Annotated[Path, typer.Argument(help="新的空目录 / a new (or empty) directory")]) -> None:
    """备份数据库到目录（服务可继续运行）/ back up the database of ONETRIP_DATABASE_URL into DIRECTORY: the dump and
    manifest.json (kind, revision, time, row counts, audit chain heads, SHA-256 of every file). Safe while the
    server writes: SQLite through its online backup API, PostgreSQL with pg_dump -Fc (needs pg_dump on PATH)."""
    from onetrip.config import get_settings
    from onetrip.db import backup as store

    url = get_settings().database_url
    started = time.perf_counter()
    try:
        with _progress() as progress:
            manifest = store.backup(url, directory, _audit_heads, _Display(progress))
    except store.BackupError as e:
        _fail(e.message, e.code)
    elapsed = time.perf_counter() - started
    dump = manifest["files"][manifest["dump"]]
    rows = sum(manifest["tables"].values())
    # A backup holds every resident's data: who took it, when and where goes into the audit log (written after
    # the snapshot, so the backup itself does not hold it).
    _audited(url, "export", "Database/backup", {"directory": str(directory.resolve()), "dump": manifest["dump"],
                                                "sha256": dump["sha256"], "tables": len(manifest["tables"]),
                                                "rows": rows})
    console.print(f"[green]备份完成 / backup written[/] to {directory} in {elapsed:.1f} s: "
                  f"{manifest['database']['kind']}, revision {manifest['alembic_revision']}, "
                  f"{len(manifest['tables'])} tables, {rows:,} rows, {len(manifest['audit_chain_heads'])} audit chains, "
                  f"{manifest['dump']} {dump['bytes'] / 1e6:,.1f} MB (sha256 {dump['sha256'][:16]}…)")


@backup_app.command("restore")
def restore(
    directory: Annotated[Path, typer.Argument(help="`onetrip backup` 写出的目录 / a directory written by "
                                                   "`onetrip backup`")],
    force: Annotated[bool, typer.Option("--force", help="覆盖非空的目标数据库 / replace the contents of a target "
                                                        "database that is not empty")] = False,
    upgrade: Annotated[bool, typer.Option("--upgrade/--no-upgrade", help="恢复后迁移到本程序的结构版本（审计校验需要）"
                                          " / after the checks, migrate an older backup to this OneTrip's schema "
                                          "(the audit verification needs it)")] = True,
) -> None:
    """从备份目录恢复到 ONETRIP_DATABASE_URL / restore a backup into the database of ONETRIP_DATABASE_URL: checks
    every file's SHA-256 first, refuses a non-empty database without --force, restores, checks the row counts
    and audit chain heads against the manifest, migrates an older backup to this version's schema, and
    verifies the audit hash chains. Exit 1 if a check fails."""
    from onetrip.config import get_settings
    from onetrip.db import backup as store

    url = get_settings().database_url
    started = time.perf_counter()
    try:
        manifest = store.read_manifest(directory)
        with _progress() as progress:
            display = _Display(progress)
            problems = store.checksum_problems(directory, manifest["files"], display)
            if problems:
                progress.stop()
                _fail("备份文件校验和不符，拒绝恢复 / the backup's files do not match their SHA-256 checksums in "
                      "the manifest; refusing to restore a damaged backup — use another copy of it:\n  "
                      + "\n  ".join(problems))
            store.restore(url, directory, manifest, force=force, progress=display)
            restored_at = time.perf_counter() - started
            # Counted before any migration: what the backup holds, row for row.
            counts, facts = store.restored_facts(url, _audit_heads)
            migrated = _upgrade(url, manifest.get("alembic_revision"), display) if upgrade else None
            checked, chain_problems, why_not = _verify_audit(url, manifest.get("alembic_revision"), migrated, display)
    except store.BackupError as e:
        _fail(e.message, e.code)
    elapsed = time.perf_counter() - started
    console.print(f"恢复完成 / restored {directory} into {store.public_url(url)} in {restored_at:.1f} s, checked in "
                  f"{elapsed:.1f} s in all (backup of {manifest['created_at']}, revision "
                  f"{manifest.get('alembic_revision')})")
    failed = False
    differences = store.count_differences(manifest["tables"], counts)
    if differences:
        failed = True
        err.print("[bold red]行数与清单不符 / row counts differ from the manifest:[/]\n  " + "\n  ".join(differences))
    else:
        console.print(f"[green]行数与清单一致 / row counts match the manifest:[/] {len(counts)} tables, "
                      f"{sum(counts.values()):,} rows")
    if facts["audit_chain_heads"] != manifest.get("audit_chain_heads", []):
        failed = True
        err.print("[bold red]审计链头与清单不符 / audit chain heads differ from the manifest[/]")
    if migrated:
        console.print(f"[yellow]已从 {manifest.get('alembic_revision')} 迁移到 {migrated} / migrated the restored "
                      f"database from revision {manifest.get('alembic_revision')} to {migrated}[/]")
    if why_not:
        failed = failed or upgrade
        (err if upgrade else console).print(f"[yellow]审计链未校验 / audit chain not verified:[/] {why_not}")
    elif chain_problems:
        failed = True
        for p in chain_problems[:50]:
            err.print(f"[red]seq {p.seq}: {p.problem}[/]")
        err.print(f"[bold red]审计链被篡改 / audit chain broken:[/] {len(chain_problems)} problem(s) in {checked} rows")
    else:
        console.print(f"[green]审计链完整 / audit chain intact:[/] {checked} rows")
    if failed:
        raise typer.Exit(1)
    if not why_not:  # the schema is this version's: the restore itself is logged in the restored database
        _audited(url, "update", "Database/restore", {"directory": str(directory.resolve()),
                                                     "backup_created_at": manifest.get("created_at"),
                                                     "sha256": manifest["files"][manifest["dump"]]["sha256"]})


def _audited(url: str, subtype: str, what: str, detail: dict[str, Any]) -> None:
    """One audit event for a backup or restore, by the operating-system user who ran the command — in a
    database of this version's schema (an older one's audit table cannot take it: said, not failed)."""
    import getpass

    from sqlalchemy.orm import Session

    from onetrip.audit.service import record
    from onetrip.db import backup as store
    from onetrip.db.session import make_engine
    from onetrip.kit.principal import cli_principal

    engine = make_engine(url)
    try:
        with engine.connect() as c:
            revision = store.alembic_revision(c)
        head = _head(url)
        if revision != head:
            console.print(f"[yellow]未记入审计日志：数据库结构版本 {revision} 不是本程序的 {head} / not recorded in "
                          f"the audit log: the database's schema revision {revision} is not this OneTrip's[/]")
            return
        with Session(engine) as s:
            record(s, cli_principal(f"cli:{getpass.getuser()}"), subtype, what=[what], type_code="rest",
                   detail=detail)
            s.commit()
    finally:
        engine.dispose()
    console.print(f"[dim]已记入审计日志 / recorded in the audit log: {what}[/]")


def _head(url: str) -> str | None:
    from alembic.script import ScriptDirectory

    from onetrip.db.migrate import alembic_config

    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


def _upgrade(url: str, revision: str | None, display: _Display) -> str | None:
    """Migrate a backup of an older schema to this version's (what ``serve`` would do on start); the new
    head, or None when there was nothing to do."""
    from onetrip.db import backup as store
    from onetrip.db.migrate import upgrade

    head = _head(url)
    if revision == head:
        return None
    display("schema upgrade (alembic)", 0, None)
    try:
        upgrade(url)
    except Exception as e:  # an unknown (newer) revision, a failing migration
        raise store.BackupError(f"恢复成功但无法迁移到本程序的结构版本 / restored, but cannot migrate revision {revision} "
                                f"to this OneTrip's {head}: {type(e).__name__}: {e}. Restore with the OneTrip version "
                                "that made the backup, or run `onetrip restore --no-upgrade`", code=1) from e
    display("schema upgrade (alembic)", 1, 1)
    return head


def _verify_audit(url: str, revision: str | None, migrated: str | None, display: _Display
                  ) -> tuple[int, list, str | None]:
    """(rows checked, problems, why it could not run)."""
    from sqlalchemy.orm import Session

    from onetrip.audit.service import verify
    from onetrip.db.session import make_engine

    head = _head(url)
    if migrated is None and revision != head:
        return 0, [], (f"the database is at revision {revision}, this OneTrip's audit verification needs {head}: "
                       "run `onetrip db upgrade`, then `onetrip audit verify`")
    display("audit chain verification", 0, None)
    engine = make_engine(url)
    try:
        with Session(engine) as s:
            checked, problems = verify(s)
    except Exception as e:  # noqa: BLE001 — reported as a failed check, with what happened
        return 0, [], f"{type(e).__name__}: {e}"
    finally:
        engine.dispose()
    display("audit chain verification", 1, 1)
    return checked, problems, None
