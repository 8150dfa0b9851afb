"""``onetrip immunization ...`` — the immunisation domain's jobs: reminders to guardians for due childhood
doses (issue 20 point 6; run daily from cron or a systemd timer)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

immunization_app = typer.Typer(help="预防接种 / immunisation: reminders to guardians", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


@immunization_app.command()
def remind(day: Annotated[str | None, typer.Option("--date", help="as if today were YYYY-MM-DD")] = None) -> None:
    """提醒监护人到期疫苗 / remind guardians of childhood doses due within `reminder_days_ahead` days (once per
    dose; children without a phone are counted, not sent)."""
    from onetrip.db.session import unit_of_work
    from onetrip.immunization.tasks import remind_due
    from onetrip.kit.principal import cli_principal

    try:
        today = dt.date.fromisoformat(day) if day else None
    except ValueError:
        err.print(f"[bold red]错误 / error:[/] --date must be YYYY-MM-DD, not {day!r}")
        raise typer.Exit(2) from None
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress, unit_of_work() as s:
        task = progress.add_task("儿童 / children", total=None)

        def on(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        out = remind_due(s, today, on_progress=on, principal=cli_principal("immunization-remind"))
    console.print(f"[green]提醒已发送 / reminders sent:[/] {out['sent']}  已提醒过 / already: {out['already']}  "
                  f"无联系电话 / no contact: {out['no_contact']}  儿童 / children: {out['children']}")
