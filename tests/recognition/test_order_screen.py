"""The order screen with the recognition check (/ui/orders, issue 25 point 1): items with and without a
recognisable prior result, re-use recorded as the CDS Hooks path records it, a re-order without a reason
refused inline with what was typed kept, 安排检查 towards the itinerary screen, and other institutions'
results only under the access policy."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from onetrip.audit.models import AuditEvent
from onetrip.kit.principal import cli_principal
from onetrip.outbox.models import OutboxEvent
from onetrip.persons.models import PatientRecord
from onetrip.recognition.models import RecognitionDecision
from onetrip.records import service as records
from onetrip.registry.models import Organization
from onetrip.scheduling import service as scheduling
from tests.factories import auth, register_patient, token
from tests.recognition.test_check import _report
from tests.records.conftest import resident_id
from tests.records.helpers import uid

SEL = "onetrip-recognition-select"


@pytest.fixture(scope="module")
def scene(db, world, catalogue):
    """A resident registered at A (3A) and B (1A, same community): a head CT at B three days ago (recognised
    at A: community imaging) and two CMP panels at A (two days and a day ago)."""
    id_number = resident_id()
    rec_a = register_patient(db, world.org_a, name="钱多多", id_number=id_number)
    mrn_b = "B" + uid()
    register_patient(db, world.org_b, name="钱多多", id_number=id_number, mrn=mrn_b)
    op = cli_principal()
    with db.session() as s:
        scheduling.seed_catalogue(s)
        ct = records.store_report(s, op, _report(world.org_b, mrn=mrn_b, days=3, code="24725-4", category="imaging",
                                                  section="CT", obs=())).id
        cmp_ = records.store_report(s, op, _report(world.org_a, record=rec_a, days=2)).id
        s.commit()
        names = {o.id: o.name for o in s.scalars(select(Organization).where(
            Organization.id.in_([world.org_a, world.org_b])))}
        return {"rec_a": rec_a, "person": s.get(PatientRecord, rec_a).person_id, "ct": ct, "cmp": cmp_,
                "names": names}


def _add(client, tok, rec_id, item, draft=()):
    r = client.post("/ui/orders/add", headers=auth(tok), data={"patient": rec_id, "item": item, "c": list(draft)},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    loc = r.headers["location"]
    return loc, parse_qs(urlsplit(loc).query)["c"]


def _decide(client, tok, rec_id, draft, check, action, **form):
    return client.post("/ui/orders/decide", headers=auth(tok), follow_redirects=False,
                       data={"patient": rec_id, "c": list(draft), "check": check, "action": action, **form})


def _item_block(text, check_id):
    m = re.search(rf'<article class="draft-item" id="item-{check_id}".*?</article>', text, re.S)
    assert m, f"item {check_id} not on the page"
    return m.group(0)


def test_screen_lists_the_catalogue_in_chinese(client, world, rec, scene):
    r = client.get(f"/ui/orders/new?patient={scene['rec_a']}", headers=auth(rec.doc_a))
    assert r.status_code == 200, r.text
    assert "头颅CT平扫" in r.text and "腹部超声" in r.text and "开检查/检验单" in r.text
    r = client.get(f"/ui/orders/new?patient={scene['rec_a']}&q=超声", headers=auth(rec.doc_a))
    rows = re.findall(r'class="catalogue-row" data-item="([^"]+)"', r.text)
    assert rows == ["US-ABD"]
    r = client.get(f"/ui/orders/new?patient={scene['rec_a']}&q=ct-h", headers=auth(rec.doc_a))
    assert re.findall(r'class="catalogue-row" data-item="([^"]+)"', r.text) == ["CT-HEAD"]


def test_items_with_and_without_a_recognisable_prior(client, db, world, rec, scene):
    loc, draft = _add(client, rec.doc_a, scene["rec_a"], "CT-HEAD")
    loc, draft = _add(client, rec.doc_a, scene["rec_a"], "US-ABD", draft)
    assert len(draft) == 2
    again, same = _add(client, rec.doc_a, scene["rec_a"], "CT-HEAD", draft)  # already drafted: no second check
    assert same == draft
    text = client.get(loc, headers=auth(rec.doc_a)).text
    ct, us = _item_block(text, draft[0]), _item_block(text, draft[1])
    # the CT of institution B, with date, place, validity left and the reasons in words
    assert 'data-state="undecided"' in ct and f'data-report="{scene["ct"]}"' in ct
    assert scene["names"][world.org_b] in ct and "还剩 27 天" in ct and "有效期 30 天" in ct
    assert "医共体成员单位的影像检查" in ct and "互认标识 HR" in ct and "采用结果" in ct
    assert not re.search(r"R\d+\.\d+|RULES", ct)
    # no ultrasound before: it is simply ordered
    assert 'data-state="new"' in us and "没有可互认的有效既往结果" in us and "prior-row" not in us
    with db.session() as s:
        rows = [s.get(RecognitionDecision, c) for c in draft]
    assert [(r.kind, r.item_code, r.prior_ids, r.channel) for r in rows] == [
        ("check", "CT-HEAD", [scene["ct"]], "web"), ("check", "US-ABD", [], "web")]
    # the same verdict as the CDS Hooks path for the same order
    cds = client.post(f"/cds-services/{SEL}", headers=auth(rec.doc_a), json={
        "hook": "order-select", "hookInstance": uid(), "context": {
            "userId": "Practitioner/x", "patientId": scene["rec_a"], "draftOrders": {
                "resourceType": "Bundle", "type": "collection", "entry": [
                    {"resource": {"resourceType": "ServiceRequest", "id": "sr1", "status": "draft",
                                  "intent": "order", "code": {"coding": [{"code": "CT-HEAD"}]}}}]}}})
    assert cds.status_code == 200, cds.text
    with db.session() as s:
        assert s.get(RecognitionDecision, cds.json()["cards"][0]["uuid"]).prior_ids == rows[0].prior_ids


def _decision_facts(s, check_id):
    d = s.scalars(select(RecognitionDecision).where(RecognitionDecision.check_id == check_id,
                                                    RecognitionDecision.kind == "decision")).one()
    ev = s.scalars(select(AuditEvent).where(AuditEvent.entity_what == f"RecognitionDecision/{d.id}")).one()
    out = s.scalars(select(OutboxEvent).where(OutboxEvent.aggregate_id == d.id)).one()
    row = {k: getattr(d, k) for k in ("kind", "person_id", "ordering_org_id", "department_id", "item_code",
                                      "user_id", "prior_ids", "decision", "reason_code", "disease", "remark")}
    audit = (ev.subtype, ev.action, ev.outcome, ev.entity_person_id, ev.agent_user_id, ev.agent_org_id)
    payload = {k: v for k, v in out.payload.items() if k != "check_id"}
    return row, audit, (out.event_type, out.aggregate_type, out.person_id, payload), d.channel


def test_reuse_is_recorded_as_the_cds_hooks_path_records_it(client, db, world, rec, scene):
    # CDS Hooks: a card for the CMP, accepted
    cds = client.post(f"/cds-services/{SEL}", headers=auth(rec.doc_a), json={
        "hook": "order-select", "hookInstance": uid(), "context": {
            "userId": "Practitioner/x", "patientId": scene["rec_a"], "draftOrders": {
                "resourceType": "Bundle", "type": "collection", "entry": [
                    {"resource": {"resourceType": "ServiceRequest", "id": "sr1", "status": "draft",
                                  "intent": "order", "code": {"coding": [{"code": "CMP"}]}}}]}}})
    card = cds.json()["cards"][0]["uuid"]
    fb = client.post(f"/cds-services/{SEL}/feedback", headers=auth(rec.doc_a),
                     json={"feedback": [{"card": card, "outcome": "accepted"}]})
    assert fb.status_code == 200, fb.text
    # the screen: the same CMP, re-used
    loc, draft = _add(client, rec.doc_a, scene["rec_a"], "CMP")
    r = _decide(client, rec.doc_a, scene["rec_a"], draft, draft[0], "reuse")
    assert r.status_code == 303, r.text
    with db.session() as s:
        cds_facts, web_facts = _decision_facts(s, card), _decision_facts(s, draft[0])
    assert cds_facts[:3] == web_facts[:3]  # row, audit event, outbox event
    assert web_facts[0]["decision"] == "recognised" and web_facts[0]["prior_ids"] == [scene["cmp"]]
    assert (cds_facts[3], web_facts[3]) == ("cds-hooks", "web")
    block = _item_block(client.get(r.headers["location"], headers=auth(rec.doc_a)).text, draft[0])
    assert 'data-state="reused"' in block and "已采用" in block and scene["names"][world.org_a] in block


def test_reorder_needs_a_reason_inline_keeping_the_input(client, db, world, rec, scene):
    loc, draft = _add(client, rec.doc_a, scene["rec_a"], "CT-HEAD")
    _, draft = _add(client, rec.doc_a, scene["rec_a"], "CBC", draft)  # a lab test with nothing to re-use
    ct = draft[0]
    r = _decide(client, rec.doc_a, scene["rec_a"], draft, ct, "reorder", reason="", disease="", remark="头痛加重需复查")
    assert r.status_code == 400 and "text/html" in r.headers["content-type"]
    block = _item_block(r.text, ct)
    assert "请选择重新开单的理由" in block and 'value="头痛加重需复查"' in block
    # 99 needs the disease: the service's refusal, inline, the reason and the remark kept
    r = _decide(client, rec.doc_a, scene["rec_a"], draft, ct, "reorder", reason="99", disease="", remark="复查")
    block = _item_block(r.text, ct)
    assert r.status_code == 400 and "疾病名称" in block and 'value="99" selected' in block and 'value="复查"' in block
    with db.session() as s:
        assert not s.scalars(select(RecognitionDecision).where(RecognitionDecision.check_id == ct)).all()
    r = _decide(client, rec.doc_a, scene["rec_a"], draft, ct, "reorder", reason="01", disease="", remark="病情变化")
    assert r.status_code == 303, r.text
    with db.session() as s:
        d = s.scalars(select(RecognitionDecision).where(RecognitionDecision.check_id == ct)).one()
        assert (d.decision, d.reason_code, d.remark, d.channel) == ("repeated", "01", "病情变化", "web")
    text = client.get(r.headers["location"], headers=auth(rec.doc_a)).text
    assert 'data-state="reordered"' in _item_block(text, ct) and "病情变化，原结果与临床表现不符" in text
    # 安排检查: the re-ordered CT goes to the itinerary screen; the lab test needs no appointment
    href = html.unescape(re.search(r'id="arrange-exams" href="([^"]+)"', text).group(1))
    assert href == f"/ui/scheduling/patients/{scene['rec_a']}?exams=CT_HEAD"
    assert "血常规" in re.search(r'id="labs-note">(.*?)</p>', text, re.S).group(1)
    itinerary = client.get(href, headers=auth(rec.doc_a))
    assert itinerary.status_code == 200 and 'value="CT_HEAD"' in itinerary.text
    # cancel: the item leaves the draft, nothing recorded
    r = _decide(client, rec.doc_a, scene["rec_a"], draft, draft[1], "cancel")
    assert parse_qs(urlsplit(r.headers["location"]).query)["c"] == [ct]
    with db.session() as s:
        assert not s.scalars(select(RecognitionDecision).where(RecognitionDecision.check_id == draft[1])).all()


def test_another_institutions_results_only_under_the_access_policy(client, db, world, rec, scene):
    url = f"/ui/orders/new?patient={scene['rec_a']}"
    r = client.get(url, headers=auth(rec.doc_c))  # a clinician of an institution with no care relationship
    assert r.status_code == 403 and "紧急访问" in r.text and "钱多多" not in r.text
    r = client.post("/ui/orders/add", headers=auth(rec.doc_c), data={"patient": scene["rec_a"], "item": "CMP"},
                    follow_redirects=False)
    assert r.status_code == 403 and scene["names"][world.org_a] not in r.text
    with db.session() as s:
        assert not s.scalars(select(RecognitionDecision).where(RecognitionDecision.ordering_org_id == rec.org_c)).all()
        assert s.scalars(select(AuditEvent).where(AuditEvent.agent_org_id == rec.org_c, AuditEvent.outcome == "4",
                                                  AuditEvent.entity_person_id == scene["person"])).first()
    # break the glass: the CMP of institution A is offered (the CT is not: community scope, R1.6)
    r = client.post("/ui/break-glass", headers=auth(rec.doc_c), follow_redirects=False, data={
        "person_id": scene["person"], "reason_code": "ETREAT", "reason_text": "急诊抢救，需查看既往检验", "next": url})
    assert r.status_code == 303, r.text
    loc, draft = _add(client, rec.doc_c, scene["rec_a"], "CMP")
    _, draft = _add(client, rec.doc_c, scene["rec_a"], "CT-HEAD", draft)
    text = client.get(loc.split("#")[0] + "&c=" + draft[1], headers=auth(rec.doc_c)).text
    cmp_block, ct_block = _item_block(text, draft[0]), _item_block(text, draft[1])
    assert scene["names"][world.org_a] in cmp_block and 'data-state="undecided"' in cmp_block
    assert 'data-state="new"' in ct_block
    with db.session() as s:
        assert s.scalars(select(AuditEvent).where(AuditEvent.agent_org_id == rec.org_c, AuditEvent.outcome == "0",
                                                  AuditEvent.purpose_of_use == "ETREAT",
                                                  AuditEvent.entity_person_id == scene["person"])).first()


def test_the_patient_page_leads_there_for_clinicians_and_english_is_english(client, world, rec, scene):
    link = f'id="new-order-link" href="/ui/orders/new?patient={scene["rec_a"]}"'
    assert link in client.get(f"/ui/patients/{scene['rec_a']}", headers=auth(rec.doc_a)).text
    admin = token(client, world.users["admin"])
    assert "new-order-link" not in client.get(f"/ui/patients/{scene['rec_a']}", headers=auth(admin)).text
    r = client.get(f"/ui/orders/new?patient={scene['rec_a']}&lang=en", headers=auth(rec.doc_a))
    client.cookies.delete("lang")
    assert r.status_code == 200 and "New exam / lab order" in r.text and "CT Head" in r.text
    assert "头颅CT平扫" not in r.text and "开检查/检验单" not in r.text
