"""The schedule table (seed, read) and the forecast for a child: plain data in, plain data out.

Services flush, never commit (STYLE 2). Reading a registered child's record goes through identity's audited
read (the access policy A1–A6 and an audit event); a forecast over data the caller sends reads nothing stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from onetrip.access import service as access
from onetrip.audit import service as audit
from onetrip.identity import service as identity
from onetrip.immunization import desk_lookup, rules
from onetrip.immunization import repository as repo
from onetrip.immunization.codes import VACCINES
from onetrip.immunization.forecast import LIVE_SPACING_DAYS, Dose, Schedule, SeriesForecast, add_age, forecast
from onetrip.immunization.models import (
    ColdChainAlarm,
    Fridge,
    Invitation,
    ScheduleDose,
    TemperatureReading,
    Vaccination,
    VaccineLot,
    VaccinePackage,
    VaccineProduct,
)
from onetrip.immunization.schedule import RULE_SET, rows_from_dicts, seed_rows, transition_from_rule
from onetrip.immunization.schemas import CheckIn, InboundIn, RecordIn
from onetrip.kit import clock
from onetrip.kit.errors import ApiError, BadRequest, Conflict, Forbidden, Gone, NotFound, Unauthorized
from onetrip.kit.identifiers import SEX_TO_FHIR
from onetrip.kit.masking import mask_name
from onetrip.kit.principal import Principal
from onetrip.outbox.service import record_event
from onetrip.persons.models import PatientRecord
from onetrip.registry.models import Organization
from onetrip.rules.service import rule_values


class ScheduleUnavailable(ApiError):
    """The schedule table is empty or an operator's row / rule value does not parse: the forecast cannot run."""

    status, code = 503, "exception"


def seed_schedule(session: Session) -> int:
    """Insert the seeded rows that are missing (by edition, series, dose); an operator's changes are never
    overwritten."""
    data = seed_rows()
    rows = rows_from_dicts(data)  # checked before anything is written
    existing = repo.schedule_keys(session)
    added = 0
    for d, row in zip(data, rows, strict=True):
        if (row.edition, row.series, row.dose_number) in existing:
            continue
        session.add(ScheduleDose(
            edition=row.edition, effective_from=row.effective_from, series=row.series, dose_number=row.dose_number,
            vaccine_code=row.vaccine_code, min_age=row.min_age, complete_before=row.complete_before,
            intervals=[{"from_dose": i.from_dose, "min": i.min} for i in row.intervals],
            live_injectable=row.live_injectable, sex=row.sex, alt_group=row.alt_group, alt_rank=row.alt_rank,
            citation=d.get("citation"), note=d.get("note"), updated_by="seed"))
        added += 1
    session.flush()
    return added


def schedule(session: Session) -> Schedule:
    """The operator's table as the forecaster's plain rows (every edition)."""
    rows = repo.schedule_doses(session)
    if not rows:
        raise ScheduleUnavailable("免疫程序表为空：请运行 onetrip db upgrade / the immunisation schedule table is empty: "
                              "run `onetrip db upgrade` to load it")
    try:
        return Schedule(rows_from_dicts({c: getattr(r, c) for c in (
            "edition", "effective_from", "series", "dose_number", "vaccine_code", "min_age", "complete_before",
            "intervals", "live_injectable", "sex", "alt_group", "alt_rank")} for r in _schedule_order(rows)))
    except (KeyError, TypeError, ValueError) as e:
        raise ScheduleUnavailable(f"免疫程序表有错误行，请修正 / a row of the immunisation schedule table "
                                  f"(imm_schedule_dose) is malformed — fix it: {e}") from None


def _schedule_order(rows: list[ScheduleDose]) -> list[ScheduleDose]:
    """Series in the order the programme lists them: by the first dose's minimum age, then name."""
    ref = dt.date(2000, 1, 1)
    first = {}
    for r in rows:
        if r.dose_number == 1:
            first.setdefault((r.edition, r.series), add_age(ref, r.min_age))
    return sorted(rows, key=lambda r: (r.effective_from, r.edition, first.get((r.edition, r.series), ref),
                                       r.series, r.dose_number))


@dataclass(frozen=True)
class Child:
    birth: dt.date
    sex: str  # female | male | other | unknown
    record_id: str | None = None  # the registered Patient read (audited), if any


