"""Long prescriptions (长处方, RULES R4) for registered chronic patients: the checks (R4.1–R4.3, every
broken rule listed), pickup by the patient or a proxy with both ID numbers (R4.4), and home delivery
(packed → sent → delivered). Audit and outbox events in the caller's transaction; flushes, never commits."""

from __future__ import annotations

from sqlalchemy.orm import Session

from onetrip.audit import service as audit
from onetrip.family import repository as repo
from onetrip.family import rules
from onetrip.family.common import params, require_team_member, resident, resident_id
from onetrip.family.models import DeliveryOrder, LongPrescription
from onetrip.kit.clock import utcnow
from onetrip.kit.errors import BadRequest, Conflict, NotFound, Unprocessable
from onetrip.kit.principal import Principal
from onetrip.outbox.service import record_event


def rx_facts(session: Session, person_id: str) -> rules.RxFacts:
    regs = [r for r in repo.registries_of(session, person_id) if r.status == "active"]
    fus = repo.followups(session, person_id=person_id, limit=10)
    return rules.RxFacts(enrolled=bool(regs), latest_controlled=[f.controlled for f in fus],
                         adherence=fus[0].adherence if fus else None)


def check_prescription(session: Session, person_id: str, items: list[dict], weeks: int, *, assessment: str | None,
                       patient_confirmed: bool) -> list[rules.RxProblem]:
    rx_items = [rules.RxItem(drug=str(i.get("drug") or "").strip(), drug_class=i.get("drug_class"),
                             indication=i.get("indication")) for i in items]
    return rules.check_long_prescription(rx_items, weeks, rx_facts(session, person_id), assessment=assessment,
                                         patient_confirmed=patient_confirmed, p=params(session))


def issue_long_prescription(session: Session, principal: Principal, *, person_id: str, items: list[dict], weeks: int,
                            assessment: str | None = None, patient_confirmed: bool = False,
                            organization_id: str | None = None) -> LongPrescription:
    """Issue a long prescription (RULES §4). 422 listing every rule it breaks (R4.1–R4.3)."""
    person = resident(session, person_id)
    org = organization_id or principal.organization_id
    if org is None:
        raise BadRequest("需要开方机构 / organization_id is required", expression=["organization_id"])
    require_team_member(principal, org)
    if any(not str(i.get("drug") or "").strip() for i in items):
        raise BadRequest("药品名称必填 / every item needs a drug name", expression=["items"])
    problems = check_prescription(session, person.id, items, weeks, assessment=assessment,
                                  patient_confirmed=patient_confirmed)
    if problems:
        raise Unprocessable("；".join(f"[{x.rule}] {x.message.split(' / ')[0]}" for x in problems) + " / "
                            + "; ".join(f"[{x.rule}] {x.message.split(' / ')[-1]}" for x in problems),
                            expression=[x.code for x in problems])
    regs = [r for r in repo.registries_of(session, person.id) if r.status == "active"]
    now = utcnow()
    rx = LongPrescription(person_id=person.id, registry_id=regs[0].id if regs else None, organization_id=org,
                          prescriber=principal.name[:64], items=[dict(i) for i in items], weeks=weeks,
                          assessment=assessment, patient_confirmed=patient_confirmed,
                          confirmed_at=now if patient_confirmed else None, issued_at=now, status="issued")
    session.add(rx)
    session.flush()
    audit.record(session, principal, "create", person_ids=[person.id], what=[f"MedicationRequest/{rx.id}"],
                 detail={"weeks": weeks})
    record_event(session, "long_prescription.issued", "MedicationRequest", rx.id,
                 {"organization_id": org, "weeks": weeks}, person_id=person.id)
    return rx


def _rx(session: Session, principal: Principal, rx_id: str) -> LongPrescription:
    rx = session.get(LongPrescription, rx_id, with_for_update=True)
    if rx is None:
        raise NotFound("处方不存在 / prescription not found")
    require_team_member(principal, rx.organization_id)
    return rx


