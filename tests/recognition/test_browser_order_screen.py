"""Browser (issue 25 point 1): a clinician finds a patient, opens 开检查/检验单, adds a head CT that another
institution of the medical community did three days ago and re-uses it, re-orders an abdominal ultrasound
with a reason, and goes on with 安排检查 to the itinerary screen with that exam."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from onetrip.kit.principal import cli_principal
from onetrip.persons.models import PatientRecord
from onetrip.recognition.models import RecognitionDecision
from onetrip.records import service as records
from onetrip.registry.models import Organization
from tests.browser_kit import shot, sign_in
from tests.factories import register_patient
from tests.recognition.test_check import _report
from tests.records.helpers import uid
from tests.scheduling.conftest import build_sched, resident_id

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def scene(db, world, catalogue):
    build_sched(db, world.org_a, days=10)
    id_number = resident_id()
    rid = register_patient(db, world.org_a, name="诸葛秋菊", id_number=id_number, phone="13912345670")
    mrn_b = "B" + uid()
    register_patient(db, world.org_b, name="诸葛秋菊", id_number=id_number, mrn=mrn_b)
    op = cli_principal()
    with db.session() as s:
        ct = records.store_report(s, op, _report(world.org_b, mrn=mrn_b, days=3, code="24725-4", category="imaging",
                                                  section="CT", obs=())).id
        us = _report(world.org_b, mrn=mrn_b, days=5, category="ultrasound", section="US", obs=())
        records.store_report(s, op, us.model_copy(update={"code": None, "code_system": None, "code_local": "US-ABD"}))
        s.commit()
        org_b = s.get(Organization, world.org_b).name
    return {"rid": rid, "ct": ct, "org_b": org_b}


def test_clinician_reuses_one_result_reorders_another_and_arranges_the_exam(browser_page, db, db_kind, world,
                                                                            scene):
    page = browser_page
    page.console_errors.clear()
    sign_in(page, world.users["doc_a"])
    page.click("nav.mainnav >> text=患者")
    page.wait_for_url("**/ui/patients")
    page.locator("#q").press_sequentially("诸葛", delay=60)
    page.click("#patient-results >> text=诸葛秋菊")
    page.wait_for_url(f"**/ui/patients/{scene['rid']}")
    page.click("#new-order-link")
    page.wait_for_url("**/ui/orders/new?patient=*")
    expect(page.locator("h1")).to_contain_text("开检查/检验单")

    # search the catalogue, add the head CT: the other institution's CT of three days ago is offered
    page.locator("#catalogue-q").press_sequentially("头颅CT", delay=60)
    expect(page.locator("#catalogue .catalogue-row")).to_have_count(1)
    page.locator("#catalogue .catalogue-row[data-item=CT-HEAD] button.add-item").click()
    page.wait_for_url("**/ui/orders/new?*c=*")
    ct = page.locator("article.draft-item[data-item=CT-HEAD]")
    expect(ct.locator(".recognise-hint")).to_contain_text("是否采用")
    expect(ct.locator(".prior-place")).to_have_text(scene["org_b"])
    prior_date = ct.locator(".prior-date").inner_text()
    assert len(prior_date) == 10 and prior_date[4] == "-"
    expect(ct.locator(".prior-validity")).to_contain_text("还剩 27 天")
    shot(page, "order-screen-prior", db_kind, docs="order-screen.png")
    ct.locator("button.act-reuse").click()
    page.wait_for_url("**/ui/orders/new?*")
    ct = page.locator("article.draft-item[data-item=CT-HEAD]")
    expect(ct).to_have_attribute("data-state", "reused")
    expect(ct.locator(".decision")).to_contain_text(prior_date)
    expect(ct.locator(".decision")).to_contain_text(scene["org_b"])

    # the abdominal ultrasound: re-order with a reason (first without one: refused on the spot)
    page.fill("#catalogue-q", "")
    page.locator("#catalogue-q").press_sequentially("腹部超声", delay=60)
    expect(page.locator("#catalogue .catalogue-row")).to_have_count(1)
    page.locator("#catalogue .catalogue-row[data-item=US-ABD] button.add-item").click()
    page.wait_for_url("**/ui/orders/new?*")
    us = page.locator("article.draft-item[data-item=US-ABD]")
    expect(us).to_have_attribute("data-state", "undecided")
    us.locator("input[name=remark]").fill("腹痛加重")
    us.locator("button.act-reorder").click()
    us = page.locator("article.draft-item[data-item=US-ABD]")
    expect(us.locator(".row-error")).to_contain_text("请选择重新开单的理由")
    expect(us.locator("input[name=remark]")).to_have_value("腹痛加重")
    assert page.console_errors == ["Failed to load resource: the server responded with a status of 400 (Bad Request)"]
    page.console_errors.clear()  # the refusal is a 400 page, as every inline form error
    us.locator("select.reorder-reason").select_option(label="病情变化，原结果与临床表现不符")
    us.locator("button.act-reorder").click()
    page.wait_for_url("**/ui/orders/new?*")
    us = page.locator("article.draft-item[data-item=US-ABD]")
    expect(us).to_have_attribute("data-state", "reordered")
    body = page.inner_text("body")
    assert "US-ABD" not in body and "CT-HEAD" not in body and "R1." not in body  # words, never codes
    shot(page, "order-screen-decided", db_kind, docs="order-screen-decided.png")

    # 安排检查 → the itinerary screen with the ultrasound
    page.click("#arrange-exams")
    page.wait_for_url(f"**/ui/scheduling/patients/{scene['rid']}?exams=US_ABD")
    expect(page.locator("#suggestion tr.suggestion-row")).to_have_count(1)
    expect(page.locator("#suggestion")).to_contain_text("腹部超声")
    shot(page, "order-screen-itinerary", db_kind)
    with db.session() as s:
        person = s.get(PatientRecord, scene["rid"]).person_id
        decided = s.scalars(select(RecognitionDecision).where(RecognitionDecision.kind == "decision",
                                                              RecognitionDecision.person_id == person)).all()
        assert sorted((d.item_code, d.decision, d.reason_code, d.channel) for d in decided) == [
            ("CT-HEAD", "recognised", None, "web"), ("US-ABD", "repeated", "01", "web")]
    assert not page.console_errors