def registered_child(session: Session, principal: Principal, record_id: str) -> Child:
    """A registered patient's birth date and sex, through the audited, access-checked read."""
    rec = identity.read(session, principal, record_id)
    if rec.birth_date is None:
        raise BadRequest("该患者没有出生日期：请补全登记或在 patient 中给出 Patient 资源 / the registered patient has no "
                         "birth date: complete the registration or send a Patient resource in `patient`",
                         expression=["patient"])
    return Child(rec.birth_date, SEX_TO_FHIR.get(rec.sex, "unknown"), rec.id)


def forecast_child(session: Session, child: Child, assessed: dt.date, history: list[Dose],
                   choose: list[str] | None = None) -> list[SeriesForecast]:
    """The forecast with the schedule table and the rule values in force on the assessment date; ``choose``:
    alternative products picked at the desk for a group with no dose yet."""
    values = rule_values(session, RULE_SET, on=assessed)
    try:
        transitions = [transition_from_rule(values["dtap_transition"])] if "dtap_transition" in values else []
        spacing = int(values.get("live_injectable_spacing_days", LIVE_SPACING_DAYS))
    except (KeyError, TypeError, ValueError):
        raise ScheduleUnavailable(
            "规则值 immunization.dtap_transition 或 live_injectable_spacing_days 格式错误 / the rule value "
            "immunization.dtap_transition must be {\"series\": \"DTaP\", \"born_before\": \"YYYY-MM-DD\", "
            "\"edition\": \"2021\" or \"2025\"} and live_injectable_spacing_days a whole number: fix it with "
            "`onetrip rules set immunization ...`") from None
    return forecast(child.birth, child.sex, assessed, history, schedule(session), transitions=transitions,
                    live_spacing_days=spacing, choose=choose or ())


# --- Vaccines, stock and the vaccination desk (issue 20 points 2 and 3; RULES R6.5, R6.6) -------------------

QR_PREFIX = "ONETRIP-IMM:"  # the vaccination certificate's QR: this prefix and the Patient id


def certificate_qr_text(record_id: str) -> str:
    return f"{QR_PREFIX}{record_id}"


def patient_ref(text: str) -> str:
    """A Patient id from what the desk received: the certificate QR as scanned (keyboard wedge) or the id."""
    text = (text or "").strip()
    return text[len(QR_PREFIX):].strip() if text.upper().startswith(QR_PREFIX) else text


def _clinic(principal: Principal, organization_id: str | None = None) -> str:
    org = organization_id or principal.organization_id
    if not org:
        raise Forbidden("该账号不属于任何接种门诊：请指定 organization_id / this account belongs to no clinic: give "
                        "organization_id")
    if not principal.is_operator and org != principal.organization_id:
        raise Forbidden("只能操作本机构的疫苗库存 / you may only work with your own clinic's vaccine stock")
    return org


def _existing_clinic(session: Session, principal: Principal, organization_id: str | None) -> str:
    org = _clinic(principal, organization_id)
    if session.get(Organization, org) is None:
        raise NotFound(f"机构不存在：{org[:40]} / no organization {org[:40]!r}")
    return org


def _clinic_or_all(principal: Principal, organization_id: str | None) -> str | None:
    """The operator without a clinic sees every clinic; everyone else their own."""
    if principal.is_operator and not (organization_id or principal.organization_id):
        return None
    return _clinic(principal, organization_id)


