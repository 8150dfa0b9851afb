"""A real MLLP listener per test module (on a free 127.0.0.1 port, against the module's database) and a
raw-socket peer connected to it."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace

import pytest

from onetrip.interop.hl7v2.mllp import Listener
from tests.hl7v2.helpers import Peer


@pytest.fixture(scope="module")
def mllp(db):
    loop = asyncio.new_event_loop()
    listener = Listener(db.factory, max_attempts=2, retry_delay=0.05)
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    port = asyncio.run_coroutine_threadsafe(listener.start("127.0.0.1", 0), loop).result(10)
    yield SimpleNamespace(port=port)
    asyncio.run_coroutine_threadsafe(listener.close(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


@pytest.fixture
def peer(mllp):
    p = Peer(mllp.port)
    yield p
    p.close()
