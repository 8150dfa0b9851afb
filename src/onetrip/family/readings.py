"""Self-check readings (自测): blood pressure and glucose from clinic kiosks and home devices.

Where they live — one place, no duplicate storage: ``fam_reading``. The shared results store
(records.Observation) holds one value per laboratory result issued by an institution with the sender's
identifier; a BP reading is a panel of two components (systolic, diastolic) measured by the patient, not
a result an institution issues. So ``POST /fhir/R4/Observation`` is routed by ``is_self_check``: a BP
panel or component (85354-9, 55284-4, 8480-6, 8462-4) or a glucose code (2339-0, 1558-6, 41653-7,
14743-9, 14749-6, 2345-7) that is not a laboratory result (category ``laboratory``) is a self-check
reading and lands here; anything else goes on to the records service unchanged.

Devices authenticate with a per-device token (shown once at registration; the database keeps its
SHA-256). Out-of-range readings (thresholds in the ``family`` rule table) raise an alert for the team of
the patient's family doctor.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from onetrip.audit import service as audit
from onetrip.family import repository as repo
from onetrip.family import rules
from onetrip.family.common import number, params, require_team_member, resident
from onetrip.family.models import Alert, Device, Reading, Registry
from onetrip.kit.clock import utcnow
from onetrip.kit.errors import BadRequest, NotFound, Unauthorized
from onetrip.kit.identifiers import IdentifierError, parse_resident_id
from onetrip.kit.principal import Principal
from onetrip.outbox.service import record_event
from onetrip.persons.models import Person

LOINC = "http://loinc.org"
BP_PANEL = {"85354-9", "55284-4"}  # blood pressure panel (with components)
SBP, DBP, PULSE = "8480-6", "8462-4", "8867-4"
GLUCOSE = {"2339-0": "random", "2345-7": "random", "41653-7": "random", "1558-6": "fasting",
           "14743-9": "random", "14749-6": "random", "1521-4": "postprandial"}
SOURCES = ("kiosk", "home", "fhir")
ALERT_TEXT = {"sbp_high": "收缩压过高 / SBP high", "dbp_high": "舒张压过高 / DBP high",
              "sbp_low": "收缩压过低 / SBP low", "glucose_high": "血糖过高 / glucose high",
              "glucose_low": "血糖过低 / glucose low"}


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _codes(concept: dict | None) -> set[str]:
    return {c.get("code") for c in (concept or {}).get("coding") or [] if c.get("code")}


def is_self_check(body: dict) -> bool:
    """Whether a FHIR Observation is a self-check reading (stored here) rather than a result (records).

    A BP panel (85354-9 / 55284-4, systolic 8480-6 and diastolic 8462-4 as components) always is: the
    results store keeps one value per Observation. A glucose value (2339-0, 1558-6, ...) is one only when
    it says so — glucometer code 41653-7, a ``device``, a Patient/RelatedPerson performer, or category
    ``vital-signs`` / ``survey`` — because laboratory systems often send glucose without a category."""
    if not isinstance(body, dict) or body.get("resourceType") != "Observation":
        return False
    codes = _codes(body.get("code"))
    if codes & BP_PANEL:
        return True
    if not codes & set(GLUCOSE):
        return False
    categories = {c for cat in body.get("category") or [] for c in _codes(cat)}
    if "laboratory" in categories:
        return False
    performers = [str((p or {}).get("reference") or "") for p in body.get("performer") or []]
    return ("41653-7" in codes or bool(body.get("device")) or bool(categories & {"vital-signs", "survey"})
            or any(r.startswith(("Patient/", "RelatedPerson/")) for r in performers))


# --- devices ----------------------------------------------------------------------------------------

def register_device(session: Session, principal: Principal, *, kind: str, serial: str, person_id: str | None = None,
                    organization_id: str | None = None) -> tuple[Device, str]:
    """A home device (``person_id``) or a clinic kiosk (``organization_id``). Returns the device and its
    token, which is shown this once."""
    if kind not in ("bp", "glucose", "both"):
        raise BadRequest("设备类型须为 bp / glucose / both", expression=["kind"])
    if (person_id is None) == (organization_id is None):
        raise BadRequest("家用设备填居民，自助机填机构（二选一）/ give person_id (home device) or organization_id "
                         "(kiosk), not both", expression=["person_id"])
    if person_id:
        person = resident(session, person_id)
        person_id = person.id
        c = repo.active_contract(session, person.id)
        if not principal.is_operator and (c is None or c.organization_id != principal.organization_id):
            regs = [r for r in repo.registries_of(session, person.id) if r.organization_id == principal.organization_id]
            if not regs:
                raise NotFound("该居民未在本机构签约或建档 / the resident has no contract or registry here")
    else:
        require_team_member(principal, organization_id)  # type: ignore[arg-type]
    token = "dev_" + secrets.token_urlsafe(32)
    d = Device(person_id=person_id, organization_id=organization_id, kind=kind, serial=serial.strip()[:64],
               token_hash=hash_token(token), registered_by=principal.name[:64])
    session.add(d)
    session.flush()
    audit.record(session, principal, "create", person_ids=[person_id], what=[f"Device/{d.id}"])
    return d, token


def device_for_token(session: Session, token: str | None) -> Device:
    if not token:
        raise Unauthorized("需要设备令牌 / a device token is required")
    d = session.scalars(select(Device).where(Device.token_hash == hash_token(token))).first()
    if d is None or not d.active:
        raise Unauthorized("设备令牌无效 / unknown or revoked device token")
    return d


def device_principal(d: Device) -> Principal:
    return Principal(kind="client", id=d.id, name=f"device:{d.serial}"[:64], organization_id=d.organization_id,
                     client_id=f"device:{d.id}", source="api")


# --- storing readings -------------------------------------------------------------------------------

def store_reading(session: Session, principal: Principal, *, person_id: str, measured_at: dt.datetime | None,
                  sbp: float | None = None, dbp: float | None = None, pulse: float | None = None,
                  glucose: float | None = None, glucose_context: str | None = None, source: str = "home",
                  device_id: str | None = None, source_system: str | None = None, source_id: str | None = None,
                  resource: dict | None = None) -> tuple[Reading, bool]:
    """Store one reading (idempotent on ``source_system|source_id``); raise an alert when out of range.
    Returns (reading, created)."""
    if source not in SOURCES:
        raise BadRequest(f"来源无效 / source must be one of {list(SOURCES)}", expression=["source"])
    sbp, dbp = number(sbp, "sbp", 40, 300), number(dbp, "dbp", 20, 200)
    pulse, glucose = number(pulse, "pulse", 20, 250), number(glucose, "glucose", 0.5, 60)
    if sbp is None and dbp is None and glucose is None:
        raise BadRequest("读数为空（需血压或血糖）/ a reading needs a blood pressure or a glucose value",
                         expression=["valueQuantity"])
    if (sbp is None) != (dbp is None):
        raise BadRequest("收缩压和舒张压须同时提供 / give both systolic and diastolic", expression=["component"])
    if glucose_context not in (None, "fasting", "random", "postprandial"):
        raise BadRequest("血糖类型无效 / glucose_context must be fasting, random or postprandial",
                         expression=["glucose_context"])
    now = utcnow()
    at = measured_at or now
    if at.tzinfo is None:
        raise BadRequest("测量时间需带时区 / measured_at needs a time zone", expression=["effectiveDateTime"])
    if at > now + dt.timedelta(minutes=10):
        raise BadRequest("测量时间不能在将来 / measured_at is in the future", expression=["effectiveDateTime"])
    person = resident(session, person_id)
    if source_system and source_id:
        found = session.scalars(select(Reading).where(Reading.source_system == source_system,
                                                      Reading.source_id == source_id)).first()
        if found is not None:
            return found, False
    codes = rules.reading_alerts(sbp, dbp, glucose, params(session))
    r = Reading(person_id=person.id, measured_at=at, sbp=sbp, dbp=dbp, pulse=pulse, glucose=glucose,
                glucose_context=glucose_context if glucose is not None else None, source=source, device_id=device_id,
                source_system=source_system, source_id=source_id, alerts=codes, resource=resource, created_at=now)
    try:
        with session.begin_nested():
            session.add(r)
            session.flush()
    except IntegrityError:
        found = session.scalars(select(Reading).where(Reading.source_system == source_system,
                                                      Reading.source_id == source_id)).first()
        if found is None:
            raise
        return found, False
    audit.record(session, principal, "create", person_ids=[person.id], what=[f"Observation/{r.id}"],
                 detail={"self_check": source})
    record_event(session, "reading.recorded", "Observation", r.id,
                 {"kind": "bp" if sbp is not None else "glucose", "source": source, "alerts": codes},
                 person_id=person.id)
    if codes:
        raise_alert(session, r, codes)
    return r, True


def team_of(session: Session, person_id: str) -> str | None:
    c = repo.active_contract(session, person_id)
    if c is not None:
        return c.team_id
    return session.scalars(select(Registry.team_id).where(Registry.person_id == person_id,
                                                          Registry.status == "active")).first()


def raise_alert(session: Session, r: Reading, codes: list[str]) -> Alert:
    values = []
    if r.sbp is not None:
        values.append(f"{r.sbp:.0f}/{r.dbp:.0f} mmHg")
    if r.glucose is not None:
        values.append(f"{r.glucose} mmol/L")
    zh = "、".join(ALERT_TEXT[c].split(" / ")[0] for c in codes)
    en = ", ".join(ALERT_TEXT[c].split(" / ")[1] for c in codes)
    a = Alert(person_id=r.person_id, team_id=team_of(session, r.person_id), reading_id=r.id, codes=codes,
              summary=f"自测{zh} {' '.join(values)} / self-check {en} {' '.join(values)}"[:200])
    session.add(a)
    session.flush()
    record_event(session, "family.alert.raised", "Flag", a.id, {"team_id": a.team_id, "codes": codes},
                 person_id=r.person_id)
    return a


def device_reading(session: Session, token: str | None, data: dict[str, Any]) -> tuple[Reading, bool]:
    """POST /api/devices/readings: a home device reads for its owner; a kiosk names the patient by the ID
    number on the card swiped (``id_number``)."""
    d = device_for_token(session, token)
    person_id = d.person_id
    if person_id is None:
        try:
            number = parse_resident_id(str(data.get("id_number") or "")).number
        except IdentifierError:
            raise BadRequest("自助机读数需要有效的居民身份证号 / a kiosk reading needs the patient's valid ID number",
                             expression=["id_number"]) from None
        person = session.scalars(select(Person).where(Person.id_number == number)).first()
        if person is None:
            raise NotFound("未找到该居民 / no resident with this ID number", expression=["id_number"])
        person_id = person.id
    d.last_seen_at = utcnow()
    measured = data.get("measured_at")
    if isinstance(measured, str):
        try:
            measured = dt.datetime.fromisoformat(measured.replace("Z", "+00:00"))
        except ValueError:
            raise BadRequest("measured_at 须为 ISO 时间 / measured_at must be an ISO date-time",
                             expression=["measured_at"]) from None
    return store_reading(session, device_principal(d), person_id=person_id, measured_at=measured,
                         sbp=data.get("sbp"), dbp=data.get("dbp"), pulse=data.get("pulse"), glucose=data.get("glucose"),
                         glucose_context=data.get("glucose_context"),
                         source="kiosk" if d.organization_id else "home", device_id=d.id,
                         source_system=f"urn:onetrip:device:{d.id}" if data.get("reading_id") else None,
                         source_id=str(data["reading_id"])[:100] if data.get("reading_id") else None)


# --- FHIR Observation ↔ reading ---------------------------------------------------------------------

def _quantity(node: dict) -> float | None:
    q = node.get("valueQuantity") or {}
    v = q.get("value")
    if v is None:
        return None
    unit = (q.get("code") or q.get("unit") or "").lower()
    if unit in ("mg/dl",):  # glucose in mg/dL → mmol/L
        return round(float(v) / 18.0, 1)
    return float(v)


def reading_from_fhir(body: dict) -> dict[str, Any]:
    """The reading fields of a self-check Observation (BP panel with components, or a single value)."""
    codes = _codes(body.get("code"))
    out: dict[str, Any] = {}
    if codes & (BP_PANEL | {SBP, DBP}):
        parts = {c: _quantity(comp) for comp in body.get("component") or [] for c in _codes(comp.get("code"))}
        if SBP in codes:
            parts[SBP] = _quantity(body)
        if DBP in codes:
            parts[DBP] = _quantity(body)
        out.update(sbp=parts.get(SBP), dbp=parts.get(DBP), pulse=parts.get(PULSE))
    else:
        code = next(c for c in codes if c in GLUCOSE)
        out.update(glucose=_quantity(body), glucose_context=GLUCOSE[code])
    return out


def reading_to_fhir(r: Reading) -> dict[str, Any]:
    base: dict[str, Any] = {
        "resourceType": "Observation", "id": r.id, "status": "final",
        "meta": {"versionId": "1", "lastUpdated": r.created_at.isoformat()},
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                  "code": "vital-signs" if r.sbp is not None else "survey"}]}],
        "subject": {"reference": f"urn:onetrip:person:{r.person_id}"},
        "effectiveDateTime": r.measured_at.isoformat(),
        "extension": [{"url": "urn:onetrip:sd:self-check-source", "valueString": r.source}],
    }
    if r.source_system and r.source_id:
        base["identifier"] = [{"system": r.source_system, "value": r.source_id}]
    if r.device_id:
        base["device"] = {"reference": f"Device/{r.device_id}"}
    if r.sbp is not None:
        base["code"] = {"coding": [{"system": LOINC, "code": "85354-9", "display": "Blood pressure panel"}]}
        base["component"] = [
            {"code": {"coding": [{"system": LOINC, "code": SBP, "display": "Systolic blood pressure"}]},
             "valueQuantity": {"value": r.sbp, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
            {"code": {"coding": [{"system": LOINC, "code": DBP, "display": "Diastolic blood pressure"}]},
             "valueQuantity": {"value": r.dbp, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
        ]
    else:
        code = "1558-6" if r.glucose_context == "fasting" else "2339-0"
        base["code"] = {"coding": [{"system": LOINC, "code": code}]}
        base["valueQuantity"] = {"value": r.glucose, "unit": "mmol/L", "system": "http://unitsofmeasure.org",
                                 "code": "mmol/L"}
    if r.alerts:
        base["interpretation"] = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                                               "code": "HH" if any(a.endswith("high") for a in r.alerts) else "LL"}]}]
    return base
