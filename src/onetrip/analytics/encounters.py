"""Visits (Encounter): record and read. Recording writes audit + the ``encounter.recorded`` event
(CONTRACTS.md) in the same transaction; the institution's level (基层 / county) is fixed at that moment
from the ``analytics.primary_org_types`` rule."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from onetrip.access import service as access
from onetrip.analytics.models import ENCOUNTER_CLASSES, Encounter
from onetrip.audit import service as audit
from onetrip.kit.clock import MAX_SERVICE_DATE, MIN_SERVICE_DATE
from onetrip.kit.errors import AccessDenied, BadRequest, NotFound
from onetrip.kit.principal import Principal
from onetrip.outbox.service import record_event
from onetrip.persons.models import PatientRecord, Person
from onetrip.registry.models import Department, MedicalCommunity, Organization
from onetrip.rules.service import rule_values


def organization_level(org_type: str | None, primary_types: list[str]) -> str:
    """RULES §8: primary-care (基层) institutions are the configured types; others in the registry are
    county-level; no institution means outside the county."""
    if org_type is None:
        return "outside"
    return "primary" if org_type in primary_types else "county"


def record_encounter(session: Session, principal: Principal, *, visit_date: dt.date, encounter_class: str = "AMB",
                     patient_record_id: str | None = None, person_id: str | None = None,
                     organization_id: str | None = None, department_id: str | None = None,
                     outside_institution: str | None = None, community_id: str | None = None,
                     source: str = "api") -> Encounter:
    """Record one finished visit. In the county: ``organization_id`` (a registry institution; the caller's
    own unless an operator). Outside the county: no institution, ``outside_institution`` named and the
    resident's ``community_id`` (for 县域就诊率 by community)."""
    if encounter_class not in ENCOUNTER_CLASSES:
        raise BadRequest(f"就诊类型须为 {'/'.join(ENCOUNTER_CLASSES)} / class must be one of {ENCOUNTER_CLASSES}",
                         expression=["class"])
    if not (MIN_SERVICE_DATE <= visit_date <= MAX_SERVICE_DATE):
        raise BadRequest("就诊日期超出范围 / visit date out of range", expression=["period.start"])
    rec = None
    if patient_record_id:
        rec = session.get(PatientRecord, patient_record_id)
        if rec is None:
            raise BadRequest(f"患者不存在 / unknown patient {patient_record_id!r}", expression=["subject"])
        person_id = rec.person_id
    if not person_id or session.get(Person, person_id) is None:
        raise BadRequest("需要患者 / a patient (subject) is required", expression=["subject"])
    org = None
    if organization_id:
        org = session.get(Organization, organization_id)
        if org is None:
            raise BadRequest(f"机构不存在 / unknown organization {organization_id!r}",
                             expression=["serviceProvider"])
        if not principal.is_operator and principal.organization_id != organization_id:
            raise AccessDenied("只能登记本机构的就诊 / you can only record visits at your own institution")
        community_id = org.community_id
    elif not (outside_institution or "").strip():
        raise BadRequest("县域外就诊须写明机构名称 / a visit outside the county needs the institution's name",
                         expression=["serviceProvider"])
    if community_id and session.get(MedicalCommunity, community_id) is None:
        raise BadRequest(f"医共体不存在 / unknown medical community {community_id!r}")
    if department_id:
        dept = session.get(Department, department_id)
        if dept is None or org is None or dept.organization_id != org.id:
            raise BadRequest("科室不属于该机构 / the department does not belong to the institution",
                             expression=["serviceType"])
    level = organization_level(org.org_type if org else None,
                               list(rule_values(session, "analytics").get("primary_org_types") or []))
    enc = Encounter(person_id=person_id, patient_record_id=rec.id if rec else None,
                    organization_id=org.id if org else None, department_id=department_id,
                    community_id=community_id, organization_level=level, in_county=org is not None,
                    encounter_class=encounter_class, visit_date=visit_date, status="finished",
                    outside_institution=None if org else outside_institution.strip()[:128], source=source)
    session.add(enc)
    session.flush()
    audit.record(session, principal, "create", person_ids=[person_id], what=[f"Encounter/{enc.id}"])
    record_event(session, "encounter.recorded", "Encounter", enc.id, {
        "encounter_id": enc.id, "organization_id": enc.organization_id, "organization_level": level,
        "department_id": department_id, "visit_date": visit_date.isoformat(), "in_county": enc.in_county},
        person_id=person_id)
    return enc


def read_encounter(session: Session, principal: Principal, encounter_id: str) -> Encounter:
    """One visit, through the access policy (audited)."""
    enc = session.get(Encounter, encounter_id)
    if enc is None:
        raise NotFound(f"就诊记录不存在 / Encounter {encounter_id!r} not found")
    access.require_read(session, principal, enc.person_id, f"Encounter/{enc.id}")
    return enc
