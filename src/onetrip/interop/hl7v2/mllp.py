"""An asyncio MLLP listener (HL7 v2 over TCP: <VT> message <FS><CR>).

Per message: parse the header → store it in the inbox and **commit** → send the ACK (STYLE 7). Only then
does a single worker run the handler, in arrival order, retrying a failure up to ``max_attempts`` times;
on start-up it picks up whatever was stored but not yet handled (so a crash between ACK and handler loses
nothing). Bad input of any kind is answered (AE/AR) or the connection dropped — the listener stays up.

Run on its own: ``python -m onetrip.interop.hl7v2.mllp --port 2575`` (reads ONETRIP_DATABASE_URL).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys

from sqlalchemy.orm import Session, sessionmaker

from onetrip.interop.hl7v2 import parser, service

log = logging.getLogger("onetrip.hl7v2")

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c\x0d"
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
INTERNAL_ERROR = "服务器内部错误，消息未保存，请重发 / application internal error: message not stored, resend it"


def frame(payload: bytes) -> bytes:
    return START_BLOCK + payload + END_BLOCK


class Listener:
    def __init__(self, factory: sessionmaker[Session], *, max_attempts: int = 3, retry_delay: float = 1.0,
                 batch_size: int = 20) -> None:
        self.factory = factory
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay
        self.batch_size = batch_size  # queued messages handled per transaction (one commit)
        self.port: int | None = None
        self._server: asyncio.AbstractServer | None = None
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._worker: asyncio.Task | None = None

    # ── lifecycle ──────────────────────────────────────────────────────────────────────────────────
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._server = await asyncio.start_server(self._client, host, port, limit=MAX_MESSAGE_BYTES)
        self.port = self._server.sockets[0].getsockname()[1]
        for inbox_id in await asyncio.to_thread(self._runnable):
            self._queue.put_nowait(inbox_id)
        self._worker = asyncio.create_task(self._work())
        log.info("HL7 MLLP 监听 / listening on %s:%s", host, self.port)
        return self.port

    async def serve_forever(self) -> None:
        assert self._server is not None
        await self._server.serve_forever()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._worker is not None:
            self._worker.cancel()

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait until every queued handler has run (tests and shutdown)."""
        await asyncio.wait_for(self._queue.join(), timeout)

    # ── one connection ─────────────────────────────────────────────────────────────────────────────
    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        buf = bytearray()
        try:
            while chunk := await reader.read(65536):
                buf += chunk
                while True:
                    start = buf.find(START_BLOCK)
                    if start < 0:
                        buf.clear()  # bytes outside a frame are noise
                        break
                    end = buf.find(END_BLOCK, start + 1)
                    if end < 0:
                        del buf[:start]
                        if len(buf) > MAX_MESSAGE_BYTES:
                            log.warning("HL7 消息过大，断开 / frame over %s bytes from %s: closing",
                                        MAX_MESSAGE_BYTES, peer)
                            return
                        break
                    raw = bytes(buf[start + 1:end])
                    del buf[:end + len(END_BLOCK)]
                    writer.write(frame(await self._receive(raw)))
                    await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError) as e:
            log.info("HL7 连接中断 / connection from %s lost: %s", peer, type(e).__name__)
        finally:
            writer.close()

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


async def run(factory: sessionmaker[Session], host: str, port: int, *, max_attempts: int = 3) -> None:
    listener = Listener(factory, max_attempts=max_attempts)
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
