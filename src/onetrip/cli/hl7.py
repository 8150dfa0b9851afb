"""``onetrip hl7`` — the HL7 v2 MLLP listener and its inbox (issue 4 §2). Registered in ``cli.main`` with
``app.add_typer(hl7_app, name="hl7")``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

hl7_app = typer.Typer(help="HL7 v2 / MLLP: listener and inbox", no_args_is_help=True)
inbox_app = typer.Typer(help="收件箱 / inbox: list messages, re-run a failed one", no_args_is_help=True)
hl7_app.add_typer(inbox_app, name="inbox")
console = Console()
err = Console(stderr=True)

STATUS_STYLE = {"processed": "green", "received": "cyan", "failed": "bold red", "rejected": "yellow",
                "pending-handler": "magenta"}


@hl7_app.command("listen")
def listen(
    host: Annotated[str, typer.Option(help="监听地址 / address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="端口 / TCP port")] = 2575,
    max_attempts: Annotated[int, typer.Option(min=1, help="处理重试次数 / handler attempts before failed")] = 3,
) -> None:
    """启动 MLLP 监听 / run the MLLP listener: store → commit → ACK, handlers afterwards (Ctrl-C stops)."""
    import asyncio
    import contextlib
    import logging

    from onetrip.db.session import get_sessionmaker
    from onetrip.interop.hl7v2.mllp import run

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(get_sessionmaker(), host, port, max_attempts=max_attempts))


@inbox_app.command("list")
def inbox_list(
    status: Annotated[str | None, typer.Option(help="received | processed | failed | rejected | pending-handler")]
    = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """列出收件箱消息（新的在前）/ list inbox messages, newest first. ``pending-handler`` = an accepted
    message type that has no handler registered yet (none today)."""
    from onetrip.db.session import unit_of_work
    from onetrip.interop.hl7v2 import service
    from onetrip.interop.hl7v2.models import STATUSES
    from onetrip.kit.masking import scrub

    if status is not None and status not in STATUSES:
        err.print(f"[bold red]错误 / error:[/] --status 应为 / must be one of {', '.join(STATUSES)}")
        raise typer.Exit(2)
    with unit_of_work() as s:
        rows = service.list_messages(s, status=status, limit=limit)
        table = Table("id", "received (UTC)", "sender", "control id", "type", "status", "tries", "last error")
        for r in rows:
            table.add_row(r.id, r.received_at.strftime("%Y-%m-%d %H:%M:%S"), r.sender, r.control_id, r.message_type,
                          f"[{STATUS_STYLE.get(r.status, '')}]{r.status}[/]", str(r.attempts),
                          scrub(r.last_error or "")[:120])
    console.print(table if rows else "[dim]收件箱为空 / no messages[/]")


@inbox_app.command("rerun")
def inbox_rerun(inbox_id: Annotated[str, typer.Argument(help="收件箱消息 id / inbox message id")]) -> None:
    """重跑失败消息的处理器 / run a failed message's handler again, now."""
    from onetrip.db.session import unit_of_work
    from onetrip.interop.hl7v2 import service
    from onetrip.kit.errors import ApiError
    from onetrip.kit.masking import scrub

    try:
        with unit_of_work() as s:
            row = service.rerun(s, inbox_id)
            status, error = row.status, row.last_error
    except ApiError as e:
        err.print(f"[bold red]错误 / error:[/] {e.message}")
        raise typer.Exit(2) from None
    if status == "processed":
        console.print(f"[green]已处理 / processed[/] {inbox_id}")
        return
    err.print(f"[bold red]仍然失败 / still {status}:[/] {scrub(error or '')}")
    raise typer.Exit(1)
