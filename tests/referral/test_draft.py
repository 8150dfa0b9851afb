"""draft_referral per CONTRACTS.md: the row, its audit and its outbox event, and the refusals."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from onetrip.audit.models import AuditEvent
from onetrip.kit.errors import BadRequest, NotFound
from onetrip.outbox.models import OutboxEvent
from onetrip.referral.service import draft_referral
from tests.referral.conftest import branch_patient, lead_patient


def test_draft_upward_defaults_to_lead_hospital_and_its_primary_care_department(db, world, pcd, doc_b):
    person_id, record_id = branch_patient(db, world)
    with db.session() as s:
        r = draft_referral(s, doc_b, person_id=person_id, direction="up", to_organization_id=None,
                           reason="血压控制不佳", criteria_codes=["U2", "U5"], source="chronic-followup")
        s.commit()
        assert r.id and r.status == "draft"
        assert (r.from_organization_id, r.to_organization_id, r.to_department_id) == (world.org_b, world.org_a, pcd)
        assert r.patient_record_id == record_id
        ev = s.scalars(select(OutboxEvent).where(OutboxEvent.aggregate_id == r.id)).one()
        assert ev.event_type == "referral.drafted"
        assert set(ev.payload) == {"referral_id", "direction", "from_organization_id", "to_organization_id",
                                   "to_department_id", "submitted_at", "at", "reserved_slot"}
        assert ev.payload["direction"] == "up" and ev.payload["submitted_at"] is None
        assert s.scalars(select(AuditEvent).where(AuditEvent.entity_what == f"ServiceRequest/{r.id}")).first()


def test_draft_downward_goes_to_the_home_branch(db, world, doc_a):
    person_id, _ = lead_patient(db, world)
    with db.session() as s:
        r = draft_referral(s, doc_a, person_id=person_id, direction="down", to_organization_id=None,
                           reason="术后康复", criteria_codes=["D1"], source="web")
        assert r.to_organization_id == world.org_b and r.to_department_id is None


@pytest.mark.parametrize("kw, err", [
    ({"direction": "sideways"}, BadRequest),
    ({"criteria_codes": ["D1"]}, BadRequest),  # a downward criterion on an upward referral (R2.1 vs R2.2)
    ({"person_id": "nope"}, NotFound),
])
def test_draft_refuses_bad_input(db, world, doc_b, kw, err):
    person_id, _ = branch_patient(db, world)
    args = {"person_id": person_id, "direction": "up", "to_organization_id": None, "reason": "x",
            "criteria_codes": ["U1"], "source": "web"} | kw
    with db.session() as s, pytest.raises(err):
        draft_referral(s, doc_b, **args)


def test_upward_to_a_lower_level_is_refused(db, world, doc_a):
    person_id, _ = lead_patient(db, world)
    with db.session() as s, pytest.raises(BadRequest):
        draft_referral(s, doc_a, person_id=person_id, direction="up", to_organization_id=world.org_b,
                       reason="x", criteria_codes=["U1"], source="web")
