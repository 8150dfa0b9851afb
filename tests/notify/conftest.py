"""Shared pieces of the notification tests: set the notify rule table for fast retries, run an in-process
dispatcher in a thread, create events through real services."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from onetrip.kit.principal import cli_principal
from onetrip.notify import service
from onetrip.notify.dispatcher import Dispatcher
from onetrip.notify.models import Delivery
from onetrip.outbox.service import record_event
from onetrip.rules.service import set_rule

FAST = {"base_delay_seconds": 0.1, "max_delay_seconds": 0.5, "jitter": 0.5, "timeout_seconds": 2,
        "lease_seconds": 15, "max_attempts": 100}


def set_rules(db, **values) -> None:
    with db.session() as s:
        for k, v in values.items():
            set_rule(s, "notify", k, v, by="test")
        s.commit()


def subscribe(db, url: str, *, events=("*",), name="测试接收方", secret: str | None = None) -> tuple[str, str]:
    with db.session() as s:
        sub = service.create_subscription(s, cli_principal(), service.SubscriptionInput(
            name=name, endpoint=url, event_types=list(events), secret=secret))
        s.commit()
        return sub.id, sub.secret


def unsubscribe_all(db) -> None:
    with db.session() as s:
        for sub in service.list_subscriptions(s):
            service.delete_subscription(s, cli_principal(), sub.id)
        s.commit()


def emit(db, n: int, event_type: str = "test.ping", payload: dict | None = None) -> list[str]:
    """Events written through the outbox service, one committed transaction each."""
    ids = []
    for i in range(n):
        with db.session() as s:
            ev = record_event(s, event_type, "Task", f"t{i}", {"i": i, **(payload or {})})
            s.commit()
            ids.append(ev.event_id)
    return ids


def deliveries(db, sub_id: str) -> list[Delivery]:
    with db.session() as s:
        return list(s.scalars(select(Delivery).where(Delivery.subscription_id == sub_id)))


class Running:
    def __init__(self, db, **kw) -> None:
        self.dispatcher = Dispatcher(db.factory, **kw)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.dispatcher.run, args=(self.stop,),
                                       kwargs={"poll_seconds": 0.05}, daemon=True)

    def __enter__(self) -> Dispatcher:
        self.thread.start()
        return self.dispatcher

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(30)
        assert not self.thread.is_alive(), "the dispatcher did not stop"
        self.dispatcher.close()


@pytest.fixture
def running(db):
    return lambda **kw: Running(db, **kw)
