"""Issue 26 §6: a sender that reuses an MSH-10 for different content (its counter was reset) is refused —
AR with an ERR naming the reuse (table 0357 code 205, at MSH-10) — and the message is kept as ``conflict``
for a person to decide (inbox page, ``onetrip hl7 inbox list``, ``rerun`` applies it). The same bytes again
still get the stored ACK."""

from __future__ import annotations

import time

from sqlalchemy import func, select

from onetrip.cli import hl7 as cli_hl7
from onetrip.cli.hl7 import hl7_app
from onetrip.interop.hl7v2.models import InboxMessage
from onetrip.persons.models import PatientRecord
from tests.factories import auth, token
from tests.hl7v2.helpers import adt, segment


def _row(db, control_id: str) -> InboxMessage | None:
    with db.session() as s:
        return s.scalar(select(InboxMessage).where(InboxMessage.control_id == control_id))


def _wait(db, control_id: str, status: str, timeout: float = 20.0) -> InboxMessage:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = _row(db, control_id)
        if r is not None and r.status == status:
            return r
        time.sleep(0.05)
    raise AssertionError(f"{control_id}: {None if r is None else (r.status, r.last_error)}, wanted {status}")


def _records(db, mrn: str) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(PatientRecord).where(PatientRecord.mrn == mrn))


def test_reused_control_id_is_refused_kept_and_can_be_applied(db, world, peer, client, cli_env, monkeypatch):
    first_msg = adt(world.org_a_code, "REUSE-1", mrn="RU1", family="李", given="一")
    first = peer.call(first_msg)
    assert segment(first, "MSA")[1] == "AA"
    _wait(db, "REUSE-1", "processed")

    other_msg = adt(world.org_a_code, "REUSE-1", mrn="RU2", family="周", given="二")  # counter reset
    refused = peer.call(other_msg)
    assert segment(refused, "MSA")[1:3] == ["AR", "REUSE-1"]
    err = segment(refused, "ERR")
    assert err[2] == "MSH^1^10" and err[3].startswith("205^Duplicate key identifier^HL70357")
    assert "REUSE-1" in err[8] and "control id" in err[8]
    kept = _row(db, "REUSE-1#reuse-1")
    assert kept is not None and kept.status == "conflict" and kept.ack_code == "AR"
    assert kept.raw == other_msg.encode() and kept.ack == refused
    time.sleep(0.3)  # nothing runs it: not applied
    assert _records(db, "RU2") == 0 and _row(db, "REUSE-1#reuse-1").status == "conflict"

    assert peer.call(first_msg) == first  # the original again: its stored ACK, as before
    assert peer.call(other_msg) == refused  # the conflicting copy again: its stored AR, no second row
    third = peer.call(adt(world.org_a_code, "REUSE-1", mrn="RU3", family="吴", given="三"))
    assert segment(third, "MSA")[1] == "AR" and _row(db, "REUSE-1#reuse-2").status == "conflict"
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(InboxMessage).where(
            InboxMessage.control_id.startswith("REUSE-1"))) == 3

    admin = auth(token(client, world.users["admin"]))
    page = client.get("/ui/hl7/inbox", params={"status": "conflict"}, headers=admin)
    assert page.status_code == 200 and "REUSE-1#reuse-1" in page.text and "REUSE-1#reuse-2" in page.text
    monkeypatch.setattr(cli_hl7.console, "width", 400)  # the table in full, not wrapped at 80 columns
    listed = cli_env.invoke(hl7_app, ["inbox", "list", "--status", "conflict"])
    assert listed.exit_code == 0 and "REUSE-1#reuse-1" in listed.output

    applied = cli_env.invoke(hl7_app, ["inbox", "rerun", kept.id])  # a person decides to apply it
    assert applied.exit_code == 0, applied.output
    assert _row(db, "REUSE-1#reuse-1").status == "processed" and _records(db, "RU2") == 1
    assert _row(db, "REUSE-1#reuse-2").status == "conflict" and _records(db, "RU3") == 0


def test_a_corrected_resend_of_a_refused_message_is_still_evaluated_again(db, world, peer):
    bad = peer.call(adt(world.org_a_code, "REUSE-2", mrn="RU4", family="", given=""))
    assert segment(bad, "MSA")[1] == "AE"
    good = peer.call(adt(world.org_a_code, "REUSE-2", mrn="RU4", family="郑", given="四"))
    assert segment(good, "MSA")[1] == "AA"
    _wait(db, "REUSE-2", "processed")
    assert _row(db, "REUSE-2#reuse-1") is None
