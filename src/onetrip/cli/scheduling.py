"""``onetrip scheduling ...`` — slot generation and the periodic scheduling jobs (run them from cron or a
systemd timer: generate-slots daily, release-reserved and expire-holds every few minutes)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.console import Console

scheduling_app = typer.Typer(help="预约排班 / scheduling: slots, reserved places, holds", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


def _org_id(session, code: str | None) -> str | None:
    if code is None:
        return None
    from sqlalchemy import select

    from onetrip.registry.models import Organization

    org_id = session.scalar(select(Organization.id).where(Organization.code == code))
    if org_id is None:
        err.print(f"[bold red]错误 / error:[/] 机构代码不存在 / no institution with code {code!r}")
        raise typer.Exit(2)
    return org_id


@scheduling_app.command("seed-catalogue")
def seed_catalogue() -> None:
    """写入缺失的检查目录项 / add the missing seeded exams to the catalogue (edits are kept)."""
    from onetrip.db.session import unit_of_work
    from onetrip.scheduling.service import seed_catalogue as seed

    with unit_of_work() as s:
        n = seed(s)
    console.print(f"[green]检查目录 / exam catalogue:[/] {n} added")


@scheduling_app.command("generate-slots")
def generate_slots(
    start: Annotated[str | None, typer.Option(help="YYYY-MM-DD (local), default tomorrow")] = None,
    days: Annotated[int, typer.Option(min=1, max=92, help="天数 / number of days")] = 14,
    institution: Annotated[str | None, typer.Option(help="机构代码 / institution code (default: all)")] = None,
) -> None:
    """按周模板生成号源（跳过法定节假日，调休上班日照常）/ generate slots from the weekly templates
    (none on public holidays; adjusted working days run). Idempotent."""
    from onetrip.db.session import unit_of_work
    from onetrip.kit.clock import local_date, utcnow
    from onetrip.scheduling.tasks import generate_slots as generate

    try:
        first = dt.date.fromisoformat(start) if start else local_date(utcnow()) + dt.timedelta(days=1)
    except ValueError:
        err.print("[bold red]错误 / error:[/] --start 应为 YYYY-MM-DD / --start must look like 2026-12-01")
        raise typer.Exit(2) from None
    with unit_of_work() as s:
        n = generate(s, start=first, days=days, organization_id=_org_id(s, institution))
    console.print(f"[green]号源 / slots:[/] {n} created from {first} for {days} day(s)")


@scheduling_app.command("release-reserved")
def release_reserved() -> None:
    """释放到期未用的预留号源 / release reserved places whose release time has passed (R2.4)."""
    from onetrip.db.session import unit_of_work
    from onetrip.scheduling.tasks import release_reserved as release

    with unit_of_work() as s:
        n = release(s)
    console.print(f"[green]预留号源释放 / reserved places released:[/] {n} slot(s)")


@scheduling_app.command("expire-holds")
def expire_holds() -> None:
    """取消过期的占号 / cancel holds past their expiry and give their places back."""
    from onetrip.db.session import unit_of_work
    from onetrip.scheduling.tasks import expire_holds as expire

    with unit_of_work() as s:
        n = expire(s)
    console.print(f"[green]过期占号 / expired holds:[/] {n}")
