"""Browser: a GBK-encoded ADT^A04 + ORU^R01 stream with Chinese names, sent over a real MLLP socket, round-trips
to the web timeline (issue 4 acceptance) — the name, the Chinese item and conclusion text, the institution, the
HR mark and validity, and an ECharts trend chart of the repeated glucose values."""

from __future__ import annotations

import datetime as dt

import pytest

from onetrip.records.models import DiagnosticReport
from tests.browser_kit import shot, sign_in
from tests.hl7v2.conftest import mllp  # noqa: F401 — the real listener fixture
from tests.hl7v2.helpers import Peer, adt, segment
from tests.hl7v2.test_oru import oru_message, wait_for

pytestmark = pytest.mark.browser

CN = dt.timezone(dt.timedelta(hours=8))


def _ts(days_ago: float) -> str:
    return (dt.datetime.now(CN) - dt.timedelta(days=days_ago)).strftime("%Y%m%d%H%M")


@pytest.fixture(scope="module")
def gbk_patient(db, world, mllp):  # noqa: F811
    fac = world.org_a_code
    peer = Peer(mllp.port)
    try:
        ack = peer.call(adt(fac, "TLB-ADT-1", mrn="GBK001", family="欧阳", given="娜娜", charset="GBK"), "gbk")
        assert segment(ack, "MSA", "gbk")[1] == "AA"
        wait_for(db, "TLB-ADT-1", "processed")
        for n, (days, value) in enumerate([(200, 6.1), (90, 7.4), (1, 8.2)], start=1):
            obx = [f"OBX|1|NM|2345-7^Glucose^LN^GLU^空腹血糖^L||{value}|mmol/L|3.9-6.1|H|||F",
                   "OBX|2|TX|||肝脏形态正常，回声均匀||||||F"]
            msg = oru_message(fac, f"TLB-ORU-{n}", mrn="GBK001", filler=f"TLBF{n}", charset="GBK", obx=obx,
                              notes=["复查血糖"], when=_ts(days))
            ack = peer.call(msg, "gbk")
            assert segment(ack, "MSA", "gbk")[1] == "AA"
            wait_for(db, f"TLB-ORU-{n}", "processed")
    finally:
        peer.close()
    with db.session() as s:
        from sqlalchemy import select

        rep = s.scalar(select(DiagnosticReport).where(DiagnosticReport.identifier_value == "TLBF3"))
        rep.recognition_mark = "浙HR"  # the LIS marks this one recognisable (HL7 has no standard field)
        s.commit()
        return rep.person_id


def test_gbk_oru_round_trips_to_the_web_timeline(browser_page, db, db_kind, world, gbk_patient):
    page = browser_page
    sign_in(page, world.users["doc_a"])
    page.goto("/ui/patients")
    page.goto(f"/ui/persons/{gbk_patient}")
    page.click("#results-link")
    page.wait_for_url(f"**/ui/persons/{gbk_patient}/results")
    assert page.locator("#person-name").inner_text() == "欧阳娜娜"
    rows = page.locator("tr.result")
    assert rows.count() == 3
    first = rows.nth(0)
    assert "综合代谢检查" in first.inner_text()
    assert "肝脏形态正常，回声均匀" in first.locator(".conclusion").inner_text()
    assert first.locator(".org").inner_text().startswith("测试总院")
    assert first.locator(".mark").inner_text() == "浙HR"
    assert "有效期内" in first.locator(".validity").inner_text()  # 1 day old, 7-day chemistry window
    assert "已过期" in rows.nth(2).locator(".validity").inner_text()  # 200 days old
    chart = page.locator("#trend-1")
    chart.locator("canvas").first.wait_for()
    assert chart.get_attribute("data-rendered") == "1"
    shot(page, "records-timeline", db_kind, docs="records-timeline.png")
    page.goto(f"/ui/persons/{gbk_patient}/results?lang=en")
    assert "Results across institutions" in page.locator("h1").inner_text()
    assert page.locator("tr.result").count() == 3
    page.goto(f"/ui/persons/{gbk_patient}/results?lang=zh_CN")
    assert not page.console_errors, page.console_errors
