"""An asyncio MLLP listener (HL7 v2 over TCP: <VT> message <FS><CR>).

Per message: parse the header → store it in the inbox and **commit** → send the ACK (STYLE 7). Only then
does a single worker run the handler, in arrival order, retrying a failure up to ``max_attempts`` times;
on start-up it picks up whatever was stored but not yet handled (so a crash between ACK and handler loses
nothing). Bad input of any kind is answered (AE/AR) or the connection dropped — the listener stays up.

Limits (issue 26; ``ONETRIP_MLLP_*`` settings, docs/hl7v2.md "Limits"): connections per listener and per
client address (extra ones are closed at once, logged), an idle timeout (no bytes for N seconds), a frame
timeout (a frame started but not finished within N seconds) and a largest frame — a larger one is dropped as
it arrives (never buffered) and answered AR when its MSH can be read, otherwise the connection is closed.
Framing (``Framer``) looks at every received byte once: the end marker is searched for only in new bytes.

Run on its own: ``python -m onetrip.interop.hl7v2.mllp --port 2575`` (reads ONETRIP_DATABASE_URL).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from onetrip.config import Settings, get_settings
from onetrip.interop.hl7v2 import parser, service

log = logging.getLogger("onetrip.hl7v2")

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c\x0d"
_FS, _CR = 0x1C, 0x0D
MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # the default of ONETRIP_MLLP_MAX_FRAME_BYTES
READ_BYTES = 64 * 1024  # one read; also the StreamReader's buffer limit (it pauses the socket at twice this)
HEAD_BYTES = 8 * 1024  # kept of an oversize frame, to read its MSH for the AR
INTERNAL_ERROR = "服务器内部错误，消息未保存，请重发 / application internal error: message not stored, resend it"


def frame(payload: bytes) -> bytes:
    return START_BLOCK + payload + END_BLOCK


# ── framing ────────────────────────────────────────────────────────────────────────────────────────
@dataclass(frozen=True)
class Oversize:
    """A frame over the limit. Reported twice: when it crosses the limit (``complete=False``; ``size`` = bytes
    so far) and when its end marker arrives (``complete=True``; ``size`` = its whole size). ``head`` is its
    first ``HEAD_BYTES`` bytes (where the MSH is); the rest was never kept."""

    head: bytes
    size: int
    complete: bool


class Framer:
    """MLLP framing in linear time and bounded memory — pure, no socket (bench/bench_mllp_framing.py).

    ``feed(chunk)`` returns the events the chunk completes: the payload (``bytes``) of each whole frame, or
    ``Oversize``. Each received byte is examined once (``scanned`` counts them): outside a frame only for the
    start block, inside only for the end block — an end block split across two reads is caught by remembering
    a trailing FS. Bytes outside a frame are noise and dropped; a frame's bytes are kept only up to
    ``max_frame_bytes`` — beyond that it is dropped (all but its head) until its end block.
    """

    def __init__(self, max_frame_bytes: int = MAX_MESSAGE_BYTES) -> None:
        if max_frame_bytes < 1:
            raise ValueError("max_frame_bytes must be ≥ 1")
        self.max_frame_bytes = max_frame_bytes
        self.started = 0  # frames started so far (the listener's frame timer restarts when this moves)
        self.scanned = 0  # bytes examined so far: equals the bytes fed (linear framing)
        self._buf = bytearray()
        self._in_frame = False
        self._fs_pending = False  # the last read ended inside a frame with FS: a CR next ends the frame
        self._dropped: int | None = None  # size so far of an oversize frame being dropped
        self._head = b""

    @property
    def in_frame(self) -> bool:
        return self._in_frame

    @property
    def buffered(self) -> int:
        """Bytes held for the frame in progress."""
        return len(self._buf) + self._fs_pending

    def feed(self, data: bytes) -> list[bytes | Oversize]:
        out: list[bytes | Oversize] = []
        pos, n = 0, len(data)
        while pos < n:
            if not self._in_frame:
                start = data.find(START_BLOCK, pos)
                if start < 0:
                    self.scanned += n - pos
                    break
                self.scanned += start + 1 - pos
                self._in_frame, self.started, pos = True, self.started + 1, start + 1
                continue
            if self._fs_pending:  # FS ended the last read: the frame ends if CR starts this one
                self._fs_pending = False
                if data[pos] == _CR:
                    self.scanned += 1
                    out.append(self._end())
                    pos += 1
                    continue
                self._take(b"\x1c", 0, 1, out)  # a lone FS is content
            end = data.find(END_BLOCK, pos)
            if end >= 0:
                self.scanned += end + len(END_BLOCK) - pos
                self._take(data, pos, end, out)
                out.append(self._end())
                pos = end + len(END_BLOCK)
                continue
            self.scanned += n - pos
            stop = n - 1 if data[n - 1] == _FS else n
            self._take(data, pos, stop, out)
            self._fs_pending = stop < n
            break
        return out

    def _take(self, data: bytes, pos: int, stop: int, out: list[bytes | Oversize]) -> None:
        size = stop - pos
        if self._dropped is not None:
            self._dropped += size
            return
        if len(self._buf) + size <= self.max_frame_bytes:
            self._buf += memoryview(data)[pos:stop]
            return
        kept = bytes(self._buf[:HEAD_BYTES])
        self._head = kept + bytes(data[pos:min(stop, pos + HEAD_BYTES - len(kept))])
        self._dropped = len(self._buf) + size
        self._buf = bytearray()  # a new, empty buffer: the old one's memory goes now
        out.append(Oversize(self._head, self._dropped, complete=False))

    def _end(self) -> bytes | Oversize:
        self._in_frame = False
        if self._dropped is not None:
            event = Oversize(self._head, self._dropped, complete=True)
            self._dropped, self._head = None, b""
            return event
        payload, self._buf = bytes(self._buf), bytearray()
        return payload


def oversize_header(head: bytes) -> parser.Message | None:
    """The MSH of an oversize frame, read from its head — enough to address an AR — or None."""
    line = head.lstrip().split(b"\r", 1)[0].split(b"\n", 1)[0]
    if not line.startswith(b"MSH"):
        return None
    try:
        return parser.parse(line)
    except parser.HL7Error:
        return parser.parse_lenient(line)


def oversize_ack(msg: parser.Message, size: int, limit: int) -> bytes:
    text = (f"消息 {size} 字节，超过 {limit} 字节上限，未保存；请拆分后重发 / message of {size} bytes is over the "
            f"{limit}-byte limit: not stored; split it and resend")
    problem = parser.HL7Problem("AR", parser.APPLICATION_INTERNAL_ERROR, text)
    return parser.build_ack(msg, "AR", text, problem=problem)


# ── the listener ───────────────────────────────────────────────────────────────────────────────────
def limits_from(settings: Settings) -> dict[str, Any]:
    """The listener's limits from the settings (``ONETRIP_MLLP_*``), as ``Listener`` keyword arguments."""
    return {"max_connections": settings.mllp_max_connections, "max_per_address": settings.mllp_max_per_address,
            "idle_seconds": settings.mllp_idle_seconds, "frame_seconds": settings.mllp_frame_seconds,
            "max_frame_bytes": settings.mllp_max_frame_bytes}


