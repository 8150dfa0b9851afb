"""MLLP listener limits (issue 26): connection caps, idle and frame timeouts, the largest frame, linear framing.

Real sockets on 127.0.0.1 (other loopback addresses, 127.0.0.2/3, stand for other clients) against a real
``Listener`` on this module's database (SQLite and PostgreSQL); each test starts its own listener with small limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
import threading
import time
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from onetrip.config import get_settings
from onetrip.interop.hl7v2.mllp import END_BLOCK, START_BLOCK, Framer, Listener, Oversize
from onetrip.interop.hl7v2.models import InboxMessage
from tests.hl7v2.helpers import Peer, adt, segment

KB, MB = 1024, 1024 * 1024
ROOMY = {"max_connections": 50, "max_per_address": 50, "idle_seconds": 60.0, "frame_seconds": 60.0,
         "max_frame_bytes": 16 * MB}


@contextlib.contextmanager
def running(db, **limits):
    """A listener on its own event loop thread, with ``limits`` over roomy defaults."""
    loop = asyncio.new_event_loop()
    listener = Listener(db.factory, max_attempts=1, retry_delay=0.05, **{**ROOMY, **limits})
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    port = asyncio.run_coroutine_threadsafe(listener.start("127.0.0.1", 0), loop).result(10)

    def stats() -> dict[str, int]:
        async def read() -> dict[str, int]:
            return listener.stats()
        return asyncio.run_coroutine_threadsafe(read(), loop).result(10)

    try:
        yield SimpleNamespace(port=port, listener=listener, stats=stats)
    finally:
        asyncio.run_coroutine_threadsafe(listener.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


class From(Peer):
    """A raw MLLP peer connecting from a given loopback address."""

    def __init__(self, port: int, source: str = "127.0.0.1", timeout: float = 20.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))
        self.buf = b""


def closed_by_server(sock: socket.socket, within: float) -> bool:
    """True when the server closes the connection within ``within`` seconds (EOF or reset, nothing sent)."""
    sock.settimeout(within)
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def eventually(check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def stored(db, control_id: str) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(InboxMessage).where(InboxMessage.control_id == control_id))


def padded(facility: str, control_id: str, size: int) -> bytes:
    """An ADT^A04 of about ``size`` bytes: a Z segment carries the padding."""
    msg = adt(facility, control_id, mrn="P" + control_id[-6:]).encode()
    return msg + b"ZPD|1|" + b"x" * max(size - len(msg) - 7, 0) + b"\r"


def test_limits_default_to_the_settings(db, monkeypatch):
    monkeypatch.setenv("ONETRIP_MLLP_MAX_CONNECTIONS", "7")
    monkeypatch.setenv("ONETRIP_MLLP_MAX_FRAME_BYTES", "2048")
    get_settings.cache_clear()
    try:
        listener = Listener(db.factory, idle_seconds=5)
        assert (listener.max_connections, listener.max_frame_bytes, listener.idle_seconds) == (7, 2048, 5)
        assert (listener.max_per_address, listener.frame_seconds) == (8, 60.0)  # the defaults in config.py
    finally:
        get_settings.cache_clear()
    with pytest.raises(ValueError, match="须大于 0 / MLLP limit max_per_address must be greater than 0"):
        Listener(db.factory, max_per_address=0)


def test_connection_cap_per_address_and_in_total(db, world, caplog):
    caplog.set_level(logging.INFO, logger="onetrip.hl7v2")
    with running(db, max_connections=3, max_per_address=2) as mllp:
        a1, a2 = From(mllp.port), From(mllp.port)
        assert segment(a1.call(adt(world.org_a_code, "CAP-1", mrn="C1")), "MSA")[1] == "AA"
        assert segment(a2.call(adt(world.org_a_code, "CAP-2", mrn="C2")), "MSA")[1] == "AA"
        a3 = From(mllp.port)  # a third from the same address: over the per-address cap
        assert closed_by_server(a3.sock, 5)
        assert "ONETRIP_MLLP_MAX_PER_ADDRESS" in caplog.text
        b1 = From(mllp.port, "127.0.0.2")  # another client still gets in (3 open in all)
        assert segment(b1.call(adt(world.org_a_code, "CAP-3", mrn="C3")), "MSA")[1] == "AA"
        c1 = From(mllp.port, "127.0.0.3")  # a fourth, from a third address: over the listener's cap
        assert closed_by_server(c1.sock, 5)
        assert "ONETRIP_MLLP_MAX_CONNECTIONS" in caplog.text
        assert mllp.stats()["connections"] == 3
        a1.close()  # a closed connection frees its place
        assert eventually(lambda: mllp.stats()["connections"] == 2)
        a4 = From(mllp.port)
        assert segment(a4.call(adt(world.org_a_code, "CAP-4", mrn="C4")), "MSA")[1] == "AA"
        for p in (a2, a3, b1, c1, a4):
            p.close()
    assert [stored(db, f"CAP-{i}") for i in range(1, 5)] == [1, 1, 1, 1]


def test_idle_half_frames_are_closed_and_their_memory_freed(db, world, caplog):
    caplog.set_level(logging.INFO, logger="onetrip.hl7v2")
    half = START_BLOCK + padded(world.org_a_code, "HALF-1", 512 * KB)  # a frame that never ends
    with running(db, idle_seconds=2.0, frame_seconds=30.0) as mllp:
        peers = [From(mllp.port, f"127.0.0.{i}") for i in (1, 2, 3)]
        sent = time.monotonic()
        for p in peers:
            p.sock.sendall(half)
        assert eventually(lambda: mllp.stats()["buffered_bytes"] >= 3 * (len(half) - 1))
        assert mllp.stats()["connections"] == 3
        assert all(closed_by_server(p.sock, 10) for p in peers)
        assert time.monotonic() - sent >= 1.9  # not before the idle timeout
        assert eventually(lambda: mllp.stats() == {"connections": 0, "buffered_bytes": 0})
        gc.collect()
        assert not [f for f in gc.get_objects() if isinstance(f, Framer) and f.buffered]  # the buffers are gone
        assert caplog.text.count("idle for 2.0s: closing") == 3
        for p in peers:
            p.close()
        with From(mllp.port).sock as s:  # a connection that never sends anything is closed as well
            assert closed_by_server(s, 10)
    assert stored(db, "HALF-1") == 0


def test_frame_timeout_closes_a_trickling_frame_but_not_a_steady_sender(db, world, caplog):
    caplog.set_level(logging.INFO, logger="onetrip.hl7v2")
    with running(db, idle_seconds=1.5, frame_seconds=3.0) as mllp:
        steady = From(mllp.port)  # whole messages 0.6 s apart, > 3.6 s in all: each frame quick, the link never idle
        for i in range(6):
            assert segment(steady.call(adt(world.org_a_code, f"STEADY-{i}", mrn=f"S{i}")), "MSA")[1] == "AA"
            time.sleep(0.6)
        assert segment(steady.call(adt(world.org_a_code, "STEADY-5", mrn="S5")), "MSA")[1] == "AA"
        steady.close()
        assert stored(db, "STEADY-5") == 1

        slow = From(mllp.port)  # one frame, a byte every 0.3 s: never idle, never finished
        slow.sock.sendall(START_BLOCK + adt(world.org_a_code, "SLOW-1", mrn="S9").encode())
        started, closed = time.monotonic(), False
        while time.monotonic() - started < 15 and not closed:
            closed = closed_by_server(slow.sock, 0.3)
            if not closed:
                try:
                    slow.sock.sendall(b"Z")
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
        elapsed = time.monotonic() - started
        assert closed and 2.8 <= elapsed <= 10, elapsed
        assert "not finished within 3.0s: closing" in caplog.text
        assert "idle for" not in caplog.text
        slow.close()
    assert stored(db, "SLOW-1") == 0


def test_oversize_frame_gets_ar_nothing_stored_and_the_next_message_works(db, world, caplog):
    caplog.set_level(logging.INFO, logger="onetrip.hl7v2")
    big = padded(world.org_a_code, "BIG-1", 1 * MB)
    with running(db, max_frame_bytes=64 * KB) as mllp:
        peer = From(mllp.port)
        peer.sock.sendall(START_BLOCK + big)  # all but the end block: the listener drops it as it comes in
        assert eventually(lambda: "dropping the rest" in caplog.text)
        assert eventually(lambda: mllp.stats()["buffered_bytes"] == 0)  # nothing of it is held
        peer.sock.sendall(END_BLOCK)
        ack = peer.read_ack()
        msa, err = segment(ack, "MSA"), segment(ack, "ERR")
        assert msa[1:3] == ["AR", "BIG-1"]
        assert err[3] == "207^Application internal error^HL70357" and err[4] == "E"
        assert f"消息 {len(big)} 字节，超过 65536 字节上限" in err[8]
        assert f"message of {len(big)} bytes is over the 65536-byte limit" in err[8]
        assert stored(db, "BIG-1") == 0
        # the same connection goes on: a message within the limit is stored and ACKed
        assert segment(peer.call(adt(world.org_a_code, "AFTER-BIG-1", mrn="B1")), "MSA")[1:3] == ["AA", "AFTER-BIG-1"]
        assert stored(db, "AFTER-BIG-1") == 1
        peer.close()

        blob = From(mllp.port)  # over the limit and no MSH to answer: the connection is closed, no reply
        blob.sock.sendall(START_BLOCK + b"\x00garbage" * (16 * KB))
        assert closed_by_server(blob.sock, 10)
        assert "without a readable MSH: closing" in caplog.text
        blob.close()
        again = From(mllp.port)
        assert segment(again.call(adt(world.org_a_code, "AFTER-BIG-2", mrn="B2")), "MSA")[1] == "AA"
        again.close()
    assert stored(db, "AFTER-BIG-2") == 1


def test_large_message_in_small_chunks_is_framed_in_linear_time(db, world):
    big = padded(world.org_a_code, "HUGE-1", 8 * MB)
    wire = b"noise" + START_BLOCK + big + END_BLOCK
    framer, events = Framer(16 * MB), []
    for i in range(0, len(wire), 4 * KB):
        events += framer.feed(wire[i:i + 4 * KB])
    assert events == [big]
    assert framer.scanned == len(wire)  # every byte looked at once: no re-scan of the buffer
    with running(db, max_frame_bytes=16 * MB) as mllp:
        peer = From(mllp.port, timeout=60)
        for i in range(0, len(wire), 4 * KB):
            peer.sock.sendall(wire[i:i + 4 * KB])
        assert segment(peer.read_ack(), "MSA")[1:3] == ["AA", "HUGE-1"]
        peer.close()
    with db.session() as s:
        assert s.scalar(select(InboxMessage.raw).where(InboxMessage.control_id == "HUGE-1")) == big


def test_framer_edges():
    framer = Framer(8)
    assert framer.feed(b"\x0babc\x1c") == [] and framer.buffered == 4  # an end block split across two reads
    assert framer.feed(b"\x0d") == [b"abc"]
    assert framer.feed(b"\x0ba\x1c") == [] and framer.feed(b"b\x1c\x0d") == [b"a\x1cb"]  # a lone FS is content
    assert framer.feed(b"\x0b12345678\x1c\x0d") == [b"12345678"]  # exactly the limit
    events = framer.feed(b"\x0b123456789") + framer.feed(b"0\x1c\x0d\x0bok\x1c\x0d")
    assert events == [Oversize(b"123456789", 9, False), Oversize(b"123456789", 10, True), b"ok"]
    assert not framer.in_frame and framer.buffered == 0 and framer.started == 5
