"""``onetrip notify`` — the notification dispatcher and its receivers (issue 6 §6). Registered in
``cli.main`` with ``app.add_typer(notify_app, name="notify")``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Column, Table

notify_app = typer.Typer(help="通知 / notifications: webhooks, FHIR Subscriptions, the dispatcher",
                         no_args_is_help=True)
console = Console()
err = Console(stderr=True)

STATUS_STYLE = {"delivered": "green", "pending": "cyan", "dead": "bold red", "cancelled": "dim"}


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]错误 / error:[/] {message}")
    raise typer.Exit(code)


@notify_app.command("run")
def run(
    once: Annotated[bool, typer.Option("--once", help="处理完到期的投递后退出 / one pass, then exit")] = False,
    poll: Annotated[float, typer.Option(min=0.05, max=60, help="空闲时轮询间隔秒 / idle poll interval (s)")] = 0.5,
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="同时发送数 / parallel HTTP attempts")] = 4,
) -> None:
    """运行通知分发器 / run the dispatcher: outbox → webhooks and FHIR Subscriptions, with retries.
    SIGTERM or Ctrl-C stops it gracefully (attempts in flight finish, unused leases are given back)."""
    import logging
    import signal
    import threading

    from onetrip.db.session import get_sessionmaker
    from onetrip.notify.dispatcher import Dispatcher

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        dispatcher = Dispatcher(get_sessionmaker(), concurrency=concurrency)
        dispatcher.rules()  # fails early on an unreachable or un-migrated database
    except Exception as e:  # noqa: BLE001
        _fail(f"无法连接数据库或规则表有误，请先运行 onetrip db upgrade / cannot start: run `onetrip db upgrade` "
              f"and check ONETRIP_DATABASE_URL ({type(e).__name__}: {e})")
    if once:
        stats = dispatcher.run_once()
        dispatcher.close()
        console.print(f"已读取事件 / events read {stats.fanned_out} · 已发送 / sent {stats.sent} · "
                      f"成功 / delivered {stats.delivered} · 失败 / failed {stats.failed}")
        return
    stop = threading.Event()

    def on_signal(signum, _frame) -> None:
        console.print(f"收到信号 {signum}，正在停止 / signal {signum}: stopping after the attempts in flight")
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    console.print(f"通知分发器运行中 / notify dispatcher running as {dispatcher.worker}", soft_wrap=True)
    try:
        dispatcher.run(stop, poll_seconds=poll)
    finally:
        dispatcher.close()


@notify_app.command("add")
def add(
    url: Annotated[str, typer.Option("--url", help="接收地址 / endpoint URL (http or https)")],
    name: Annotated[str, typer.Option("--name", help="名称 / name (who receives and why)")],
    events: Annotated[str, typer.Option("--events", help="事件类型，逗号分隔 / event types: '*', 'referral.*', ...")]
    = "*",
) -> None:
    """登记一个 Webhook / register a webhook; prints its signing secret once."""
    from onetrip.db.session import unit_of_work
    from onetrip.kit.errors import ApiError
    from onetrip.kit.principal import cli_principal
    from onetrip.notify import service

    try:
        with unit_of_work() as s:
            sub = service.create_subscription(s, cli_principal(), service.SubscriptionInput(
                name=name, endpoint=url, event_types=events.split(",")))
            sid, secret = sub.id, sub.secret
    except ApiError as e:
        _fail(e.message)
    console.print(f"[green]已登记 / registered[/] {sid}")
    console.print(f"签名密钥（只显示这一次）/ signing secret (shown once): {secret}", soft_wrap=True)


@notify_app.command("list")
def list_subscriptions() -> None:
    """列出接收方及投递统计 / list receivers with their delivery counts."""
    from onetrip.db.session import unit_of_work
    from onetrip.notify import service

    with unit_of_work() as s:
        subs = service.list_subscriptions(s)
        counts = service.delivery_counts(s)
    if not subs:
        console.print("[dim]没有接收方 / no receivers[/]")
    for x in subs:  # one block per receiver: ids and URLs stay whole for copying
        state = "[green]active[/]" if x.active else "[yellow]off[/]"
        n = {st: counts.get((x.id, st), 0) for st in ("pending", "delivered", "dead")}
        console.print(f"[bold]{x.id}[/] {x.kind} {state}  pending {n['pending']} · delivered {n['delivered']} · "
                      f"[red]dead {n['dead']}[/]", soft_wrap=True)
        console.print(f"  {x.name}", soft_wrap=True, markup=False)
        console.print(f"  {x.endpoint}  events: {','.join(x.event_types)}"
                      + (f"  aggregate: {x.aggregate_type}" if x.aggregate_type else ""), soft_wrap=True, markup=False)


@notify_app.command("deliveries")
def deliveries(
    status: Annotated[str | None, typer.Option(help="pending | delivered | dead | cancelled")] = None,
    event_type: Annotated[str | None, typer.Option("--event-type", help="e.g. referral.* or patient.created")]
    = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """投递记录（新的在前）/ the delivery log, newest event first."""
    from onetrip.db.session import unit_of_work
    from onetrip.kit.errors import ApiError
    from onetrip.notify import service

    try:
        with unit_of_work() as s:
            rows, total = service.list_deliveries(s, service.DeliveryFilter(status=status, event_type=event_type),
                                                  limit=limit)
            table = Table(Column("delivery", no_wrap=True, min_width=32), Column("event id", no_wrap=True, min_width=32),
                          "type", "status", "fails", "last answer")
            for d in rows:
                last = (f"HTTP {d.last_status_code} " if d.last_status_code else "") + (d.last_error or "")
                table.add_row(d.id, d.event_id, d.event_type, f"[{STATUS_STYLE.get(d.status, '')}]{d.status}[/]",
                              str(d.attempts), last[:80])
    except ApiError as e:
        _fail(e.message)
    console.print(table if rows else "[dim]没有投递记录 / no deliveries[/]")
    console.print(f"[dim]共 / total {total}[/]")


@notify_app.command("redeliver")
def redeliver(
    delivery_id: Annotated[str | None, typer.Argument(help="投递 id / delivery id")] = None,
    all_dead: Annotated[bool, typer.Option("--all-dead", help="重发全部死信 / every dead letter")] = False,
) -> None:
    """重发 / send again on the dispatcher's next pass (a dead letter, or a delivered event)."""
    from onetrip.db.session import unit_of_work
    from onetrip.kit.errors import ApiError
    from onetrip.kit.principal import cli_principal
    from onetrip.notify import service

    if bool(delivery_id) == all_dead:
        _fail("请给出一个投递 id 或 --all-dead / give one delivery id or --all-dead")
    try:
        with unit_of_work() as s:
            n = service.redeliver_dead(s, cli_principal()) if all_dead else \
                (service.redeliver(s, cli_principal(), delivery_id) and 1)
    except ApiError as e:
        _fail(e.message)
    console.print(f"[green]已排队重发 / queued for redelivery:[/] {n}")


@notify_app.command("prune")
def prune(
    older_than_days: Annotated[int, typer.Option("--older-than-days", min=1, max=36500,
                                                 help="保留天数 / keep this many days")] = 90,
) -> None:
    """清理投递记录 / delete delivered and cancelled deliveries (with their attempts) older than N days;
    pending deliveries and dead letters are kept."""
    import datetime as dt

    from onetrip.db.session import unit_of_work
    from onetrip.kit.clock import utcnow
    from onetrip.kit.principal import cli_principal
    from onetrip.notify import service

    with unit_of_work() as s:
        n, a = service.prune(s, cli_principal(), utcnow() - dt.timedelta(days=older_than_days))
    console.print(f"[green]已删除 / deleted[/] {n} deliveries, {a} attempts")