def create_fridge(session: Session, principal: Principal, organization_id: str | None, name: str,
                  frozen: bool) -> tuple[Fridge, str]:
    """A fridge of the clinic and its sensor's key (shown once; only its hash is kept)."""
    org = _existing_clinic(session, principal, organization_id)
    if repo.fridge_by_name(session, org, name):
        raise Conflict(f"冰箱 {name} 已存在 / a fridge named {name!r} already exists at this clinic")
    key = secrets.token_urlsafe(24)
    f = Fridge(organization_id=org, name=name, frozen=frozen, sensor_key_hash=_key_hash(key))
    session.add(f)
    session.flush()
    audit.record(session, principal, "create", what=[f"Location/imm-fridge-{f.id}"])
    return f, key


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def receive_lot(session: Session, principal: Principal, data: InboundIn) -> tuple[VaccineLot, VaccineProduct, int]:
    """Inbound from the county CDC: the product (created the first time), the lot and one package per trace
    code, all or nothing. A malformed or already known trace code refuses the whole delivery, naming it."""
    org = _existing_clinic(session, principal, data.organization_id)
    if data.vaccine_code not in VACCINES:
        raise BadRequest(f"vaccine_code 须为 {'、'.join(VACCINES)} 之一 / vaccine_code must be one of "
                         f"{', '.join(VACCINES)}", expression=["vaccine_code"])
    if data.fridge_id is not None:
        fridge = session.get(Fridge, data.fridge_id)
        if fridge is None or fridge.organization_id != org:
            raise NotFound("fridge_id：本门诊没有这台冰箱 / fridge_id: no such fridge at this clinic")
    length = _code_length(session)
    codes = [rules.normalise_code(c) for c in data.trace_codes]
    for i, c in enumerate(codes):
        check = rules.code_check(c, length)
        if not check.ok:
            raise BadRequest(f"trace_codes[{i}]: {check.reason}", expression=[f"trace_codes[{i}]"])
    if len(set(codes)) != len(codes):
        raise BadRequest("trace_codes 有重复 / trace_codes contains the same code twice", expression=["trace_codes"])
    known = repo.existing_codes(session, codes)
    if known:
        raise Conflict(f"追溯码已入库：{known[0]}（共 {len(known)} 个）/ trace code already received: {known[0]} "
                       f"({len(known)} in all)")
    product = repo.product(session, data.vaccine_code, data.product_name, data.holder, data.specification)
    if product is None:
        product = VaccineProduct(vaccine_code=data.vaccine_code, name=data.product_name, holder=data.holder,
                                 specification=data.specification, doses_per_package=data.doses_per_package)
        session.add(product)
        session.flush()
    elif product.doses_per_package != data.doses_per_package:
        raise Conflict(f"该产品每最小包装 {product.doses_per_package} 剂，与 doses_per_package 不符 / this product has "
                       f"{product.doses_per_package} dose(s) per package, not {data.doses_per_package}")
    lot = repo.lot(session, product.id, data.lot_number)
    if lot is None:
        lot = VaccineLot(product_id=product.id, lot_number=data.lot_number, expiry=data.expiry,
                         status="available")
        session.add(lot)
        session.flush()
    elif lot.expiry != data.expiry:
        raise Conflict(f"批号 {lot.lot_number} 的有效期为 {lot.expiry} / lot {lot.lot_number} expires {lot.expiry}, "
                       f"not {data.expiry}")
    now = clock.utcnow()
    session.add_all([VaccinePackage(trace_code=c, lot_id=lot.id, organization_id=org, fridge_id=data.fridge_id,
                                    doses_total=product.doses_per_package, doses_left=product.doses_per_package,
                                    received_at=now, inbound_ref=data.inbound_ref) for c in codes])
    session.flush()
    audit.record(session, principal, "create", what=[f"Medication/imm-lot-{lot.id}"],
                 detail={"packages": len(codes), "inbound_ref": data.inbound_ref})
    return lot, product, len(codes)


def stock(session: Session, principal: Principal, organization_id: str | None) -> list[Any]:
    return repo.stock(session, _clinic_or_all(principal, organization_id))


def _values(session: Session, day: dt.date) -> dict[str, Any]:
    return rule_values(session, RULE_SET, on=day)


def _code_length(session: Session) -> int:
    return int(_values(session, clock.local_date(clock.utcnow())).get("trace_code_length", rules.TRACE_CODE_LENGTH))


def history(session: Session, person_id: str) -> list[Dose]:
    """The recorded doses as the forecaster's history (entered-in-error ones do not count)."""
    return [Dose(v.vaccine_code, clock.local_date(v.occurred_at)) for v in repo.doses_given(session, person_id)]


@dataclass(frozen=True)
class DeskChild:
    record: Any  # PatientRecord, read through the audited, access-checked read
    child: Child
    forecasts: list[SeriesForecast]
    given_today: list[str]


