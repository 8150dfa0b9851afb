"""A real HTTP receiver for the notification tests: a threaded HTTP server on 127.0.0.1 that verifies the
signature with its own HMAC code (not ours), records every request, and is idempotent on the event id the
way the docs tell receivers to be (the first copy is processed, later copies only acknowledged)."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def independent_verify(secret: str, header: str, body: bytes, tolerance: int = 300) -> bool:
    """What docs/notifications.md tells a receiver to do, written without onetrip's code."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    t = int(fields["t"])
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return abs(time.time() - t) <= tolerance and hmac.compare_digest(expected, fields["v1"])


class Receiver:
    def __init__(self, port: int | None = None, secret: str = "") -> None:
        self.port = port or free_port()
        self.secret = secret
        self.lock = threading.Lock()
        self.hits: list[str] = []  # event id of every request, duplicates included
        self.processed: dict[str, dict] = {}  # event id → the body first processed (idempotent store)
        self.headers: dict[str, dict[str, str]] = {}
        self.bad_signatures = 0
        self.status = 200  # what to answer
        self.delay = 0.0
        self.in_flight: set[str] = set()
        self.overlaps: list[str] = []  # an event id arriving while another copy of it is being handled
        self.hold = threading.Event()  # when cleared (hold_next), requests wait on it
        self.hold.set()
        self.arrived = threading.Event()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                event_id = self.headers.get("X-OneTrip-Event-Id", "")
                with receiver.lock:
                    receiver.hits.append(event_id)
                    if event_id in receiver.in_flight:
                        receiver.overlaps.append(event_id)
                    receiver.in_flight.add(event_id)
                receiver.arrived.set()
                try:
                    receiver.hold.wait(30)
                    if receiver.delay:
                        time.sleep(receiver.delay)
                    signed = independent_verify(receiver.secret, self.headers.get("X-OneTrip-Signature", ""),
                                                body) if receiver.secret else True
                    status = receiver.status if signed else 401
                    with receiver.lock:
                        if not signed:
                            receiver.bad_signatures += 1
                        elif 200 <= status < 300 and event_id not in receiver.processed:
                            receiver.processed[event_id] = json.loads(body) if body else {}
                            receiver.headers[event_id] = dict(self.headers.items())
                finally:
                    with receiver.lock:
                        receiver.in_flight.discard(event_id)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.hold.set()
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def wait_for(predicate, timeout: float = 60, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
