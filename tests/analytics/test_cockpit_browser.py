"""Browser: the cockpit on a small demo district (issue 8 acceptance) — KPI tiles, ECharts trend lines and
ranking drawn from the locally served ECharts, one drill-down click (community → institution), the
wall-screen layout; screenshots to test-artifacts/ (and docs/img/cockpit.png with
ONETRIP_DOCS_SCREENSHOTS=1)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from onetrip.analytics import facts
from onetrip.auth.service import create_user
from onetrip.demo.analytics import load_encounters
from onetrip.demo.loader import load_district
from onetrip.kit.clock import local_date, utcnow
from onetrip.outbox.service import record_event
from onetrip.registry.models import MedicalCommunity, Organization
from tests.browser_kit import shot, sign_in
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def demo(db):
    """The demo district (small), its visits, a bureau manager, a few referrals; facts rebuilt."""
    today = local_date(utcnow())
    with db.session() as s:
        load_district(s, residents=400, seed=8)
        s.commit()
        load_encounters(s, seed=8, today=today)
        bureau = s.scalars(select(Organization).where(Organization.org_type == "bureau")).first()
        centres = list(s.scalars(select(Organization.id).where(Organization.org_type == "branch_centre")))
        create_user(s, "cockpit_mgr", PASSWORD, ["bureau_manager"], "局领导", bureau.id)
        for n, org in enumerate(centres * 3):
            record_event(s, "referral.submitted", "Referral", f"demo-r{n}", {
                "referral_id": f"demo-r{n}", "direction": "up" if n % 3 else "down", "from_organization_id": org,
                "to_organization_id": None, "to_department_id": None, "submitted_at": utcnow().isoformat(),
                "at": utcnow().isoformat(), "reserved_slot": False})
        s.commit()
        facts.rebuild(s)
        s.commit()
        community = s.scalars(select(MedicalCommunity).order_by(MedicalCommunity.code)).first()
        return today, community.id, community.name


def test_cockpit_loads_draws_and_drills_down(browser_page, db, db_kind, demo):
    today, community_id, community_name = demo
    page = browser_page
    sign_in(page, "cockpit_mgr")
    page.goto("/ui/cockpit")
    assert page.locator("h1").first.inner_text().startswith("指标驾驶舱")
    tile = page.locator('.tile[data-indicator="primary_visit_rate"] .value')
    assert tile.inner_text().endswith("%")
    page.wait_for_function("document.body.dataset.chartsReady === '1'")
    assert page.locator("#trend-rates svg").count() == 1 and page.locator("#ranking svg").count() == 1
    rows = page.locator("#drill-table tbody tr")
    assert rows.count() >= 1
    page.locator("#drill-table tbody a", has_text=community_name).first.click()
    page.wait_for_url(f"**community={community_id}**")
    assert "按机构" in page.locator(".drill h2").inner_text()
    assert page.locator(".crumbs").inner_text().count("›") == 1
    assert page.locator("#drill-table tbody tr").count() >= 2  # the community's institutions
    page.wait_for_function("document.body.dataset.chartsReady === '1'")
    shot(page, "cockpit", db_kind, docs="cockpit.png")
    assert not page.console_errors, page.console_errors
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.goto(f"/ui/cockpit?wall=1&community={community_id}")
    page.wait_for_function("document.body.dataset.chartsReady === '1'")
    assert page.locator("main.wall").count() == 1
    shot(page, "cockpit-wall", db_kind, docs="cockpit-wall.png")
    page.set_viewport_size({"width": 1280, "height": 800})