def collect(session: Session, principal: Principal, rx_id: str, *, by_proxy: bool, patient_id_number: str | None,
            collector_name: str | None = None, collector_id_number: str | None = None) -> LongPrescription:
    """Pickup (R4.4): by the patient, or by a proxy with both ID numbers recorded."""
    rx = _rx(session, principal, rx_id)
    if rx.status != "issued":
        raise Conflict("处方已取药或已配送 / already collected or out for delivery")
    person = resident(session, rx.person_id)
    pid = resident_id(patient_id_number, "patient_id_number")
    if person.id_number and pid != person.id_number:
        raise BadRequest("患者身份证号与档案不符 / the patient's ID number does not match the record",
                         expression=["patient_id_number"])
    if by_proxy:
        rx.collector_id_number = resident_id(collector_id_number, "collector_id_number")
        if not (collector_name or "").strip():
            raise BadRequest("代取人姓名必填 / the proxy's name is required", expression=["collector_name"])
        if rx.collector_id_number == pid:
            raise BadRequest("代取人与患者不能为同一人 / the proxy cannot be the patient", expression=["collector_id_number"])
        rx.collector_name = collector_name.strip()[:64]
    rx.patient_id_number, rx.collected_by_proxy = pid, by_proxy
    rx.status, rx.collected_at = "collected", utcnow()
    session.flush()
    audit.record(session, principal, "update", person_ids=[rx.person_id], what=[f"MedicationRequest/{rx.id}"],
                 detail={"collected": "proxy" if by_proxy else "patient"})
    record_event(session, "long_prescription.collected", "MedicationRequest", rx.id,
                 {"organization_id": rx.organization_id, "by_proxy": by_proxy}, person_id=rx.person_id)
    return rx


DELIVERY_STEPS = {"packed": "sent", "sent": "delivered"}


def create_delivery(session: Session, principal: Principal, rx_id: str, *, address: str,
                    carrier: str | None = None) -> DeliveryOrder:
    rx = _rx(session, principal, rx_id)
    if rx.status != "issued":
        raise Conflict("处方已取药或已配送 / already collected or out for delivery")
    if not address.strip():
        raise BadRequest("配送地址必填 / address is required", expression=["address"])
    d = DeliveryOrder(prescription_id=rx.id, person_id=rx.person_id, address=address.strip()[:255], status="packed",
                      packed_at=utcnow(), carrier=carrier)
    rx.status = "delivering"
    session.add(d)
    session.flush()
    audit.record(session, principal, "create", person_ids=[rx.person_id], what=[f"SupplyDelivery/{d.id}"])
    record_event(session, "delivery.packed", "SupplyDelivery", d.id, {"prescription_id": rx.id}, person_id=rx.person_id)
    return d


def advance_delivery(session: Session, principal: Principal, delivery_id: str, status: str,
                     tracking_no: str | None = None) -> DeliveryOrder:
    """packed → sent → delivered (no skipping, no going back)."""
    d = session.get(DeliveryOrder, delivery_id, with_for_update=True)
    if d is None:
        raise NotFound("配送单不存在 / delivery order not found")
    rx = _rx(session, principal, d.prescription_id)
    if DELIVERY_STEPS.get(d.status) != status:
        raise Conflict(f"配送状态不能从 {d.status} 变为 {status} / a delivery goes packed → sent → delivered")
    now = utcnow()
    d.status = status
    if status == "sent":
        d.sent_at, d.tracking_no = now, tracking_no or d.tracking_no
    else:
        d.delivered_at, rx.status = now, "delivered"
    session.flush()
    audit.record(session, principal, "update", person_ids=[d.person_id], what=[f"SupplyDelivery/{d.id}"],
                 detail={"status": status})
    record_event(session, f"delivery.{status}", "SupplyDelivery", d.id, {"prescription_id": rx.id},
                 person_id=d.person_id)
    return d
