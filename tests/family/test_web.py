"""The family-doctor pages: dashboard, worklist (print view), chronic-care page with the pre-visit summary,
follow-up form (classification and referral draft shown), long-prescription form, check-in; Chinese by
default, English on request."""

from __future__ import annotations

import datetime as dt
import re

from onetrip.family import common
from onetrip.family.followups import service as followups
from onetrip.persons.models import Person
from tests.family.conftest import enrolled
from tests.web.test_web_pages import signed_in


def test_pages_and_forms(app, db, fam):
    pid, reg = enrolled(db, fam, enrolled_on=common.today() - dt.timedelta(days=300))
    with db.session() as s:
        followups.record_followup(s, service_op(), reg, visit_date=common.today() - dt.timedelta(days=120),
                                sbp=132, dbp=82, adherence="regular")
        s.commit()
        number = s.get(Person, pid).id_number
    c = signed_in(app, fam.username)
    r = c.get("/ui/family/")
    assert r.status_code == 200 and "家庭医生团队" in r.text and "周明" in r.text
    r = c.get(f"/ui/family/worklist?team={fam.team}&only=overdue")
    assert r.status_code == 200 and f"/ui/family/patients/{pid}" in r.text
    assert number not in r.text and number[:3] + "*" in r.text  # masked in the list
    assert c.get(f"/ui/family/worklist?team={fam.team}&only=overdue&print=1").status_code == 200
    r = c.get(f"/ui/family/patients/{pid}?lang=en")
    assert r.status_code == 200 and "Pre-visit summary" in r.text and "Record follow-up" in r.text
    r = c.post(f"/ui/family/registries/{reg}/followups", data={"sbp": "185", "dbp": "112", "method": "clinic",
                                                              "visit_date": common.today().isoformat()})
    assert r.status_code == 303
    page = c.get(r.headers["location"]).text
    assert 'id="referral-draft"' in page and 'data-code="urgent"' in page
    ref = re.search(r'href="/ui/referrals/([0-9a-f]{32})"', page)
    assert ref, page
    # the long-prescription form: 12 weeks without an assessment is refused with the rule named
    r = c.post(f"/ui/family/patients/{pid}/prescriptions", data={
        "drug": ["氨氯地平片", "", ""], "drug_class": ["", "", ""], "dose": ["5mg", "", ""], "weeks": "12"})
    assert r.status_code == 422 and "R4.2" in r.text
    r = c.post(f"/ui/family/patients/{pid}/prescriptions", data={
        "drug": ["氨氯地平片", "", ""], "drug_class": ["", "", ""], "dose": ["5mg", "", ""], "weeks": "4"})
    assert r.status_code == 303
    assert "氨氯地平片" in c.get(r.headers["location"]).text
    # check-in by ID card
    r = c.post("/ui/family/checkin", data={"id_number": number})
    assert r.status_code == 303 and r.headers["location"].startswith(f"/ui/family/patients/{pid}")
    assert c.post("/ui/family/checkin", data={"id_number": "12345"}).status_code == 400


def service_op():
    from onetrip.kit.principal import cli_principal

    return cli_principal()