def desk_child(session: Session, principal: Principal, text: str, now: dt.datetime | None = None) -> DeskChild:
    """The child at the desk (certificate QR or Patient id): audited read, then today's forecast over the
    recorded doses."""
    record_id = patient_ref(text)
    if not record_id:
        raise BadRequest("请扫描接种证二维码或输入患者编号 / scan the vaccination certificate or type the patient id",
                         expression=["patient_id"])
    if desk_lookup.looks_like_resident_id(record_id):
        record_id = desk_lookup.record_by_resident_id(session, principal, record_id)
    try:
        child = registered_child(session, principal, record_id)  # the audited, access-checked read
    except (NotFound, Gone):
        raise NotFound(f"未找到该儿童（{record_id[:40]}）：请核对接种证或患者编号 / no registered child "
                       f"{record_id[:40]!r}: check the certificate or the patient id") from None
    rec = _record(session, record_id)  # loaded by the read above
    now = now or clock.utcnow()
    today = clock.local_date(now)
    doses = history(session, rec.person_id)
    forecasts = forecast_child(session, child, today, doses)
    # issue 20 point 6: an open programme invitation (the influenza campaign's IIV) is a due dose too
    forecasts += rules.programme_doses(repo.open_invitations(session, rec.person_id), forecasts, today)
    given = [d.vaccine for d in doses if d.date == today]
    return DeskChild(rec, child, forecasts, given)


def _record(session: Session, record_id: str) -> PatientRecord:
    return session.get(PatientRecord, record_id)


def _facts(found: tuple[VaccinePackage, VaccineLot, VaccineProduct] | None, code: str) -> rules.PackageFacts | None:
    if found is None:
        return None
    pkg, lot, product = found
    return rules.PackageFacts(code, pkg.organization_id, pkg.doses_left, pkg.doses_total, lot.lot_number,
                              lot.status, lot.expiry, product.vaccine_code, product.name, product.holder)


def check(session: Session, principal: Principal, data: CheckIn, now: dt.datetime | None = None
          ) -> tuple[rules.Verdict, DeskChild, tuple[VaccinePackage, VaccineLot, VaccineProduct] | None]:
    """三查七对一验证 (R6.5) for one scan: every check, ticked or failed with its reason. Writes only the audit
    of the patient read."""
    now = now or clock.utcnow()
    today = clock.local_date(now)
    desk = desk_child(session, principal, data.patient_id, now)
    code = rules.normalise_code(data.trace_code)
    length = int(_values(session, today).get("trace_code_length", rules.TRACE_CODE_LENGTH))
    found = repo.package_by_code(session, code) if len(code) == length else None
    certificate = patient_ref(data.certificate) if data.certificate else None
    forecasts, alt_groups = desk.forecasts, {}
    if found is not None:
        forecasts, alt_groups = _with_alternative(session, desk, found[2].vaccine_code, today)
    verdict = rules.verify(code, _facts(found, code), principal.organization_id if not principal.is_operator else None,
                           desk.record.id, certificate, forecasts, data.answers, today, length, alt_groups)
    return verdict, desk, found


def _with_alternative(session: Session, desk: DeskChild, vaccine_code: str, today: dt.date
                      ) -> tuple[list[SeriesForecast], dict[str, str]]:
    """The forecasts the scan is checked against, and the alternative groups (vaccine code → group). A scanned
    alternative product (JE-I for a child due JE-L-1, R6.1 / R6.2) is taken as the group's choice: the
    forecast is made again with it chosen, so its own ages and intervals apply."""
    sched = schedule(session)
    alt_groups = {r.vaccine_code: r.alt_group for r in sched.rows if r.alt_group}
    if rules.alternative_for(vaccine_code, desk.forecasts) is None:
        return desk.forecasts, alt_groups
    chosen = sched.series_of.get(vaccine_code, vaccine_code)
    return forecast_child(session, desk.child, today, history(session, desk.record.person_id),
                          choose=[chosen]), alt_groups