@dataclass(eq=False)
class _Connection:
    address: str
    framer: Framer
    writer: asyncio.StreamWriter
    task: asyncio.Task | None


class Listener:
    def __init__(self, factory: sessionmaker[Session], *, max_attempts: int = 3, retry_delay: float = 1.0,
                 batch_size: int = 20, max_connections: int | None = None, max_per_address: int | None = None,
                 idle_seconds: float | None = None, frame_seconds: float | None = None,
                 max_frame_bytes: int | None = None) -> None:
        """Limits left as None come from the settings (``ONETRIP_MLLP_*``)."""
        limits = limits_from(get_settings())
        given = {"max_connections": max_connections, "max_per_address": max_per_address,
                 "idle_seconds": idle_seconds, "frame_seconds": frame_seconds, "max_frame_bytes": max_frame_bytes}
        limits.update({k: v for k, v in given.items() if v is not None})
        for k, v in limits.items():
            if v <= 0:
                raise ValueError(f"MLLP 限值 {k} 须大于 0 / MLLP limit {k} must be greater than 0, got {v}")
        self.factory = factory
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay
        self.batch_size = batch_size  # queued messages handled per transaction (one commit)
        self.max_connections: int = limits["max_connections"]
        self.max_per_address: int = limits["max_per_address"]
        self.idle_seconds: float = limits["idle_seconds"]
        self.frame_seconds: float = limits["frame_seconds"]
        self.max_frame_bytes: int = limits["max_frame_bytes"]
        self.port: int | None = None
        self._server: asyncio.AbstractServer | None = None
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._worker: asyncio.Task | None = None
        self._connections: set[_Connection] = set()
        self._per_address: dict[str, int] = {}

    # ── lifecycle ──────────────────────────────────────────────────────────────────────────────────
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._server = await asyncio.start_server(self._client, host, port, limit=READ_BYTES)
        self.port = self._server.sockets[0].getsockname()[1]
        for inbox_id in await asyncio.to_thread(self._runnable):
            self._queue.put_nowait(inbox_id)
        self._worker = asyncio.create_task(self._work())
        log.info("HL7 MLLP 监听 / listening on %s:%s (connections ≤ %s, ≤ %s per address; idle %ss, frame %ss, "
                 "≤ %s bytes)", host, self.port, self.max_connections, self.max_per_address, self.idle_seconds,
                 self.frame_seconds, self.max_frame_bytes)
        return self.port

    async def serve_forever(self) -> None:
        assert self._server is not None
        await self._server.serve_forever()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            open_now = list(self._connections)
            for conn in open_now:  # open connections end too (not only the listening socket): their reads see EOF
                conn.writer.close()
            tasks = [c.task for c in open_now if c.task is not None]
            if tasks:  # a message being stored finishes (its ACK may not go out: the sender resends, a duplicate)
                await asyncio.wait(tasks, timeout=10)
            await self._server.wait_closed()
        if self._worker is not None:
            self._worker.cancel()

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait until every queued handler has run (tests and shutdown)."""
        await asyncio.wait_for(self._queue.join(), timeout)

    def stats(self) -> dict[str, int]:
        """Open connections and the bytes their frames hold now (call on the listener's loop)."""
        return {"connections": len(self._connections),
                "buffered_bytes": sum(c.framer.buffered for c in self._connections)}

    # ── one connection ─────────────────────────────────────────────────────────────────────────────
    def _refusal(self, address: str) -> str | None:
        if len(self._connections) >= self.max_connections:
            return f"{len(self._connections)} open, limit {self.max_connections} (ONETRIP_MLLP_MAX_CONNECTIONS)"
        if self._per_address.get(address, 0) >= self.max_per_address:
            return (f"{self._per_address[address]} open from this address, limit {self.max_per_address} "
                    "(ONETRIP_MLLP_MAX_PER_ADDRESS)")
        return None

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else str(peer)
        refusal = self._refusal(address)
        if refusal is not None:
            log.warning("HL7 连接数超限，拒绝 / refusing connection from %s: %s", address, refusal)
            writer.close()
            return
        conn = _Connection(address, Framer(self.max_frame_bytes), writer, asyncio.current_task())
        self._connections.add(conn)
        self._per_address[address] = self._per_address.get(address, 0) + 1
        try:
            await self._serve(conn, reader)
        except (ConnectionError, asyncio.IncompleteReadError) as e:
            log.info("HL7 连接中断 / connection from %s lost: %s", peer, type(e).__name__)
        finally:
            self._connections.discard(conn)  # with it goes its framer and whatever it held
            self._per_address[address] -= 1
            if not self._per_address[address]:
                del self._per_address[address]
            writer.close()

    async def _serve(self, conn: _Connection, reader: asyncio.StreamReader) -> None:
        loop = asyncio.get_running_loop()
        framer, writer, peer = conn.framer, conn.writer, conn.address
        frame_no, frame_deadline = 0, None  # the frame in progress and when it must be complete
        while True:
            wait = self.idle_seconds if frame_deadline is None else min(self.idle_seconds,
                                                                         frame_deadline - loop.time())
            try:
                chunk = await asyncio.wait_for(reader.read(READ_BYTES), max(wait, 0.0))
            except TimeoutError:
                if frame_deadline is not None and loop.time() >= frame_deadline - 0.01:
                    log.warning("HL7 消息 %s 秒内未收完，断开 / frame from %s not finished within %ss: closing",
                                self.frame_seconds, peer, self.frame_seconds)
                else:
                    log.info("HL7 连接空闲 %s 秒，断开 / connection from %s idle for %ss: closing",
                             self.idle_seconds, peer, self.idle_seconds)
                return
            if not chunk:
                return
            for event in framer.feed(chunk):
                if isinstance(event, bytes):
                    writer.write(frame(await self._receive(event)))
                    await writer.drain()
                    continue
                msg = oversize_header(event.head)
                if msg is None:
                    log.warning("HL7 消息过大且无可读 MSH，断开 / frame over %s bytes from %s without a readable "
                                "MSH: closing", self.max_frame_bytes, peer)
                    return
                if not event.complete:
                    log.info("HL7 消息超过 %s 字节，丢弃其余部分 / frame from %s over %s bytes: dropping the rest, AR "
                             "at its end", self.max_frame_bytes, peer, self.max_frame_bytes)
                else:  # dropped as it came in; nothing stored
                    log.warning("HL7 消息过大，AR / frame of %s bytes (limit %s) from %s, %s control id %r: "
                                "answered AR, not stored", event.size, self.max_frame_bytes, peer, msg.sender,
                                msg.control_id[:64])
                    writer.write(frame(oversize_ack(msg, event.size, self.max_frame_bytes)))
                    await writer.drain()
            if not framer.in_frame:
                frame_deadline = None
            elif framer.started != frame_no:  # a new frame began in this read
                frame_no, frame_deadline = framer.started, loop.time() + self.frame_seconds

    async def _receive(self, raw: bytes) -> bytes:
        try:
            receipt = await asyncio.to_thread(self._receive_sync, raw)
        except Exception:  # noqa: BLE001 — the database failed: nothing stored, so no AA
            log.exception("HL7 保存失败 / could not store a message")
            problem = parser.HL7Problem("AE", parser.APPLICATION_INTERNAL_ERROR, INTERNAL_ERROR)
            try:
                msg = parser.parse(raw)
            except parser.HL7Error:
                msg = parser.parse_lenient(raw)
            return parser.build_ack(msg, "AE", INTERNAL_ERROR, problem=problem)
        if receipt.status == "received" and not receipt.duplicate:
            self._queue.put_nowait(receipt.inbox_id)
        return receipt.ack

    def _receive_sync(self, raw: bytes) -> service.Receipt:
        with self.factory() as s:
            receipt = service.receive(s, raw)
            s.commit()  # durable before the ACK leaves (STYLE 7)
            return receipt

    # ── handlers ───────────────────────────────────────────────────────────────────────────────────
    def _runnable(self) -> list[str]:
        with self.factory() as s:
            return service.runnable_ids(s)

    def _process_sync(self, inbox_ids: list[str]) -> list[tuple[str, int]]:
        # Several queued messages share one transaction (one commit): each handler still runs in its own
        # savepoint inside ``service.process_many``, so one message's failure does not touch the others; if the
        # commit itself fails, all of them stay ``received`` and are tried again.
        with self.factory() as s:
            rows = service.process_many(s, inbox_ids, max_attempts=self.max_attempts)
            s.commit()
            return [(row.status, row.attempts) for row in rows]

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                outcomes = await asyncio.to_thread(self._process_sync, batch)
                for inbox_id, (status, attempts) in zip(batch, outcomes, strict=True):
                    if status == "received":  # failed but has attempts left: try again later
                        loop.call_later(self.retry_delay * attempts, self._queue.put_nowait, inbox_id)
            except Exception:  # noqa: BLE001 — the worker must survive a database hiccup
                log.exception("HL7 处理器出错 / handler worker error; will retry")
                for inbox_id in batch:
                    loop.call_later(self.retry_delay, self._queue.put_nowait, inbox_id)
            finally:
                for _ in batch:
                    self._queue.task_done()


async def run(factory: sessionmaker[Session], host: str, port: int, *, max_attempts: int = 3,
              settings: Settings | None = None) -> None:
    listener = Listener(factory, max_attempts=max_attempts, **limits_from(settings or get_settings()))
    bound = await listener.start(host, port)
    print(f"MLLP listening on {host}:{bound}", flush=True)
    try:
        await listener.serve_forever()
    finally:
        await listener.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m onetrip.interop.hl7v2.mllp",
                                 description="HL7 v2 MLLP listener (database from ONETRIP_DATABASE_URL)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=2575)
    ap.add_argument("--max-attempts", type=int, default=3)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    from onetrip.db.session import get_sessionmaker

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(get_sessionmaker(), args.host, args.port, max_attempts=args.max_attempts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
