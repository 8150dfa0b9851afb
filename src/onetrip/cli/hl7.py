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
                "pending-handler": "magenta", "conflict": "bold yellow"}


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
    status: Annotated[str | None, typer.Option(help="received | processed | failed | rejected | pending-handler | conflict")]
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


@inbox_app.command("rerun-all")
def inbox_rerun_all(
    status: Annotated[str, typer.Option(help="failed | pending-handler")] = "failed",
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 10_000,
) -> None:
    """重跑全部失败消息（旧的在前）/ re-run every failed (or pending-handler) message, oldest first, each in its
    own transaction; prints how many were processed and lists those still failing."""
    from rich.progress import Progress

    from onetrip.db.session import unit_of_work
    from onetrip.interop.hl7v2 import service
    from onetrip.kit.masking import scrub

    if status not in ("failed", "pending-handler"):
        err.print("[bold red]错误 / error:[/] --status 应为 failed 或 pending-handler / must be failed or pending-handler")
        raise typer.Exit(2)
    with unit_of_work() as s:
        ids = [r.id for r in reversed(service.list_messages(s, status=status, limit=limit))]
    still: list[tuple[str, str]] = []
    with Progress(console=console) as progress:
        task = progress.add_task("重跑 / re-running", total=len(ids))
        for inbox_id in ids:
            with unit_of_work() as s:
                row = service.rerun(s, inbox_id)
                if row.status != "processed":
                    still.append((f"{row.sender} {row.control_id}", scrub(row.last_error or "")[:160]))
            progress.advance(task)
    console.print(f"[green]已处理 / processed {len(ids) - len(still)}[/] / {len(ids)}")
    for key, error in still:
        err.print(f"[red]仍然失败 / still failing[/] {key}: {error}")
    if still:
        raise typer.Exit(1)


def serve_with_mllp(host: str, port: int, mllp_host: str, mllp_port: int, *, max_attempts: int = 3) -> None:
    """``onetrip serve --mllp-port N``: uvicorn (web, REST, FHIR) and the MLLP listener in one process and one
    event loop. Ctrl-C / SIGTERM stop uvicorn (it finishes the requests in flight); then the listener stops
    accepting and its worker is cancelled — messages already stored but not yet handled stay ``received``
    and run at the next start (the inbox is the queue)."""
    import asyncio
    import contextlib
    import signal

    import uvicorn

    from onetrip.config import get_settings
    from onetrip.db.session import get_sessionmaker
    from onetrip.interop.hl7v2.mllp import Listener, limits_from

    class _Server(uvicorn.Server):
        """uvicorn without its own signal capture (which re-raises the signal after shutdown, ending the
        process before the MLLP listener is closed): our loop's handlers ask it to exit instead."""

        @contextlib.contextmanager
        def capture_signals(self):
            yield

        def stop(self) -> None:
            self.should_exit = True

    async def both() -> None:
        listener = Listener(get_sessionmaker(), max_attempts=max_attempts, **limits_from(get_settings()))
        bound = await listener.start(mllp_host, mllp_port)
        console.print(f"MLLP listening on {mllp_host}:{bound}")
        server = _Server(uvicorn.Config("onetrip.app:create_app", factory=True, host=host, port=port,
                                        log_level="info", access_log=False))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, server.stop)
        try:
            await server.serve()
        finally:
            await listener.close()
            console.print("MLLP 已停止 / MLLP listener stopped")

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(both())