def record_vaccination(session: Session, principal: Principal, data: RecordIn, now: dt.datetime | None = None
                       ) -> Vaccination:
    """Record one dose: every check must pass, then one dose is taken from the package by a conditional UPDATE
    (of two scans of the last dose exactly one wins; the other is refused), and the R6.6 record is written."""
    now = now or clock.utcnow()
    verdict, desk, found = check(session, principal, data, now)
    if not verdict.ok or found is None:
        raise Conflict("不能接种 / cannot vaccinate: " + " | ".join(c.reason for c in verdict.failed))
    pkg, lot, product = found
    if not repo.take_dose(session, pkg.id, now):
        raise Conflict("该追溯码的剂次已用完：不得超剂次使用 / all doses of this trace code have been used: it cannot "
                       "be used again")
    v = Vaccination(person_id=desk.record.person_id, patient_record_id=desk.record.id,
                    organization_id=pkg.organization_id, vaccine_code=product.vaccine_code,
                    dose_number=verdict.dose_number, product_id=product.id, holder=product.holder, package_id=pkg.id,
                    trace_code=pkg.trace_code, lot_number=lot.lot_number, expiry=lot.expiry, occurred_at=now,
                    vaccinator_id=principal.id, vaccinator_name=principal.name, site=data.site, route=data.route,
                    status="completed")
    session.add(v)
    session.flush()
    audit.record(session, principal, "create", person_ids=[v.person_id], what=[f"Immunization/{v.id}"])
    record_event(session, "immunization.recorded", "Immunization", v.id,
                 {"source": "desk", "vaccine_code": v.vaccine_code, "dose_number": v.dose_number,
                  "status": v.status, "organization_id": v.organization_id,
                  "occurred_on": clock.local_date(v.occurred_at).isoformat()}, person_id=v.person_id)
    invitations_fulfilled(session, principal, v)
    return v


def invitations_fulfilled(session: Session, principal: Principal, v: Vaccination) -> list[Invitation]:
    """A dose recorded at the desk fulfils the person's open invitations for that vaccine (programme running
    on the day): they become ``vaccinated`` with the record. Called by record_vaccination (programmes.py
    creates the invitations)."""
    found = repo.invitations_for_dose(session, v.person_id, v.vaccine_code, clock.local_date(v.occurred_at))
    for inv in found:
        inv.status, inv.vaccination_id, inv.vaccinated_at = "vaccinated", v.id, v.occurred_at
    if found:
        session.flush()
        audit.record(session, principal, "update", person_ids=[v.person_id for _ in found],
                     what=[f"CommunicationRequest/{inv.id}" for inv in found], detail={"status": "vaccinated"})
        for inv in found:
            record_event(session, "immunization.invitation.vaccinated", "CommunicationRequest", inv.id,
                         {"programme_id": inv.programme_id, "immunization_id": v.id}, person_id=v.person_id)
    return found


def enter_in_error(session: Session, principal: Principal, vaccination_id: str, reason: str) -> Vaccination:
    """Mark a record entered-in-error (never deleted, R6.6); the dose no longer counts for the forecast."""
    v = session.get(Vaccination, vaccination_id)
    if v is None:
        raise NotFound("接种记录不存在 / vaccination record not found")
    if not principal.is_operator and v.organization_id != principal.organization_id:
        raise Forbidden("只能更正本门诊的接种记录 / you may only correct your own clinic's records")
    if v.status == "entered-in-error":
        raise Conflict("该记录已标记为录入错误 / the record is already marked entered-in-error")
    v.status, v.error_reason = "entered-in-error", reason
    session.flush()
    audit.record(session, principal, "update", person_ids=[v.person_id], what=[f"Immunization/{v.id}"],
                 detail={"status": "entered-in-error"})
    record_event(session, "immunization.entered_in_error", "Immunization", v.id,
                 {"vaccine_code": v.vaccine_code, "dose_number": v.dose_number, "organization_id": v.organization_id},
                 person_id=v.person_id)
    return v


def observation_board(session: Session, principal: Principal, now: dt.datetime | None = None
                      ) -> list[tuple[Vaccination, str, int]]:
    """Today's doses at the clinic still under observation (R6.5: 30 minutes): record, masked name, minutes
    left. Audited as one read of the people listed."""
    now = now or clock.utcnow()
    org = _clinic_or_all(principal, None)
    minutes = int(_values(session, clock.local_date(now)).get("observation_minutes", rules.OBSERVATION_MINUTES))
    rows = repo.vaccinations_since(session, org, now - dt.timedelta(minutes=minutes))
    if rows:
        people = sorted({v.person_id for v in rows})
        audit.record(session, principal, "search", person_ids=people, what=["Immunization?observation"] * len(people))
    out = []
    for v in rows:
        rec = _record(session, v.patient_record_id)
        out.append((v, mask_name(rec.name or ""), rules.minutes_left(v.occurred_at, now, minutes)))
    return out


