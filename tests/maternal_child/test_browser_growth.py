"""Browser (issue 21 acceptance): the growth chart page draws the WHO curves −3 … +3 SD and the child's points
(one per measured check, where its z-score puts it), with the table alternative; a screenshot for the docs
(docs/img/mch-growth-chart.png with ONETRIP_DOCS_SCREENSHOTS=1)."""

from __future__ import annotations

import datetime as dt

import pytest

from onetrip.auth.service import create_user
from onetrip.kit import clock
from onetrip.maternal_child import growth
from tests.browser_kit import shot, sign_in
from tests.factories import PASSWORD, register_patient

pytestmark = pytest.mark.browser

# A girl's checks from birth to 20 months: (key, age in days, weight kg, length cm, head cm)
CHECKS = [("newborn", 5, 3.2, 49.5, 34.0), ("m1", 29, 4.1, 53.2, 36.5), ("m3", 92, 5.6, 59.5, 39.2),
          ("m6", 183, 7.0, 65.0, 41.8), ("m8", 244, 7.6, 68.5, 42.9), ("m12", 366, 8.4, 73.0, 44.2),
          ("m18", 548, 9.3, 79.0, 45.3)]


@pytest.fixture(scope="module")
def scene(db, world):
    today = clock.local_date(clock.utcnow())
    birth = today - dt.timedelta(days=600)
    username = f"mchweb{world.org_a_code}"
    pid = register_patient(db, world.org_a, name="赵小禾", sex="2", birth_date=birth)
    with db.session() as s:
        create_user(s, username, PASSWORD, ["mch_doctor"], "妇幼医生丙", world.org_a)
        s.commit()
    return {"user": username, "pid": pid, "birth": birth}


@pytest.fixture(scope="module")
def recorded(client, mch, scene):
    """The checks recorded over REST by the doctor of hospital A."""
    ids = []
    for key, age, w, length, head in CHECKS:
        r = client.post(f"/api/maternal-child/children/{scene['pid']}/checks", headers=mch, json={
            "check_key": key, "check_date": (scene["birth"] + dt.timedelta(days=age)).isoformat(), "weight_kg": w,
            "length_cm": length, "position": "recumbent", "head_cm": head})
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    return ids


def test_the_page_draws_the_who_curves_and_the_childs_points_without_a_browser(client, db, world, mch, scene,
                                                                               recorded):
    r = client.get(f"/ui/maternal-child/children/{scene['pid']}/growth", headers=mch)
    assert r.status_code == 200, r.text
    html = r.text
    for key in ("wfa", "lhfa", "wflh", "bmifa", "hcfa"):
        assert f'id="chart-{key}"' in html
    assert html.count('class="child-point"') == 5 * len(CHECKS)
    assert html.count('class="who-sd') == 5 * 7
    assert all(f'data-check="{i}"' in html for i in recorded)
    assert "赵**" in html and "赵小禾" not in html


def test_the_overdue_worklist_page_links_to_the_growth_charts(client, mch, mch_b, scene, recorded):
    r = client.get("/ui/maternal-child/children", headers=mch)
    assert r.status_code == 200, r.text
    assert f'href="/ui/maternal-child/children/{scene["pid"]}/growth"' in r.text
    # the girl's checks carried no Hb and no hearing result: those screenings are overdue, her checks are not
    assert f'data-patient="{scene["pid"]}" data-key="hb_6_8"' in r.text
    assert f'data-patient="{scene["pid"]}" data-key="hearing_12"' in r.text
    assert f'data-patient="{scene["pid"]}" data-key="m12"' not in r.text
    assert "赵**" in r.text and "赵小禾" not in r.text
    other = client.get("/ui/maternal-child/children", headers=mch_b)
    assert other.status_code == 200 and scene["pid"] not in other.text


def test_growth_chart_page_in_the_browser(browser_page, db_kind, scene, recorded):
    page = browser_page
    sign_in(page, scene["user"])
    page.goto(f"/ui/maternal-child/children/{scene['pid']}/growth")
    chart = page.locator("#chart-wfa svg")
    assert chart.count() == 1
    assert page.locator("#chart-wfa path.who-sd").count() == 7
    points = page.locator("#chart-wfa circle.child-point")
    assert points.count() == len(CHECKS)
    # each point is drawn inside the plot and between the curves its z-score says
    box = chart.bounding_box()
    for i in range(points.count()):
        p = points.nth(i).bounding_box()
        assert p["width"] > 0 and box["x"] <= p["x"] <= box["x"] + box["width"]
        assert box["y"] <= p["y"] <= box["y"] + box["height"]
    zs = [float(points.nth(i).get_attribute("data-z")) for i in range(points.count())]
    expected = [growth.growth_zscores("female", age, w, length, "recumbent", head).waz
                for _k, age, w, length, head in CHECKS]
    assert zs == expected
    # a point with z between −1 and +1 is drawn between the −1 and +1 curves at its x
    assert page.locator("#chart-hcfa circle.child-point").count() == len(CHECKS)
    assert page.locator("#chart-wfa table.chart-table tbody tr").count() == len(CHECKS)
    assert page.locator("#child-checks tbody tr").count() == len(CHECKS)
    assert page.locator("#child-plan tr.plan-done").count() >= len(CHECKS)
    assert not page.console_errors
    page.locator("#chart-wfa h2").scroll_into_view_if_needed()
    page.evaluate("window.scrollBy(0, document.querySelector('#chart-wfa').getBoundingClientRect().top - 8)")
    shot(page, "mch-growth-chart", db_kind, docs="mch-growth-chart.png")


def test_record_a_check_on_the_page_keeps_what_was_typed_on_an_error(browser_page, db_kind, db, world, scene):
    today = clock.local_date(clock.utcnow())
    pid = register_patient(db, world.org_a, name="钱小朵", sex="1", birth_date=today - dt.timedelta(days=95))
    page = browser_page
    sign_in(page, scene["user"])
    page.goto(f"/ui/maternal-child/children/{pid}/growth")
    assert page.locator("#chart-wfa circle.child-point").count() == 0
    assert page.input_value("#check-key") == "m3"  # the check due today is preselected
    page.fill("#check-weight", "25")  # a typing error: 25 kg at 3 months
    page.fill("#check-length", "60.5")
    page.select_option("#check-position", "recumbent")
    with page.expect_navigation():
        page.click("#check-submit")
    assert page.locator("#check-error").count() == 1
    assert page.get_attribute("#check-error", "data-field") == "weight_kg"
    assert page.get_attribute("#check-weight", "aria-invalid") == "true"
    assert page.input_value("#check-weight") == "25" and page.input_value("#check-length") == "60.5"
    assert page.input_value("#check-position") == "recumbent"
    page.fill("#check-weight", "5.9")
    with page.expect_navigation():
        page.click("#check-submit")
    assert "/growth?new=" in page.url
    assert page.locator("#chart-wfa circle.child-point").count() == 1
    assert page.locator("#child-checks tr.new").count() == 1
    expected = growth.growth_zscores("male", 95, 5.9, 60.5, "recumbent").waz
    assert float(page.get_attribute("#chart-wfa circle.child-point", "data-z")) == expected
    assert page.locator("#child-plan tr.plan-done[data-key=m3]").count() == 1
    # the refused form came back as a 400 page (the browser logs its status); nothing else went wrong
    assert [e for e in page.console_errors if "status of 400" not in e] == []
