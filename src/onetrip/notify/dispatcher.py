"""The dispatcher: outbox → deliveries → HTTP POSTs, at least once.

One pass (``Dispatcher.run_once``):

1. **Fan-out** (``fan_out``, one short transaction holding the ``notify_feed`` row lock): read outbox events
   above ``floor_id`` in id order, create one ``notify_delivery`` per matching active subscription, move the
   floor — all in the same transaction, so each event is fanned out exactly once however many dispatchers
   run. PostgreSQL hands out sequence ids before commit, so an event with a lower id can become visible after
   a higher one was read: such missing ids are kept in ``gaps`` and looked for on every pass until no
   transaction that was open when the gap was noticed is still open (``pg_stat_activity``; then the id was
   rolled back), however long that takes (N5, ``gap_settled``). SQLite assigns ids under its single writer
   lock, so it has no such gaps.
2. **Claim** (a short transaction): due ``pending`` deliveries, oldest event first, are leased to this
   dispatcher for ``lease_seconds`` (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; ``BEGIN IMMEDIATE`` serialises
   claims on SQLite). Two dispatchers never hold the same delivery (N4).
3. **Send** (no transaction open): POST with ``X-OneTrip-Event-Id`` and the HMAC signature.
4. **Record** (a short transaction per delivery): an attempt row in the log; 2xx → ``delivered``; otherwise
   the next attempt after the back-off (N2), or ``dead`` after ``max_attempts`` (N1).

A crash (even ``kill -9``) between 2 and 4 leaves the lease; when it runs out the delivery is sent again —
the receiver may see an event twice and de-duplicates on its id (at-least-once).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass

import httpx
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from onetrip import __version__
from onetrip.db.concurrency import ids_commit_in_order, oldest_open_transaction
from onetrip.db.session import unit_of_work
from onetrip.kit.clock import utcnow
from onetrip.kit.masking import scrub
from onetrip.notify import rules as R
from onetrip.notify import signing
from onetrip.notify.models import Attempt, Delivery, Feed, Subscription
from onetrip.notify.service import notify_rules
from onetrip.outbox.models import OutboxEvent

log = logging.getLogger("onetrip.notify")

FAN_OUT_BATCH = 1000
MAX_GAP_RUN = 1000  # a jump of more ids than this (a sequence reset) is not awaited id by id
RULES_TTL_SECONDS = 5.0


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"[:80]


# --- 1. fan-out ------------------------------------------------------------------------------------

def _lock_feed(session: Session) -> Feed:
    feed = session.execute(select(Feed).where(Feed.id == 1).with_for_update()).scalar_one_or_none()
    if feed is None:  # a database whose row was removed by hand: start again from the beginning
        feed = Feed(id=1, floor_id=0, gaps={}, updated_at=utcnow())
        session.add(feed)
        session.flush()
    return feed


def gap_settled(noticed: dt.datetime, now: dt.datetime, oldest_open: dt.datetime | None, *, precise: bool,
                grace_seconds: float) -> bool:
    """N5: may a missing outbox id, first noticed at ``noticed``, be taken as rolled back?

    Its id was handed out before a higher id was seen, so only a transaction already open at ``noticed``
    can still commit it. On PostgreSQL (``precise``) that is known: once no transaction that began before
    ``noticed`` is open any more, the id will never appear — however long that transaction ran. The grace
    period is the fallback when that cannot be known (and a cap of 24 × grace against an endless one)."""
    if now - noticed > dt.timedelta(seconds=24 * grace_seconds):
        return True
    if precise:
        return oldest_open is None or oldest_open > noticed
    return now - noticed > dt.timedelta(seconds=grace_seconds)


def fan_out(session: Session, rules: R.NotifyRules, *, now: dt.datetime | None = None,
            limit: int = FAN_OUT_BATCH) -> int:
    """Create the deliveries of outbox events not fanned out yet; returns how many events were read."""
    now = now or utcnow()
    feed = _lock_feed(session)
    # Asked before reading the outbox: a transaction that commits in between is then seen by the reads.
    precise = not ids_commit_in_order(session)
    oldest_open = oldest_open_transaction(session) if feed.gaps else None
    gaps: dict[str, str] = dict(feed.gaps or {})
    subs = list(session.scalars(select(Subscription).where(Subscription.active.is_(True),
                                                           Subscription.deleted_at.is_(None))))
    cols = select(OutboxEvent.id, OutboxEvent.event_id, OutboxEvent.event_type, OutboxEvent.aggregate_type,
                  OutboxEvent.occurred_at)
    rows = session.execute(cols.where(OutboxEvent.id > feed.floor_id).order_by(OutboxEvent.id).limit(limit)).all()
    late = session.execute(cols.where(OutboxEvent.id.in_([int(g) for g in gaps]))).all() if gaps else []
    batch = [*late, *rows]
    existing: set[tuple[str, int]] = set()
    if batch and subs:  # only after a reset of the position by hand: never create a delivery twice
        existing = set(session.execute(select(Delivery.subscription_id, Delivery.outbox_id).where(
            Delivery.subscription_id.in_([s.id for s in subs]),
            Delivery.outbox_id.between(min(e.id for e in batch), max(e.id for e in batch)))).tuples())
    for ev in batch:
        for sub in subs:
            if ev.occurred_at < sub.created_at or (sub.ends_at is not None and ev.occurred_at > sub.ends_at):
                continue
            if (sub.id, ev.id) in existing:
                continue
            if R.matches(ev.event_type, ev.aggregate_type, list(sub.event_types), sub.aggregate_type):
                session.add(Delivery(subscription_id=sub.id, outbox_id=ev.id, event_id=ev.event_id,
                                     event_type=ev.event_type, status="pending", attempts=0, next_attempt_at=now))
    for ev in late:
        gaps.pop(str(ev.id), None)
        log.info("通知：迟到的事件已分发 / late outbox event %s fanned out", ev.id)
    expected = feed.floor_id + 1
    for ev in rows:
        if 0 < ev.id - expected <= MAX_GAP_RUN:
            gaps.update(dict.fromkeys((str(i) for i in range(expected, ev.id)), now.isoformat()))
        expected = ev.id + 1
    known = set(feed.gaps or {})  # gaps noticed in this pass are judged from the next pass on
    gaps = {k: v for k, v in gaps.items()
            if k not in known or not gap_settled(dt.datetime.fromisoformat(v), now, oldest_open,
                                                 precise=precise, grace_seconds=rules.gap_grace_seconds)}
    if rows:
        feed.floor_id = rows[-1].id
    if rows or late or gaps != feed.gaps:
        feed.gaps, feed.updated_at = gaps, now
    session.flush()
    return len(rows) + len(late)


# --- 2. claim ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Claim:
    delivery_id: str
    attempt_no: int
    event_id: str
    event_type: str
    endpoint: str
    secret: str
    headers: tuple[str, ...]
    body: bytes


def body_bytes(ev: OutboxEvent, sub: Subscription) -> bytes:
    if sub.payload == "empty":
        return b""
    env = R.envelope(event_id=ev.event_id, event_type=ev.event_type, occurred_at=ev.occurred_at, sequence=ev.id,
                     aggregate_type=ev.aggregate_type, aggregate_id=ev.aggregate_id, payload=ev.payload,
                     subscription_id=sub.id)
    return json.dumps(env, ensure_ascii=False, separators=(",", ":"), sort_keys=True, default=str).encode()


def claim(session: Session, rules: R.NotifyRules, worker: str, *, now: dt.datetime | None = None,
          limit: int | None = None) -> list[Claim]:
    """Lease due deliveries to ``worker`` (N4) and return what to send."""
    now = now or utcnow()
    q = (select(Delivery, Subscription, OutboxEvent)
         .join(Subscription, Subscription.id == Delivery.subscription_id)
         .join(OutboxEvent, OutboxEvent.id == Delivery.outbox_id)
         .where(Delivery.status == "pending", Delivery.next_attempt_at <= now,
                or_(Delivery.locked_until.is_(None), Delivery.locked_until <= now),
                Subscription.active.is_(True), Subscription.deleted_at.is_(None))
         .order_by(Delivery.outbox_id, Delivery.id).limit(limit or rules.batch_size)
         .with_for_update(of=Delivery, skip_locked=True))
    out = []
    for d, sub, ev in session.execute(q).all():
        d.locked_until, d.locked_by = now + dt.timedelta(seconds=rules.lease_seconds), worker
        out.append(Claim(d.id, d.attempts + 1, d.event_id, d.event_type, sub.endpoint, sub.secret,
                         tuple(sub.headers or ()), body_bytes(ev, sub)))
    session.flush()
    return out


def release(session: Session, worker: str, delivery_ids: list[str]) -> None:
    """Give back leases not used (a graceful shutdown), so another dispatcher can send them at once."""
    if delivery_ids:
        session.execute(update(Delivery).where(Delivery.id.in_(delivery_ids), Delivery.locked_by == worker)
                        .values(locked_until=None, locked_by=None))


# --- 3. send -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None
    duration_ms: int
    retry_after: float | None = None


def request_headers(c: Claim, timestamp: int) -> dict[str, str]:
    headers = {}
    for h in c.headers:
        name, _, value = h.partition(":")
        headers[name.strip()] = value.strip()
    headers.update({
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": f"OneTrip-Notify/{__version__}",
        "X-OneTrip-Event-Id": c.event_id,
        "X-OneTrip-Event-Type": c.event_type,
        "X-OneTrip-Delivery-Id": c.delivery_id,
        "X-OneTrip-Delivery-Attempt": str(c.attempt_no),
        signing.HEADER: signing.sign(c.secret, timestamp, c.body),
    })
    return headers


def send(client: httpx.Client, c: Claim, rules: R.NotifyRules) -> Outcome:
    """One HTTP attempt, cut off after 3 × ``timeout_seconds`` in all (so it ends within the lease, N4)."""
    started = time.monotonic()
    deadline = started + 3 * rules.timeout_seconds

    def ms() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        with client.stream("POST", c.endpoint, content=c.body, headers=request_headers(c, int(time.time())),
                           timeout=rules.timeout_seconds) as resp:
            for _ in resp.iter_bytes(4096):  # the answer is not used; read it so the connection is reusable
                if time.monotonic() > deadline:
                    return Outcome(resp.status_code, "应答超时 / answer too slow: cut off", ms())
            retry_after = R.parse_retry_after(resp.headers.get("retry-after"), utcnow())
            error = None if R.is_success(resp.status_code) else f"HTTP {resp.status_code}"
            return Outcome(resp.status_code, error, ms(), retry_after)
    except httpx.TimeoutException as e:
        return Outcome(None, f"超时 / timeout: {type(e).__name__}", ms())
    except httpx.HTTPError as e:
        return Outcome(None, f"无法送达 / unreachable: {type(e).__name__}: {e}"[:500], ms())
    except Exception as e:  # noqa: BLE001 — e.g. a URL or header httpx refuses: a failed attempt like any other
        return Outcome(None, f"无法发送 / cannot send: {type(e).__name__}: {e}"[:500], ms())


# --- 4. record ---------------------------------------------------------------------------------------

def record(session: Session, rules: R.NotifyRules, worker: str, c: Claim, outcome: Outcome, *,
           started_at: dt.datetime, rand: float, now: dt.datetime | None = None,
           row: Delivery | None = None, flush: bool = True) -> Delivery:
    """Log the attempt and move the delivery on. ``row``: the delivery already loaded FOR UPDATE."""
    now = now or utcnow()
    d = row or session.get(Delivery, c.delivery_id, with_for_update=True, populate_existing=True)
    assert d is not None
    ok = R.is_success(outcome.status_code)
    session.add(Attempt(delivery_id=d.id, attempt_no=c.attempt_no, started_at=started_at,
                        duration_ms=outcome.duration_ms, status_code=outcome.status_code, ok=ok,
                        error=scrub(outcome.error)[:500] if outcome.error else None, worker=worker))
    mine = d.locked_by == worker
    d.last_status_code = outcome.status_code
    if ok:
        if d.status == "pending":
            d.status, d.delivered_at, d.last_error = "delivered", now, None
    elif mine and d.status == "pending":
        d.attempts += 1
        d.last_error = scrub(outcome.error or "")[:2000]
        if R.is_dead(d.attempts, rules.max_attempts):
            d.status = "dead"
            log.warning(scrub(f"通知进入死信 / dead letter after {d.attempts} attempts: delivery {d.id} event "
                              f"{d.event_id} {d.event_type}: {d.last_error}"))
        else:
            d.next_attempt_at = now + dt.timedelta(
                seconds=R.retry_delay(d.attempts, rules, rand, outcome.retry_after))
    if mine:
        d.locked_until = d.locked_by = None
    if flush:
        session.flush()
    return d


# --- the loop ----------------------------------------------------------------------------------------

@dataclass
class PassStats:
    fanned_out: int = 0
    sent: int = 0
    delivered: int = 0
    failed: int = 0


class Dispatcher:
    """Runs passes until stopped. ``concurrency`` deliveries are sent at once (threads, one session each)."""

    def __init__(self, factory: sessionmaker[Session], *, worker: str | None = None, concurrency: int = 4,
                 rand: Callable[[], float] = random.random, client: httpx.Client | None = None) -> None:
        self.factory = factory
        self.worker = worker or worker_name()
        self.concurrency = max(1, concurrency)
        self.rand = rand
        self.client = client or httpx.Client(follow_redirects=False, trust_env=False,
                                             limits=httpx.Limits(max_connections=max(10, 2 * self.concurrency)))
        self._own_client = client is None
        self._rules: tuple[float, R.NotifyRules] | None = None

    def close(self) -> None:
        if self._own_client:
            self.client.close()

    def rules(self) -> R.NotifyRules:
        """The notify rule table, read again at most every few seconds (a change applies within that)."""
        now = time.monotonic()
        if self._rules is None or now - self._rules[0] > RULES_TTL_SECONDS:
            with unit_of_work(self.factory) as s:
                self._rules = (now, notify_rules(s))
        return self._rules[1]

    def fan_out_all(self, rules: R.NotifyRules) -> int:
        total = 0
        while True:
            with unit_of_work(self.factory) as s:
                n = fan_out(s, rules)
            total += n
            if n < FAN_OUT_BATCH:
                return total

    def _send(self, c: Claim, rules: R.NotifyRules, send_by: float,
              stop: threading.Event | None) -> tuple[dt.datetime, Outcome] | None:
        """Send unless stopping, or unless the attempt could outlast the lease (N4): a claim that waited
        too long for a free sender is given back instead of racing a dispatcher that may take it over."""
        if (stop is not None and stop.is_set()) or time.monotonic() > send_by:
            return None
        started_at = utcnow()
        outcome = send(self.client, c, rules)
        if outcome.error:
            log.info(scrub(f"通知投递失败 / delivery {c.delivery_id} attempt {c.attempt_no} to {c.endpoint}: "
                           f"{outcome.error}"))
        return started_at, outcome

    def run_once(self, stop: threading.Event | None = None) -> PassStats:
        """Fan out, claim a batch, send it ``concurrency`` at a time; the results that come in together are
        recorded in one transaction (fewer writes; a crash before recording means a resend, never a loss)."""
        rules = self.rules()
        stats = PassStats(fanned_out=self.fan_out_all(rules))
        claimed_at = time.monotonic()
        with unit_of_work(self.factory) as s:
            claims = claim(s, rules, self.worker)
        if not claims:
            return stats
        send_by = claimed_at + rules.lease_seconds - 3 * rules.timeout_seconds - 1  # N4, see LEASE_SPARE_SECONDS
        unsent: list[str] = []
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(claims)),
                                thread_name_prefix="notify-send") as pool:
            pending = {pool.submit(self._send, c, rules, send_by, stop): c for c in claims}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                results = []
                for f in done:
                    c = pending.pop(f)
                    try:
                        result = f.result()
                    except Exception:  # noqa: BLE001 — keeps its lease; sent again when the lease ends
                        log.exception("通知发送出错 / sending delivery %s failed", c.delivery_id)
                        continue
                    if result is None:
                        unsent.append(c.delivery_id)
                    else:
                        results.append((c, *result))
                if not results:
                    continue
                try:
                    with unit_of_work(self.factory) as s:
                        rows = {d.id: d for d in s.scalars(
                            select(Delivery).where(Delivery.id.in_([c.delivery_id for c, _, _ in results]))
                            .with_for_update().execution_options(populate_existing=True))}
                        for c, started_at, outcome in results:
                            record(s, rules, self.worker, c, outcome, started_at=started_at, rand=self.rand(),
                                   row=rows[c.delivery_id], flush=False)  # one flush at commit
                except Exception:  # noqa: BLE001 — leases kept: these are sent again when they end
                    log.exception("通知记录失败 / could not record %d deliveries", len(results))
                    continue
                for _, _, outcome in results:
                    ok = R.is_success(outcome.status_code)
                    stats.sent += 1
                    stats.delivered += ok
                    stats.failed += not ok
        if unsent:
            with unit_of_work(self.factory) as s:
                release(s, self.worker, unsent)
        return stats

    def run(self, stop: threading.Event, *, poll_seconds: float = 0.5) -> None:
        """Pass after pass until ``stop`` is set; sleeps ``poll_seconds`` when there was nothing to do. A
        stop request lets the attempts in flight finish and gives back the leases not yet used."""
        log.info("通知分发器启动 / notify dispatcher %s started", self.worker)
        while not stop.is_set():
            try:
                stats = self.run_once(stop)
            except Exception:  # noqa: BLE001 — a database hiccup must not end the worker
                log.exception("通知分发出错，稍后重试 / notify pass failed; retrying")
                stop.wait(min(30.0, poll_seconds * 10))
                continue
            if not (stats.sent or stats.fanned_out):
                stop.wait(poll_seconds)
        log.info("通知分发器已停止 / notify dispatcher %s stopped", self.worker)


def start_background(factory: sessionmaker[Session], *, poll_seconds: float = 0.5,
                     concurrency: int = 4) -> tuple[threading.Thread, threading.Event, Dispatcher]:
    """Run a dispatcher in a daemon thread of this process (``onetrip serve --notify``)."""
    stop = threading.Event()
    dispatcher = Dispatcher(factory, concurrency=concurrency)
    thread = threading.Thread(target=dispatcher.run, args=(stop,), kwargs={"poll_seconds": poll_seconds},
                              name="notify-dispatcher", daemon=True)
    thread.start()
    return thread, stop, dispatcher


def stop_background(thread: threading.Thread, stop: threading.Event, dispatcher: Dispatcher,
                    timeout: float = 60) -> None:
    stop.set()
    thread.join(timeout)
    with contextlib.suppress(Exception):
        dispatcher.close()