# --- FHIR Immunization reads (issue 20 point 7) -------------------------------------------------------------

def _read_person(session: Session, principal: Principal, person_id: str, organization_id: str | None,
                 what: str, subtype: str) -> None:
    """Own clinic's data (or the operator): audited; another institution's: the access policy decides, audited."""
    if principal.is_operator or (organization_id is not None and organization_id == principal.organization_id):
        audit.record(session, principal, subtype, person_ids=[person_id], what=[what])
    else:
        access.require_read(session, principal, person_id, what, subtype)


def get_vaccination(session: Session, principal: Principal, vaccination_id: str) -> Vaccination:
    v = session.get(Vaccination, vaccination_id)
    if v is None:
        raise NotFound("接种记录不存在 / Immunization not found")
    _read_person(session, principal, v.person_id, v.organization_id, f"Immunization/{v.id}", "read")
    return v


def search_vaccinations(session: Session, principal: Principal, *, patient_id: str | None,
                        vaccine_codes: list[str] | None, when: Any, count: int, offset: int, query: str = ""
                        ) -> tuple[list[Vaccination], bool]:
    """By patient: every clinic's records of that person (the patient's own institution, or the access
    policy for another's). Without a patient: the caller's clinic only. Audited with the people returned."""
    person_id = org = None
    if patient_id is not None:
        rec = _record(session, patient_id)
        if rec is None or rec.deleted_at is not None:
            return [], False
        _read_person(session, principal, rec.person_id, rec.organization_id, f"Patient/{rec.id}", "search-type")
        person_id = rec.person_id
    elif not principal.is_operator:
        org = principal.organization_id
    if count == 0:
        return [], False
    rows = repo.vaccination_search(session, person_id=person_id, organization_id=org, vaccine_codes=vaccine_codes,
                                   when=when, count=count, offset=offset)
    more = len(rows) > count
    rows = rows[:count]
    if rows and patient_id is None:
        audit.record(session, principal, "search-type", person_ids=[v.person_id for v in rows],
                     what=[f"Immunization/{v.id}" for v in rows], query=query[:1000])
    return rows, more


def registered_forecast(session: Session, principal: Principal, record_id: str, assessed: dt.date | None = None
                        ) -> tuple[Child, dt.date, list[SeriesForecast]]:
    """ImmunizationRecommendation?patient=: the forecast of a registered child over the recorded doses
    (audited, access-checked read)."""
    child = registered_child(session, principal, record_id)
    assessed = assessed or clock.local_date(clock.utcnow())
    doses = [d for d in history(session, _record(session, record_id).person_id) if d.date <= assessed]
    return child, assessed, forecast_child(session, child, assessed, doses)



# --- Cold chain (issue 20 point 4, RULES R6.7) ----------------------------------------------------------------

def _record_temperature(session: Session, principal: Principal | None, fridge: Fridge, celsius: float,
                        measured_at: dt.datetime, source: str) -> tuple[TemperatureReading, ColdChainAlarm | None]:
    """Store the reading; outside the range (R6.7) an alarm quarantines the fridge's lots, unless the fridge
    has an open alarm already (the lots are in quarantine until someone releases them)."""
    rng = _values(session, clock.local_date(measured_at)).get("cold_chain_range")
    ok = rules.temperature_ok(celsius, fridge.frozen, rng if isinstance(rng, dict) else None)
    reading = TemperatureReading(fridge_id=fridge.id, measured_at=measured_at, celsius=celsius, source=source,
                                 recorded_by=principal.id if principal else None, excursion=not ok)
    session.add(reading)
    session.flush()
    if ok or repo.open_alarms(session, fridge_id=fridge.id):
        return reading, None
    lots = [lot for lot in repo.fridge_lots_in_stock(session, fridge.id) if lot.status == "available"]
    note = f"冷链异常 {celsius} °C（{fridge.name}）/ cold-chain excursion {celsius} °C ({fridge.name})"
    for lot in lots:
        lot.status, lot.status_note = "quarantined", note
    alarm = ColdChainAlarm(fridge_id=fridge.id, organization_id=fridge.organization_id, reading_id=reading.id,
                           celsius=celsius, status="open", lot_ids=[lot.id for lot in lots])
    session.add(alarm)
    session.flush()
    audit.record(session, principal, "create", what=[f"Flag/imm-alarm-{alarm.id}"],
                 detail={"fridge": fridge.id, "celsius": celsius, "quarantined_lots": alarm.lot_ids})
    record_event(session, "immunization.cold_chain_alarm.opened", "Flag", alarm.id,
                 {"fridge_id": fridge.id, "celsius": celsius, "quarantined_lots": alarm.lot_ids})
    return reading, alarm


