"""``onetrip analytics ...`` — the indicator facts and the report forms. Run ``update`` often (cron or a
systemd timer, e.g. every 5 minutes) and ``schedule`` daily; ``rebuild`` after changing a definition."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

analytics_app = typer.Typer(help="指标与报表 / indicators, cockpit facts and report forms", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


def _fail(message: str) -> None:
    err.print(f"[bold red]错误 / error:[/] {message}")
    raise typer.Exit(2)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console)


@analytics_app.command()
def update() -> None:
    """增量更新日事实表（读取新事件）/ incremental update: consume new outbox events and audit rows."""
    from onetrip.analytics import facts
    from onetrip.db.session import unit_of_work

    with _progress() as progress, unit_of_work() as s:
        tasks: dict[str, int] = {}

        def on(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = progress.add_task(step, total=total)
            progress.update(tasks[step], completed=done, total=total)

        summary = facts.update(s, on)
    console.print(f"[green]已更新 / updated:[/] {summary['events']} events, days {summary['days']}, "
                  f"{summary['fact_rows']} fact rows")


@analytics_app.command()
def rebuild() -> None:
    """全量重建日事实表 / full rebuild of the facts and projections from the source tables and events."""
    from onetrip.analytics import facts
    from onetrip.db.session import unit_of_work

    with _progress() as progress, unit_of_work() as s:
        task = progress.add_task("rebuild / 重建", total=1)

        def on(step: str, done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        summary = facts.rebuild(s, on)
    console.print(f"[green]已重建 / rebuilt:[/] {summary['fact_rows']} fact rows, "
                  f"{summary['projection_events']} projection events")


@analytics_app.command()
def status() -> None:
    """事实表状态 / where the consumer cursors are and how far behind the outbox they are."""
    from onetrip.analytics import facts
    from onetrip.db.session import unit_of_work

    with unit_of_work() as s:
        st = facts.status(s)
    console.print(st)


def _write(rows, out: Path | None) -> None:
    table = Table(title="报表 / report forms")
    for c in ("period", "scope", "file", "size"):
        table.add_column(c)
    for r in rows:
        table.add_row(r.period, r.scope, r.filename, f"{len(r.content):,}")
        if out:  # filed by year / month / form (reports.folder)
            from onetrip.analytics.reports import write_file

            write_file(out, r)
    console.print(table)


@analytics_app.command()
def report(
    month: Annotated[str | None, typer.Option(help="月报 YYYY-MM / monthly report of this month")] = None,
    quarter: Annotated[str | None, typer.Option(help="季报 YYYY-Qn / quarterly report, e.g. 2026-Q4")] = None,
    replace: Annotated[bool, typer.Option(help="重新生成已有报表 / regenerate existing forms")] = False,
    out: Annotated[Path | None, typer.Option(help="同时写到此目录 / also write the files here")] = None,
) -> None:
    """按需生成月报/季报（全区 + 各机构，Excel 与 CSV）/ generate report forms on demand."""
    from onetrip.analytics import facts, reports
    from onetrip.db.session import unit_of_work
    from onetrip.kit.errors import ApiError

    if bool(month) == bool(quarter):
        _fail("请给出 --month 或 --quarter 之一 / give exactly one of --month 2026-10 or --quarter 2026-Q4")
    kind, period = ("monthly", month) if month else ("quarterly", quarter)
    try:
        with unit_of_work() as s:
            facts.update(s)
            rows = reports.generate(s, kind=kind, period=period, by="cli", replace=replace)
            _write(rows, out)
    except ApiError as e:
        _fail(e.message)
    if not rows:
        console.print("[yellow]报表已存在，未重新生成（加 --replace 可重新生成）/ forms exist already; add --replace[/]")


@analytics_app.command()
def schedule(
    today: Annotated[str | None, typer.Option(help="YYYY-MM-DD（默认今天）/ run as if on this date")] = None,
) -> None:
    """定时任务：更新事实表，补齐上月（及上季度）报表；可重复运行 / scheduled job: update the facts and
    generate last month's (and last quarter's) forms if missing. Idempotent — run it daily."""
    from onetrip.analytics import facts, reports
    from onetrip.db.session import unit_of_work
    from onetrip.kit.clock import local_date, utcnow

    try:
        day = dt.date.fromisoformat(today) if today else local_date(utcnow())
    except ValueError:
        _fail(f"日期格式应为 YYYY-MM-DD / date must be YYYY-MM-DD, got {today!r}")
    with unit_of_work() as s:
        facts.update(s)
        rows = reports.scheduled(s, day)
        _write(rows, None)
    console.print(f"[green]定时报表 / scheduled forms:[/] {len(rows)} generated")


@analytics_app.command()
def catchment(
    institution: Annotated[str, typer.Argument(help="机构代码 / institution code")],
    residents: Annotated[int, typer.Option(min=0, help="服务人口 / catchment residents")],
    hypertension: Annotated[int | None, typer.Option(min=0, help="估算高血压患者数 / estimated patients")] = None,
    diabetes: Annotated[int | None, typer.Option(min=0, help="估算糖尿病患者数 / estimated patients")] = None,
) -> None:
    """设置机构服务人口（签约率、管理率的分母）/ set an institution's catchment denominators."""
    from sqlalchemy import select

    from onetrip.analytics.models import AnalyticsCatchment
    from onetrip.db.session import unit_of_work
    from onetrip.registry.models import Organization

    with unit_of_work() as s:
        org = s.scalar(select(Organization).where(Organization.code == institution))
        if org is None:
            _fail(f"机构代码不存在 / no institution with code {institution!r}")
        row = s.get(AnalyticsCatchment, org.id) or AnalyticsCatchment(organization_id=org.id, residents=0)
        row.residents, row.hypertension_estimated, row.diabetes_estimated = residents, hypertension, diabetes
        s.add(row)
    console.print(f"[green]已设置 / set:[/] {institution} residents {residents:,}")
