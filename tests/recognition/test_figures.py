"""Figures (issue 4 §6): 调阅 look-ups, 互认率 (RULES R1.7), reminder acceptance and money saved, per
institution, department, item and month — against values computed by hand for a small fixture.

The fixture (two institutions of one community: A 3A, B 1A; one resident with a recognisable CMP report at A
and a CT at B):

| # | org | dept | item    | month   | priors | latest decision          |
|---|-----|------|---------|---------|--------|--------------------------|
| 1 | A   | A1*  | CMP     | 2026-09 | yes    | recognised               |
| 2 | A   | A1   | CMP     | 2026-09 | yes    | repeated 07              |
| 3 | A   | A2   | CT-HEAD | 2026-09 | yes    | repeated 98 (excluded)   |
| 4 | A   | A2   | CT-HEAD | 2026-10 | yes    | recognised               |
| 5 | B   | —    | CMP     | 2026-10 | yes    | repeated 01, then recognised |
| 6 | B   | —    | CBC     | 2026-10 | no     | repeated 07 (no reminder)|
| 7 | A   | A1   | CMP     | 2026-10 | yes    | none                     |
| 8 | B   | —    | CMP     | 2026-10 | yes    | repeated 99 (excluded)   |

(* derived from the signed-in doctor's practitioner record; the rest are given.) Prices: CMP 120, CT-HEAD 280.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update

from onetrip.auth.service import create_user
from onetrip.kit.principal import cli_principal
from onetrip.persons.models import PatientRecord
from onetrip.recognition import figures as fig
from onetrip.recognition.models import RecognitionDecision
from onetrip.records import service as records
from onetrip.registry import service as registry
from onetrip.registry.models import Department
from tests.factories import PASSWORD, auth, register_patient, token
from tests.recognition.test_check import _report
from tests.records.conftest import resident_id

CN = ZoneInfo("Asia/Shanghai")
WHEN = {1: dt.datetime(2026, 9, 3, 9, 0, tzinfo=CN), 2: dt.datetime(2026, 9, 12, 10, 0, tzinfo=CN),
        3: dt.datetime(2026, 9, 30, 23, 30, tzinfo=CN),  # China time: still September (15:30 UTC)
        4: dt.datetime(2026, 10, 1, 0, 30, tzinfo=CN),   # China time: October (16:30 UTC on 30 Sep)
        5: dt.datetime(2026, 10, 5, 8, 0, tzinfo=CN), 6: dt.datetime(2026, 10, 6, 8, 0, tzinfo=CN),
        7: dt.datetime(2026, 10, 7, 8, 0, tzinfo=CN), 8: dt.datetime(2026, 10, 31, 23, 0, tzinfo=CN)}


@pytest.fixture(scope="module")
def fx(db, world, client, catalogue):
    id_number = resident_id()
    rec_a = register_patient(db, world.org_a, name="钱芳", id_number=id_number)
    mrn_b = "FB" + id_number[-6:]
    register_patient(db, world.org_b, name="钱芳", id_number=id_number, mrn=mrn_b)
    op = cli_principal()
    with db.session() as s:
        a1 = Department(organization_id=world.org_a, code="A1", name="内科")
        a2 = Department(organization_id=world.org_a, code="A2", name="神经内科")
        s.add_all([a1, a2])
        s.flush()
        prac = registry.create_practitioner(s, op, name="孙医生", organization_id=world.org_a, department_id=a1.id)
        create_user(s, "fig_doc_a", PASSWORD, ["clinician"], "孙医生", world.org_a, practitioner_id=prac.id)
        cmp_id = records.store_report(s, op, _report(world.org_a, record=rec_a)).id
        records.store_report(s, op, _report(world.org_b, mrn=mrn_b, days=3, code="24725-4", category="imaging",
                                            section="CT", obs=()))
        person = s.get(PatientRecord, rec_a).person_id
        s.commit()
        deps = {"A1": a1.id, "A2": a2.id}
    doc_a, doc_b = token(client, "fig_doc_a"), token(client, world.users["doc_b"])

    def check(n, tok, org, item, dept=None, expect_priors=True):
        body = {"person_id": person, "item_code": item, "ordering_org_id": org}
        if dept:
            body["department_id"] = deps[dept]
        r = client.post("/api/recognition/check", json=body, headers=auth(tok))
        assert r.status_code == 200, r.text
        assert bool(r.json()["priors"]) is expect_priors, (n, r.json())
        return r.json()["check_id"]

    def decide(tok, check_id, decision, reason=None, disease=None):
        r = client.post("/api/recognition/decisions", json={"check_id": check_id, "decision": decision,
                                                            "reason_code": reason, "disease": disease},
                        headers=auth(tok))
        assert r.status_code == 201, r.text

    ids = {1: check(1, doc_a, world.org_a, "CMP"), 2: check(2, doc_a, world.org_a, "CMP", "A1"),
           3: check(3, doc_a, world.org_a, "CT-HEAD", "A2"), 4: check(4, doc_a, world.org_a, "CT-HEAD", "A2"),
           5: check(5, doc_b, world.org_b, "CMP"), 6: check(6, doc_b, world.org_b, "CBC", expect_priors=False),
           7: check(7, doc_a, world.org_a, "CMP", "A1"), 8: check(8, doc_b, world.org_b, "CMP")}
    decide(doc_a, ids[1], "recognised")
    decide(doc_a, ids[2], "repeated", "07")
    decide(doc_a, ids[3], "repeated", "98")
    decide(doc_a, ids[4], "recognised")
    decide(doc_b, ids[5], "repeated", "01")
    decide(doc_b, ids[5], "recognised")  # changed their mind: the latest decision counts
    decide(doc_b, ids[6], "repeated", "07")
    decide(doc_b, ids[8], "repeated", "99", "高血压")
    with db.session() as s:
        for n, cid in ids.items():
            s.execute(update(RecognitionDecision).where(RecognitionDecision.id == cid)
                      .values(created_at=WHEN[n].astimezone(dt.UTC)))
        s.commit()
        assert s.get(RecognitionDecision, ids[1]).department_id == deps["A1"]  # from the doctor's practitioner
    # look-ups: two timeline reads at A, one report read at B (item CMP); checks themselves are not look-ups
    for _ in range(2):
        assert client.get(f"/api/persons/{person}/timeline", headers=auth(doc_a)).status_code == 200
    assert client.get(f"/fhir/R4/DiagnosticReport/{cmp_id}", headers=auth(doc_b)).status_code == 200
    return {"deps": deps, "person": person, "mgr": token(client, world.users["mgr"]), "doc_a": doc_a}


def _get(client, tok, **params):
    r = client.get("/api/recognition/figures", params=params, headers=auth(tok))
    assert r.status_code == 200, r.text
    return r.json()


def _pick(row, *keys):
    return tuple(row[k] for k in keys)


KEYS = ("orders_checked", "reminders", "recognised", "not_recognised", "excluded", "overridden", "undecided",
        "recognition_rate", "acceptance_rate", "money_saved")


def test_by_organization(client, world, fx):
    got = _get(client, fx["mgr"], group_by="organization")
    rows = {r["key"]: r for r in got["rows"]}
    assert _pick(rows[world.org_a], *KEYS) == (5, 5, 2, 1, 1, 2, 1, 0.6667, 0.4, "400.00")
    assert _pick(rows[world.org_b], *KEYS) == (3, 2, 1, 0, 1, 1, 0, 1.0, 0.5, "120.00")
    assert rows[world.org_a]["lookups"] == 2 and rows[world.org_b]["lookups"] == 1
    assert rows[world.org_a]["label"].startswith("测试总院")
    assert _pick(got["total"], *KEYS) == (8, 7, 3, 1, 2, 3, 1, 0.75, 0.4286, "520.00")
    assert got["total"]["lookups"] == 3


def test_by_item_and_department(client, world, fx):
    items = {r["key"]: r for r in _get(client, fx["mgr"], group_by="item")["rows"]}
    assert _pick(items["CMP"], *KEYS) == (5, 5, 2, 1, 1, 2, 1, 0.6667, 0.4, "240.00")
    assert _pick(items["CT-HEAD"], *KEYS) == (2, 2, 1, 0, 1, 1, 0, 1.0, 0.5, "280.00")
    assert _pick(items["CBC"], *KEYS) == (1, 0, 0, 0, 0, 0, 0, None, None, "0.00")
    assert items["CMP"]["lookups"] == 1 and items["CMP"]["label"] == "综合代谢检查"
    assert items[None]["lookups"] == 2  # timeline reads have no item
    deps = {r["key"]: r for r in _get(client, fx["mgr"], group_by="department")["rows"]}
    a1, a2 = fx["deps"]["A1"], fx["deps"]["A2"]
    assert _pick(deps[a1], *KEYS) == (3, 3, 1, 1, 0, 1, 1, 0.5, 0.3333, "120.00")
    assert _pick(deps[a2], *KEYS) == (2, 2, 1, 0, 1, 1, 0, 1.0, 0.5, "280.00")
    assert _pick(deps[None], *KEYS) == (3, 2, 1, 0, 1, 1, 0, 1.0, 0.5, "120.00")
    assert deps[a1]["label"].endswith("内科")
    assert deps[a1]["lookups"] == 2 and deps[None]["lookups"] == 1  # reader's department (user → practitioner)


def test_by_month_uses_china_time_and_range(client, fx):
    months = {r["key"]: r for r in _get(client, fx["mgr"], group_by="month")["rows"]}
    assert _pick(months["2026-09"], *KEYS) == (3, 3, 1, 1, 1, 2, 0, 0.5, 0.3333, "120.00")
    assert _pick(months["2026-10"], *KEYS) == (5, 4, 2, 0, 1, 1, 1, 1.0, 0.5, "400.00")
    now_month = fig.month_of(dt.datetime.now(dt.UTC))
    assert months[now_month]["lookups"] == 3
    october = _get(client, fx["mgr"], group_by="item", **{"from": "2026-10-01", "to": "2026-10-31"})
    assert _pick(october["total"], *KEYS) == (5, 4, 2, 0, 1, 1, 1, 1.0, 0.5, "400.00")
    assert october["total"]["lookups"] == 0
    sept_30 = _get(client, fx["mgr"], group_by="month", **{"from": "2026-09-30", "to": "2026-09-30"})
    assert [r["key"] for r in sept_30["rows"]] == ["2026-09"] and sept_30["total"]["orders_checked"] == 1


def test_who_may_read_and_bad_input(client, world, fx):
    assert client.get("/api/recognition/figures", headers=auth(fx["doc_a"])).status_code == 403
    body = _get(client, fx["mgr"])  # default: per organization
    assert "person" not in str(body).lower() and fx["person"] not in str(body)
    r = client.get("/api/recognition/figures", params={"group_by": "patient"}, headers=auth(fx["mgr"]))
    assert 400 <= r.status_code < 500
    r = client.get("/api/recognition/figures", params={"from": "2026-10-02", "to": "2026-10-01"},
                   headers=auth(fx["mgr"]))
    assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome"


def test_a_fhir_search_by_patient_is_a_lookup(client, world, db, fx):
    """Runs after the others (module order): one FHIR search of the resident's reports at B → +1 look-up."""
    before = {r["key"]: r["lookups"] for r in _get(client, fx["mgr"], group_by="organization")["rows"]}
    with db.session() as s:
        from sqlalchemy import select

        rec_b = s.scalar(select(PatientRecord.id).where(PatientRecord.person_id == fx["person"],
                                                        PatientRecord.organization_id == world.org_b))
    r = client.get(f"/fhir/R4/DiagnosticReport?patient={rec_b}", headers=auth(token(client, world.users["doc_b"])))
    assert r.status_code == 200, r.text
    after = {r["key"]: r["lookups"] for r in _get(client, fx["mgr"], group_by="organization")["rows"]}
    assert after[world.org_b] == before[world.org_b] + 1 and after[world.org_a] == before[world.org_a]


def test_aggregate_is_r1_7_first_definition():
    """RULES R1.7: 98/99 repeats are in neither term; an unknown reason counts as non-recognition."""
    checks = [fig.Check("o", None, "X", "2026-01", True, "recognised"),
              fig.Check("o", None, "X", "2026-01", True, "repeated", "99"),
              fig.Check("o", None, "X", "2026-01", True, "repeated", "03"),
              fig.Check("o", None, "X", "2026-01", False, "repeated", "03")]
    rows, total = fig.aggregate(checks, [], group_by="item", counts_as_non_recognition={"99": False, "03": True},
                                prices={"X": Decimal("10.50")})
    assert (total.recognised, total.not_recognised, total.excluded, total.reminders) == (1, 1, 1, 3)
    assert total.recognition_rate == 0.5 and total.acceptance_rate == 0.3333
    assert total.money_saved == Decimal("10.50")