def sensor_reading(session: Session, sensor_key: str | None, fridge_id: str, celsius: float,
                   measured_at: dt.datetime | None) -> tuple[TemperatureReading, ColdChainAlarm | None]:
    """A fridge sensor's reading, authenticated by the fridge's sensor key (header X-Device-Token)."""
    fridge = session.get(Fridge, fridge_id)
    if (not sensor_key or fridge is None or fridge.sensor_key_hash is None
            or not hmac.compare_digest(fridge.sensor_key_hash, _key_hash(sensor_key))):
        raise Unauthorized("传感器密钥无效 / the sensor key (header X-Device-Token) does not match this fridge")
    return _record_temperature(session, None, fridge, celsius, measured_at or clock.utcnow(), "sensor")


def manual_reading(session: Session, principal: Principal, fridge_id: str, celsius: float,
                   measured_at: dt.datetime | None) -> tuple[TemperatureReading, ColdChainAlarm | None]:
    """The manual morning / afternoon record (R6.7) by a person of the clinic."""
    fridge = session.get(Fridge, fridge_id)
    if fridge is None:
        raise NotFound("冰箱不存在 / fridge not found")
    _clinic(principal, fridge.organization_id)
    now = clock.utcnow()
    measured_at = clock.as_utc(measured_at) if measured_at else now
    if measured_at > now + dt.timedelta(minutes=5):
        raise BadRequest("测量时间不能晚于现在 / the time measured cannot be in the future", expression=["measured_at"])
    reading, alarm = _record_temperature(session, principal, fridge, celsius, measured_at, "manual")
    audit.record(session, principal, "create", what=[f"Observation/imm-temperature-{reading.id}"],
                 detail={"fridge": fridge.id, "celsius": celsius, "excursion": reading.excursion})
    record_event(session, "immunization.temperature.recorded", "Observation", reading.id,
                 {"fridge_id": fridge.id, "celsius": celsius, "source": "manual", "excursion": reading.excursion})
    return reading, alarm


def cold_chain_alarms(session: Session, principal: Principal, status: str | None) -> list[ColdChainAlarm]:
    return repo.alarms(session, _clinic_or_all(principal, None), status)


def release_alarm(session: Session, principal: Principal, alarm_id: str, note: str) -> ColdChainAlarm:
    """A person releases the quarantined lots with a note (why the vaccines are still usable); lots another
    open alarm holds stay quarantined. Audited."""
    alarm = session.get(ColdChainAlarm, alarm_id)
    if alarm is None:
        raise NotFound("冷链报警不存在 / cold-chain alarm not found")
    _clinic(principal, alarm.organization_id)
    if alarm.status != "open":
        raise Conflict("该报警已解除 / the alarm has been released already")
    note = (note or "").strip()
    if len(note) < 2:
        raise BadRequest("解除隔离须填写说明 / releasing the lots needs a note", expression=["note"])
    alarm.status, alarm.released_at, alarm.released_by, alarm.release_note = "released", clock.utcnow(), \
        principal.name, note
    session.flush()
    held = {lot for a in repo.open_alarms(session) for lot in a.lot_ids}
    released = []
    for lot_id in alarm.lot_ids:
        lot = session.get(VaccineLot, lot_id)
        if lot is not None and lot.status == "quarantined" and lot_id not in held:
            lot.status, lot.status_note = "available", f"解除隔离 / released: {note}"
            released.append(lot_id)
    session.flush()
    audit.record(session, principal, "update", what=[f"Flag/imm-alarm-{alarm.id}"],
                 detail={"released_lots": released, "note": note[:500]})
    record_event(session, "immunization.cold_chain_alarm.released", "Flag", alarm.id,
                 {"fridge_id": alarm.fridge_id, "released_lots": released})
    return alarm
