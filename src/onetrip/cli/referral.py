"""``onetrip referral ...`` — the referral jobs: SLA escalation and expiry (run every few minutes from
cron or a systemd timer), the follow-up list, and the figures."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

referral_app = typer.Typer(help="双向转诊 / two-way referral: SLA expiry, follow-ups, figures", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


def _parse_at(at: str | None) -> dt.datetime | None:
    if at is None:
        return None
    try:
        t = dt.datetime.fromisoformat(at)
    except ValueError:
        err.print("[bold red]错误 / error:[/] --at 应为 ISO 时间，如 2026-12-01T08:00:00+08:00 / "
                  "--at must be an ISO time such as 2026-12-01T08:00:00+08:00")
        raise typer.Exit(2) from None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


@referral_app.command("expire")
def expire(at: Annotated[str | None, typer.Option(help="按此时间运行（ISO，默认现在）/ run as of this time")] = None) -> None:
    """超时升级与过期：先提醒接收科室负责人，再将超时未处理的转诊单置为过期 / escalate overdue referrals to
    the receiving department head, then expire those past their deadline (idempotent)."""
    from onetrip.db.session import unit_of_work
    from onetrip.referral.service import run_sla

    now = _parse_at(at)
    with unit_of_work() as s:
        out = run_sla(s, now)
    console.print(f"[green]转诊时限 / referral SLA:[/] {out['escalated']} escalated, {out['expired']} expired")


@referral_app.command("figures")
def figures(
    start: Annotated[str, typer.Option(help="YYYY-MM-DD 起 / first day")],
    end: Annotated[str, typer.Option(help="YYYY-MM-DD 止（含）/ last day (inclusive)")],
    institution: Annotated[str | None, typer.Option(help="机构代码 / institution code (default: all)")] = None,
) -> None:
    """转诊统计（含同比）/ referral figures for a period, with year-on-year change."""
    from sqlalchemy import select

    from onetrip.db.session import unit_of_work
    from onetrip.kit.principal import cli_principal
    from onetrip.referral.figures import compute
    from onetrip.registry.models import Organization

    try:
        first, last = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    except ValueError:
        err.print("[bold red]错误 / error:[/] 日期应为 YYYY-MM-DD / dates must look like 2026-01-31")
        raise typer.Exit(2) from None
    with unit_of_work() as s:
        org_id = None
        if institution:
            org_id = s.scalar(select(Organization.id).where(Organization.code == institution))
            if org_id is None:
                err.print(f"[bold red]错误 / error:[/] 机构代码不存在 / no institution with code {institution!r}")
                raise typer.Exit(2)
        try:
            f = compute(s, cli_principal(), organization_id=org_id, start=first, end=last)
        except Exception as e:  # noqa: BLE001 — an ApiError's message says what to fix
            err.print(f"[bold red]错误 / error:[/] {getattr(e, 'message', e)}")
            raise typer.Exit(2) from None
    table = Table(title=f"转诊 / referrals {first} – {last}")
    for col in ("", "本期 / this period", "上年同期 / last year", "同比 / YoY"):
        table.add_column(col)
    for key, label in (("up", "上转 / upward"), ("down", "下转 / downward")):
        c = f["counts"][key]
        yoy = "—" if c["change"] is None else f"{c['change'] * 100:+.2f}%"
        table.add_row(label, str(c["current"]), str(c["previous"]), yoy)
    console.print(table)
    for k in ("acceptance_rate", "rejection_rate", "completion_rate", "reserved_slot_share"):
        v = f[k]
        console.print(f"{k}: {'—' if v is None else f'{v * 100:.1f}%'}")
    h = f["hours_to_acceptance"]
    console.print(f"hours_to_acceptance: median {h['median']}, p90 {h['p90']} (n={h['n']})")
