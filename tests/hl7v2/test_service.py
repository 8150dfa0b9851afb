"""The inbox service without sockets: concurrent duplicates converge on one row and one ACK."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from onetrip.interop.hl7v2 import service
from onetrip.interop.hl7v2.models import InboxMessage
from tests.hl7v2.helpers import adt


def test_concurrent_copies_of_one_message_store_one_row(db, world):
    raw = adt(world.org_a_code, "RACE-1", mrn="R1").encode()
    barrier = threading.Barrier(4)
    acks: list[bytes] = []

    def deliver() -> None:
        with db.session() as s:
            barrier.wait()
            receipt = service.receive(s, raw)
            s.commit()
            acks.append(receipt.ack)

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(acks) == 4 and len(set(acks)) == 1
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(InboxMessage).where(InboxMessage.control_id == "RACE-1")) == 1


def test_message_without_control_id_is_answered_but_not_stored(db, world):
    with db.session() as s:
        receipt = service.receive(s, adt(world.org_a_code, "").encode())
        assert receipt.inbox_id is None and b"MSA|AE" in receipt.ack
