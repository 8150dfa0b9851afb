"""Browser (issue 20 point 4): the cold-chain page from the main nav — a manual reading out of range typed into the
form raises the alarm, shown with the fridge's quarantined lots; the desk API refuses the lot; releasing without
a note is refused inline; with a note the alarm closes and the lot is usable again at the desk API."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from onetrip.auth.service import create_user
from onetrip.immunization import service
from onetrip.immunization.models import VaccineLot
from onetrip.immunization.schemas import InboundIn
from onetrip.kit import clock
from onetrip.kit.principal import cli_principal
from tests.browser_kit import shot, sign_in
from tests.factories import PASSWORD, register_patient
from tests.immunization.test_desk_api import check, failed

pytestmark = pytest.mark.browser
CODE = "83234567890123450001"


@pytest.fixture(scope="module")
def scene(db, world, schedule_seeded):
    today = clock.local_date(clock.utcnow())
    username = f"vaccold{world.org_a_code}"
    with db.session() as s:
        create_user(s, username, PASSWORD, ["vaccinator"], "接种员丙", world.org_a)
        fridge, _ = service.create_fridge(s, cli_principal(), world.org_a, "冷藏柜-浏览器", False)
        lot, _, _ = service.receive_lot(s, cli_principal(), InboundIn(
            organization_id=world.org_a, fridge_id=fridge.id, vaccine_code="HepB",
            product_name="重组乙型肝炎疫苗（酿酒酵母）10μg", holder="示例生物制品有限公司", specification="0.5 mL/支",
            doses_per_package=1, lot_number="CC2026-07", expiry=today + dt.timedelta(days=300), trace_codes=[CODE]))
        s.commit()
        ids = {"fridge": fridge.id, "lot": lot.id}
    child = register_patient(db, world.org_a, name="冯小雪", sex="2", birth_date=today - dt.timedelta(days=70))
    return {"user": username, "child": child, **ids}


def lot_status(db, lot_id: str) -> str:
    with db.session() as s:
        return s.scalar(select(VaccineLot.status).where(VaccineLot.id == lot_id))


def test_excursion_alarm_release_with_a_note(browser_page, db_kind, db, client, vac, scene):
    page = browser_page
    sign_in(page, scene["user"])
    with page.expect_navigation():
        page.click("#nav-cold-chain")
    card = page.locator(f"#fridge-{scene['fridge']}")
    assert card.get_attribute("data-alarms") == "0"

    page.select_option("#reading-fridge", scene["fridge"])
    page.fill("#reading-celsius", "9.6")  # the time field is prefilled with now
    with page.expect_navigation():
        page.click("#reading-save")
    assert page.locator("#cold-chain-done").get_attribute("data-done") == "alarm"
    card = page.locator(f"#fridge-{scene['fridge']}")
    assert card.get_attribute("data-alarms") == "1"
    lot_row = card.locator(f".quarantined-lots tr.lot-row[data-lot='{scene['lot']}']")
    assert lot_row.count() == 1 and lot_row.get_attribute("data-status") == "quarantined"
    assert "CC2026-07" in lot_row.inner_text() and "9.6 °C" in card.inner_text()
    assert lot_status(db, scene["lot"]) == "quarantined"
    v = check(client, vac, scene["child"], CODE)
    assert list(failed(v)) == ["lot"] and "quarantined" in failed(v)["lot"]
    shot(page, "immunization-cold-chain-alarm", db_kind, docs="immunization-cold-chain.png")

    with page.expect_navigation():  # no note: refused on the page, the lot stays in quarantine
        card.locator("button.release").click()
    error = page.locator(f"#fridge-{scene['fridge']} .release-form .field-error")
    assert error.count() == 1 and error.is_visible()
    assert lot_status(db, scene["lot"]) == "quarantined"
    assert [e for e in page.console_errors if "400" not in e] == []  # the refused form answers 400
    page.console_errors.clear()

    card = page.locator(f"#fridge-{scene['fridge']}")
    card.locator("textarea[name=note]").fill("断电 10 分钟，最高 9.6 °C，经县疾控评估可继续使用")
    with page.expect_navigation():
        card.locator("button.release").click()
    assert page.locator("#cold-chain-done").get_attribute("data-done") == "released"
    assert page.locator(f"#fridge-{scene['fridge']}").get_attribute("data-alarms") == "0"
    assert lot_status(db, scene["lot"]) == "available"
    assert check(client, vac, scene["child"], CODE)["ok"]  # usable again at the desk

    with page.expect_navigation():
        page.click(f"#fridge-{scene['fridge']} h2 a")
    assert page.locator("#fridge-sparkline").count() == 1
    assert page.locator("tr.reading-row[data-excursion=yes]").count() == 1
    assert not page.console_errors
