"""The HL7 inbox page for integration engineers: list with status filter, the raw message with ID numbers and
phones masked, and re-running a failed message (HTMX) through the same service as ``hl7 inbox rerun``."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from onetrip.audit.models import AuditEvent
from onetrip.auth.service import create_user
from onetrip.interop.hl7v2 import service
from onetrip.interop.hl7v2.models import InboxMessage
from onetrip.kit.identifiers import make_resident_id
from tests.factories import PASSWORD, auth, register_patient, token
from tests.hl7v2.helpers import adt
from tests.hl7v2.test_oru import oru_message

ID_NUMBER = make_resident_id("110101", dt.date(1990, 3, 7), 777)
PHONE = "13812345678"


def _store_and_process(db, raw: bytes) -> str:
    with db.session() as s:
        receipt = service.receive(s, raw)
        s.commit()
    with db.session() as s:
        for _ in range(2):
            service.process(s, receipt.inbox_id, max_attempts=2)
        s.commit()
    return receipt.inbox_id


def test_inbox_lists_filters_masks_and_reruns(db, world, client):
    fac = world.org_a_code
    ok = _store_and_process(db, adt(fac, "WEB-ADT-1", mrn="WEB001", id_number=ID_NUMBER, phone=PHONE).encode())
    failed = _store_and_process(db, oru_message(fac, "WEB-ORU-1", mrn="WEB404", filler="WEBF1").encode())
    with db.session() as s:
        assert s.get(InboxMessage, ok).status == "processed"
        assert s.get(InboxMessage, failed).status == "failed"
        create_user(s, "integ1", PASSWORD, ["integration"], "接口工程师", world.org_a)
        s.commit()
    h = auth(token(client, "integ1"))

    page = client.get("/ui/hl7/inbox", headers=h)
    assert page.status_code == 200 and "WEB-ADT-1" in page.text and "WEB-ORU-1" in page.text
    only_failed = client.get("/ui/hl7/inbox?status=failed", headers=h)
    assert "WEB-ORU-1" in only_failed.text and "WEB-ADT-1" not in only_failed.text
    assert f'hx-post="/ui/hl7/inbox/{failed}/rerun"' in only_failed.text

    raw = client.get(f"/ui/hl7/inbox/{ok}", headers=h)
    assert raw.status_code == 200
    assert ID_NUMBER not in raw.text and PHONE not in raw.text
    assert f"110***********{ID_NUMBER[-4:]}" in raw.text and "138****5678" in raw.text
    assert "张" in raw.text  # the rest of the message is shown as sent
    with db.session() as s:
        assert s.scalar(select(AuditEvent.agent_name).where(AuditEvent.entity_what == f"InboxMessage/{ok}")) == "integ1"

    # still failing: the patient is unknown
    again = client.post(f"/ui/hl7/inbox/{failed}/rerun", headers={**h, "HX-Request": "true"})
    assert again.status_code == 200 and "failed" in again.text and again.text.lstrip().startswith("<tr")
    register_patient(db, world.org_a, name="张三", mrn="WEB404")
    fixed = client.post(f"/ui/hl7/inbox/{failed}/rerun", headers={**h, "HX-Request": "true"})
    assert fixed.status_code == 200 and "processed" in fixed.text and "rerun" not in fixed.text
    with db.session() as s:
        row = s.scalar(select(InboxMessage).where(InboxMessage.id == failed))
        assert row.status == "processed" and row.attempts == 4


def test_inbox_is_for_admins_and_integration_engineers(db, world, client):
    assert client.get("/ui/hl7/inbox", headers=auth(token(client, world.users["doc_a"]))).status_code == 403
    assert client.get("/ui/hl7/inbox", headers=auth(token(client, world.users["admin"]))).status_code == 200
    assert client.get("/ui/hl7/inbox/nope", headers=auth(token(client, world.users["admin"]))).status_code == 404
