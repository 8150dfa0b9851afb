"""``onetrip`` — set up, run and look after a OneTrip deployment.

Messages say what to fix; exit code 2 for a usage or input problem, 1 for a failed check.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from onetrip.cli.analytics import analytics_app
from onetrip.cli.backup import backup_app
from onetrip.cli.family import family_app
from onetrip.cli.hl7 import hl7_app
from onetrip.cli.immunization import immunization_app
from onetrip.cli.mpi import mpi_app
from onetrip.cli.notify import notify_app
from onetrip.cli.referral import referral_app
from onetrip.cli.scheduling import scheduling_app
from onetrip.config import get_settings

app = typer.Typer(help="OneTrip 医共体平台 — 数据多跑路，群众少跑腿", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="数据库 / database", no_args_is_help=True)
user_app = typer.Typer(help="用户 / users", no_args_is_help=True)
client_app = typer.Typer(help="系统客户端 / system clients (OAuth2 client credentials)", no_args_is_help=True)
audit_app = typer.Typer(help="审计 / audit trail", no_args_is_help=True)
rules_app = typer.Typer(help="规则表 / rule tables (numbers from RULES.md an operator can change)",
                        no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.add_typer(client_app, name="client")
app.add_typer(audit_app, name="audit")
app.add_typer(rules_app, name="rules")
app.add_typer(mpi_app, name="mpi")
app.add_typer(scheduling_app, name="scheduling")
app.add_typer(hl7_app, name="hl7")
app.add_typer(notify_app, name="notify")
app.add_typer(referral_app, name="referral")
app.add_typer(analytics_app, name="analytics")
app.add_typer(family_app, name="family")
app.add_typer(immunization_app, name="immunization")
app.add_typer(backup_app)  # onetrip backup, onetrip restore (top-level commands)
console = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]错误 / error:[/] {message}")
    raise typer.Exit(code)


def _upgrade() -> None:
    from onetrip.db.migrate import upgrade
    from onetrip.db.session import unit_of_work
    from onetrip.immunization.service import seed_schedule
    from onetrip.recognition.service import seed_catalogue
    from onetrip.rules.service import seed_rules

    url = get_settings().database_url
    try:
        upgrade(url)
    except Exception as e:  # connection refused, bad URL, ...
        fail(f"无法迁移数据库 / cannot migrate the database at ONETRIP_DATABASE_URL: {type(e).__name__}: {e}")
    with unit_of_work() as s:
        seed_rules(s)
        seed_catalogue(s)
        seed_schedule(s)  # the immunisation schedule (2021 and 2025 editions), never overwriting an operator's rows


@db_app.command("upgrade")
def db_upgrade() -> None:
    """迁移到最新结构并写入默认规则 / migrate to the latest schema and seed default rule values."""
    _upgrade()
    console.print("[green]数据库已是最新 / database is up to date[/]")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="监听地址 / address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="端口 / port")] = 8000,
    workers: Annotated[int, typer.Option(help="进程数 / worker processes")] = 1,
    notify: Annotated[bool, typer.Option("--notify/--no-notify", help="同进程运行通知分发器 / also run the "
                                         "notification dispatcher in this process (or run `onetrip notify run`)")]
    = False,
    mllp_port: Annotated[int | None, typer.Option(min=0, max=65535, help="同时监听 HL7 v2 MLLP 端口 / also run "
                                                  "the HL7 v2 MLLP listener on this port")] = None,
) -> None:
    """启动 Web、API 与 FHIR 服务 / serve the web UI, REST API and FHIR R4."""
    import uvicorn

    if mllp_port is not None and workers != 1:
        fail("--mllp-port 只能与 --workers 1 一起使用 / --mllp-port runs the listener in this one process: "
             "use --workers 1")
    _upgrade()
    console.print(f"OneTrip 在 http://{host}:{port}/ui/ 运行 · FHIR: http://{host}:{port}/fhir/R4/metadata")
    if mllp_port is not None:
        from onetrip.cli.hl7 import serve_with_mllp

        background = None
        if notify:
            from onetrip.db.session import get_sessionmaker
            from onetrip.notify.dispatcher import start_background

            background = start_background(get_sessionmaker())
            console.print("通知分发器运行中 / notify dispatcher running in the background")
        try:
            serve_with_mllp(host, port, host, mllp_port)
        finally:
            if background is not None:
                from onetrip.notify.dispatcher import stop_background

                stop_background(*background)
        return
    # --notify: the same app, whose lifespan also runs a notification dispatcher (one per worker process;
    # they share the work) and stops it gracefully when uvicorn shuts down.
    target = "onetrip.app:app_with_dispatcher" if notify else "onetrip.app:create_app"
    uvicorn.run(target, factory=True, host=host, port=port, workers=workers, log_level="info", access_log=False)


DEMO_PASSWORD = "Lantern-Harbour-26!"  # passes the common-password check (RULES §10)


@app.command()
def demo(
    residents: Annotated[int, typer.Option(help="居民数 / number of residents")] = 20_000,
    seed: Annotated[int, typer.Option(help="随机种子 / seed (same seed, same district)")] = 42,
    reset: Annotated[bool, typer.Option(help="先清空数据库 / wipe the database first")] = False,
    serve_after: Annotated[bool, typer.Option("--serve/--no-serve", help="加载后启动服务 / serve afterwards")] = False,
    host: str = "127.0.0.1",
    port: int = 8000,
) -> None:
    """生成虚构的示范区县并加载 / load a synthetic (fictional) demo district, then print how to sign in."""
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from sqlalchemy import func, select

    from onetrip.db.session import get_sessionmaker, unit_of_work
    from onetrip.persons.models import Person

    settings = get_settings()
    if settings.env == "production":
        fail("生产环境不能加载示范数据 / refusing to load demo data with ONETRIP_ENV=production")
    if residents < 1 or residents > 5_000_000:
        fail("--residents 应在 1 到 5,000,000 之间 / --residents must be between 1 and 5,000,000")
    if reset:
        _reset_database()
    _upgrade()
    with unit_of_work() as s:
        if s.scalar(select(func.count()).select_from(Person)):
            if serve_after:
                console.print("[yellow]示范数据已存在，直接启动 / demo data already loaded; serving it[/]")
                serve(host=host, port=port)
                return
            fail("数据库中已有居民数据；如需重建请加 --reset / the database already has residents; add --reset")
    from onetrip.demo.loader import load_district

    started = time.perf_counter()
    factory = get_sessionmaker()
    session = factory()
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console) as progress:
            tasks: dict[str, int] = {}

            def on_progress(step: str, done: int, total: int) -> None:
                if step not in tasks:
                    tasks[step] = progress.add_task(step, total=total)
                progress.update(tasks[step], completed=done, total=total)

            summary = load_district(session, residents=residents, seed=seed, progress=on_progress,
                                    batch_commit=session.commit)
            users = _demo_users(session, summary)
            session.commit()
            from onetrip.analytics.facts import rebuild as rebuild_facts
            from onetrip.demo.analytics import load_encounters
            from onetrip.demo.family import load_family
            from onetrip.demo.immunization import load_immunization
            from onetrip.demo.records import load_records
            from onetrip.demo.referral import load_referrals
            from onetrip.demo.scheduling import load_scheduling
            from onetrip.kit.clock import local_date, utcnow

            today = local_date(utcnow())
            steps = [  # one loader per capability; the cockpit LAST: its facts are rebuilt from all the others
                ("scheduling", lambda: load_scheduling(session, seed=seed, today=today)),
                ("referrals", lambda: load_referrals(session, seed=seed, today=today)),
                ("results", lambda: load_records(session, seed=seed, today=today)),
                ("family doctors", lambda: load_family(session, seed, today)),
                ("visits", lambda: load_encounters(session, seed=seed, today=today)),
                ("vaccinations", lambda: load_immunization(session, seed=seed, today=today, password=DEMO_PASSWORD)),
                ("cockpit", lambda: rebuild_facts(session)),
            ]
            for step, load in steps:
                on_progress(step, 0, 1)
                load()
                session.commit()
                on_progress(step, 1, 1)
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
    elapsed = time.perf_counter() - started
    counts = {k: summary[k] for k in ("organizations", "practitioners", "persons", "patient_records") if k in summary}
    console.print(f"[green]示范区县已加载 / demo district loaded[/] in {elapsed:.1f} s: "
                  + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    for row in summary.get("sample", [])[:3]:
        console.print(f"  示例居民 / sample resident: {row.get('name')} {row.get('id_number')}")
    table = Table(title=f"登录账号 / sign-in accounts (password 密码: {DEMO_PASSWORD})")
    table.add_column("用户名 / user")
    table.add_column("角色 / role")
    table.add_column("机构 / institution")
    for u in users:
        table.add_row(*u)
    console.print(table)
    console.print(f"Web: http://{host}:{port}/ui/   FHIR: http://{host}:{port}/fhir/R4/metadata")
    if serve_after:
        serve(host=host, port=port)


def _demo_users(session, summary: dict) -> list[tuple[str, str, str]]:
    from sqlalchemy import select

    from onetrip.auth.service import create_user
    from onetrip.registry.models import Organization

    orgs = {o.code: o for o in session.scalars(select(Organization))}
    wanted: list[tuple[str, list[str], str | None, str]] = [("admin", ["admin"], None, "系统管理员")]
    priority = {"bureau": 0, "lead_hospital": 1, "district_hospital": 2, "branch_centre": 3}
    for o in sorted(orgs.values(), key=lambda o: (priority.get(o.org_type, 9), o.code)):
        if o.org_type in ("lead_hospital", "district_hospital", "branch_centre"):
            wanted.append((f"doctor.{o.code.lower()}", ["clinician"], o.id, f"{o.name}医生"))
        if o.org_type == "lead_hospital":
            wanted.append((f"scheduler.{o.code.lower()}", ["scheduler"], o.id, f"{o.name}预约员"))
        if o.org_type == "branch_centre":
            wanted.append((f"family.{o.code.lower()}", ["family_doctor"], o.id, f"{o.name}家庭医生"))
        if o.org_type == "bureau":
            wanted.append(("bureau", ["bureau_manager"], o.id, "卫健局管理员"))
    out = []
    by_id = {o.id: o for o in orgs.values()}
    for username, roles, org_id, name in wanted:
        create_user(session, username, DEMO_PASSWORD, roles, name, org_id)
        out.append((username, ",".join(roles), by_id[org_id].name if org_id else "—"))
    more = len(out) - 12
    return out[:12] + ([("…", "doctor.<code> / family.<code>", f"{more} more, one per institution")] if more > 0 else [])


def _reset_database() -> None:
    from alembic import command

    from onetrip.db.migrate import alembic_config

    url = get_settings().database_url
    if url.startswith("sqlite"):
        import os

        path = url.split("///", 1)[-1]
        for suffix in ("", "-wal", "-shm"):
            if path and os.path.exists(path + suffix):
                os.remove(path + suffix)
    else:
        command.downgrade(alembic_config(url), "base")


@user_app.command("create")
def user_create(
    username: str,
    role: Annotated[list[str], typer.Option("--role", help="clinician, nurse, scheduler, family_doctor, "
                                                           "vaccinator, mch_doctor, bureau_manager, admin (repeatable)")],
    institution: Annotated[str | None, typer.Option(help="机构代码 / institution code")] = None,
    name: Annotated[str | None, typer.Option(help="显示名 / display name")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="从标准输入读取密码 / read the "
                                                                          "password from standard input")] = False,
) -> None:
    """创建用户 / create a user bound to an institution."""
    from onetrip.auth.service import create_user
    from onetrip.db.session import unit_of_work
    from onetrip.kit.errors import ApiError
    from onetrip.registry.service import organization_by_code

    if not password_stdin:
        fail("请用 --password-stdin 从标准输入提供密码（不在命令行中出现）/ pass the password on standard input "
             "with --password-stdin, so it never appears in the shell history")
    password = sys.stdin.readline().rstrip("\n")
    with unit_of_work() as s:
        org_id = None
        if institution:
            org = organization_by_code(s, institution)
            if org is None:
                fail(f"机构代码不存在 / no institution with code {institution!r}")
            org_id = org.id
        try:
            create_user(s, username, password, role, name or username, org_id)
        except ApiError as e:
            fail(e.message)
    console.print(f"[green]用户已创建 / user created:[/] {username} ({', '.join(role)})")


@user_app.command("reset-second-factor")
def user_reset_second_factor(username: str) -> None:
    """重置两步验证 / forget a user's authenticator and recovery codes (lost phone): they enrol again at the next
    web sign-in."""
    from onetrip.auth.service import reset_second_factor
    from onetrip.db.session import unit_of_work
    from onetrip.kit.errors import ApiError
    from onetrip.kit.principal import cli_principal

    with unit_of_work() as s:
        try:
            reset_second_factor(s, cli_principal(), username)
        except ApiError as e:
            fail(e.message)
    console.print(f"[green]两步验证已重置 / second factor reset:[/] {username} — 下次网页登录时重新绑定 / enrols again at "
                  "the next web sign-in")


@client_app.command("create")
def client_create(
    name: str,
    scopes: Annotated[str, typer.Option(help='SMART scopes, e.g. "system/Patient.cruds system/Organization.rs"')],
    institution: Annotated[str | None, typer.Option(help="机构代码 / institution code")] = None,
) -> None:
    """创建系统客户端，打印 client_id 与密钥（仅显示一次）/ create a system client; the secret is shown once."""
    from onetrip.auth.service import create_client
    from onetrip.db.session import unit_of_work
    from onetrip.kit.errors import ApiError
    from onetrip.registry.service import organization_by_code

    with unit_of_work() as s:
        org_id = None
        if institution:
            org = organization_by_code(s, institution)
            if org is None:
                fail(f"机构代码不存在 / no institution with code {institution!r}")
            org_id = org.id
        try:
            client, secret = create_client(s, name, scopes, org_id)
        except ApiError as e:
            fail(e.message)
    console.print(f"client_id={client.client_id}")
    console.print(f"client_secret={secret}")
    console.print(f"scope={client.scopes}")


@audit_app.command("verify")
def audit_verify() -> None:
    """校验审计哈希链与签名检查点 / check the audit hash chains (HMAC under the keyring) and compare them with the
    latest signed checkpoint; exit 1 if any row was edited, removed or rewritten, or the checkpoint file was."""
    from onetrip.audit.integrity import verify_report
    from onetrip.audit.keys import AuditKeyError
    from onetrip.db.session import unit_of_work

    try:
        with unit_of_work() as s:
            report = verify_report(s)
    except AuditKeyError as e:
        fail(str(e))
    if report.legacy:
        console.print(f"[yellow]旧式无密钥行 / legacy rows (plain SHA-256, written before audit keys):[/] {report.legacy}")
    if report.checkpoint is not None:
        console.print(f"对照签名检查点 / compared with the signed checkpoint of {report.checkpoint.at} "
                      f"({report.checkpoint_path}, line {report.checkpoint.line})")
    elif report.checkpoint_path is not None:
        console.print(f"[yellow]尚无签名检查点 / no signed checkpoint yet[/] ({report.checkpoint_path}): run "
                      "`onetrip audit checkpoint` regularly")
    else:
        console.print("[yellow]未设置 ONETRIP_AUDIT_CHECKPOINT_DIR，未对照检查点 / no checkpoint directory set: "
                      "the database was not compared with a checkpoint[/]")
    if report.problems:
        for p in report.problems[:50]:
            err.print(f"[red]seq {p.seq}: {p.problem}[/]")
        err.print(f"[bold red]审计链被篡改 / audit chain broken:[/] {len(report.problems)} problem(s) in "
                  f"{report.checked} rows")
        raise typer.Exit(1)
    console.print(f"[green]审计链完整 / audit chain intact:[/] {report.checked} rows")


@audit_app.command("checkpoint")
def audit_checkpoint(
    every: Annotated[int | None, typer.Option(min=0, help="每 N 分钟写一次，持续运行（0：用 ONETRIP_AUDIT_CHECKPOINT_MINUTES）"
                                              " / keep running, one checkpoint every N minutes (0: "
                                              "ONETRIP_AUDIT_CHECKPOINT_MINUTES)")] = None,
) -> None:
    """把各链头签名写入数据库之外的检查点文件 / append the signed chain heads to the checkpoint file outside the
    database (ONETRIP_AUDIT_CHECKPOINT_DIR); exit 1 if the chains no longer extend the previous checkpoint."""
    import time

    from onetrip.audit.integrity import write_checkpoint
    from onetrip.audit.keys import AuditKeyError
    from onetrip.db.session import unit_of_work

    def once() -> bool:
        try:
            with unit_of_work() as s:
                result = write_checkpoint(s)
        except (AuditKeyError, ValueError) as e:
            fail(str(e))
        if not result.written:
            for p in result.problems[:50]:
                err.print(f"[red]{p}[/]")
            err.print(f"[bold red]未写检查点：审计链或检查点文件有问题 / no checkpoint written:[/] {len(result.problems)} "
                      f"problem(s); run `onetrip audit verify` and investigate ({result.path})")
            return False
        rows = sum(h.rows for h in result.heads)
        console.print(f"[green]检查点已写入 / checkpoint written:[/] {len(result.heads)} chains, {rows} rows → "
                      f"{result.path}")
        return True

    if every is None:
        if not once():
            raise typer.Exit(1)
        return
    minutes = every or get_settings().audit_checkpoint_minutes
    console.print(f"每 {minutes} 分钟写一次检查点 / a checkpoint every {minutes} minutes (Ctrl+C stops)")
    try:
        while True:
            once()  # a refused checkpoint is reported and retried next time: the job keeps watching
            time.sleep(minutes * 60)
    except KeyboardInterrupt:
        return


@audit_app.command("rotate-key")
def audit_rotate_key(
    key_id: Annotated[str | None, typer.Option(help="新密钥编号（1–16 个字母、数字、_.-）/ the new key id")] = None,
) -> None:
    """生成新的审计密钥行（不写入数据库）/ print a new audit key line for the operator to add to the keyring;
    the secret is shown once and never stored in the database."""
    import datetime as dt

    from onetrip.audit.keys import AuditKeyError, new_key_line

    kid = key_id or f"k{dt.datetime.now(dt.UTC):%Y%m%d%H%M}"
    try:
        line = new_key_line(kid)
    except AuditKeyError as e:
        fail(str(e))
    console.print(line, soft_wrap=True, highlight=False)
    err.print(f"把这一行加入 ONETRIP_AUDIT_KEYS（逗号分隔）或 ONETRIP_AUDIT_KEY_FILE，设置 ONETRIP_AUDIT_KEY_ID={kid} 并重启；"
              "旧密钥保留用于校验 / add this line to ONETRIP_AUDIT_KEYS (comma-separated) or to ONETRIP_AUDIT_KEY_FILE, "
              f"set ONETRIP_AUDIT_KEY_ID={kid} and restart; keep the old keys: rows they signed are verified with them")


@audit_app.command("archive")
def audit_archive(
    before: Annotated[str, typer.Option(help="归档此月之前的记录 YYYY-MM / archive rows recorded before this month")],
    out: Annotated[str, typer.Option(help="归档目录 / directory for the archive and its manifest")] = "audit-archive",
    delete: Annotated[bool, typer.Option("--delete/--keep", help="导出并校验后从数据库删除 / after the export "
                                         "verified, delete the archived rows from the database")] = False,
) -> None:
    """导出保存期外的审计记录（gzip JSON 行 + SHA-256 清单）/ export audit rows older than the retention
    (rule security.audit_retention_months, RULES §10) to gzip JSON lines with a SHA-256 manifest, verify the
    export, and with --delete remove them from the database (sealed archive marker)."""
    from pathlib import Path

    from onetrip.audit.archive import ArchiveRefused, delete_archived, export, parse_month
    from onetrip.audit.keys import AuditKeyError, current_keyring
    from onetrip.db.session import unit_of_work
    from onetrip.kit.clock import local_date, utcnow
    from onetrip.rules.service import rule_values

    try:
        month = parse_month(before)
        keyring = current_keyring()
        with unit_of_work() as s:
            retention = rule_values(s, "security").get("audit_retention_months")
            if retention is None:
                fail("规则 security.audit_retention_months 缺失，请运行 onetrip db upgrade / the rule "
                     "security.audit_retention_months is missing: run `onetrip db upgrade`")
            result = export(s, keyring, before=month, today=local_date(utcnow()), retention_months=int(retention),
                            out_dir=Path(out))
            if delete:
                delete_archived(s, keyring, result)
    except (ArchiveRefused, AuditKeyError) as e:
        fail(str(e))
    if result.rows == 0:
        console.print(f"没有 {month:%Y-%m} 之前未归档的审计记录 / no audit rows recorded before {month:%Y-%m} are left "
                      "to archive: nothing written")
        return
    console.print(f"[green]已导出并校验 / exported and verified:[/] {result.rows} rows → {result.file}")
    console.print(f"清单 / manifest: {result.manifest} (sha256 {result.sha256})")
    if delete:
        console.print(f"[green]已从数据库删除 / deleted from the database:[/] {result.deleted} rows (archive markers "
                      "sealed); run `onetrip audit checkpoint` next")
    else:
        console.print("数据库未改动；确认归档已妥善保存后可加 --delete / the database is unchanged; add --delete once "
                      "the archive is stored safely")


@rules_app.command("list")
def rules_list(rule_set: Annotated[str | None, typer.Argument(help="e.g. security, access")] = None) -> None:
    """列出规则值 / list rule values with their confidence and citation."""
    from sqlalchemy import select

    from onetrip.db.session import unit_of_work
    from onetrip.rules.models import RuleValue

    table = Table()
    for col in ("set", "key", "value", "from", "conf.", "citation"):
        table.add_column(col)
    with unit_of_work() as s:
        stmt = select(RuleValue).order_by(RuleValue.rule_set, RuleValue.key, RuleValue.effective_from)
        if rule_set:
            stmt = stmt.where(RuleValue.rule_set == rule_set)
        for r in s.scalars(stmt):
            table.add_row(r.rule_set, r.key, str(r.value), str(r.effective_from), r.confidence, r.citation)
    console.print(table)


@rules_app.command("set")
def rules_set(rule_set: str, key: str, value: str,
              effective_from: Annotated[str | None, typer.Option(help="YYYY-MM-DD, default today")] = None) -> None:
    """修改规则值（保留历史）/ change a rule value from a date on; history is kept. VALUE is JSON."""
    import datetime as dt
    import json

    from onetrip.db.session import unit_of_work
    from onetrip.rules.service import set_rule

    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    eff = None
    if effective_from:
        try:
            eff = dt.date.fromisoformat(effective_from)
        except ValueError:
            fail("--effective-from 应为 YYYY-MM-DD / --effective-from must be a date like 2027-01-01")
    with unit_of_work() as s:
        try:
            set_rule(s, rule_set, key, parsed, by="cli", effective_from=eff)
        except KeyError:
            fail(f"没有此规则 / no rule {rule_set}.{key}; see `onetrip rules list`")
    console.print(f"[green]{rule_set}.{key} = {parsed!r}[/]")


if __name__ == "__main__":  # pragma: no cover
    app()
