"""FHIR R4 for immunisation: the ImmDS forecast operation ``POST [base]/$immds-forecast`` (issue 20 points 1
and 7; docs/immunization.md). Declared here as a server-level operation, served by the façade.

In: a Parameters resource with ``assessmentDate`` (valueDate), ``patient`` (a Patient resource with birthDate
and gender, or valueReference to a registered Patient — read through the access policy and audited) and any
number of ``immunization`` (Immunization resources: vaccineCode from our CodeSystem, occurrenceDateTime,
status). Out: Parameters with ``recommendation`` = an ImmunizationRecommendation, one entry per series.
Bad input: 400 OperationOutcome naming the parameter.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import parse_qsl

from onetrip.immunization import history, service
from onetrip.immunization.codes import VACCINES
from onetrip.immunization.forecast import COMPLETE, DUE, OVERDUE, Dose, SeriesForecast
from onetrip.kit.clock import LOCAL_TZ
from onetrip.kit.errors import BadRequest, Gone, NotFound
from onetrip.kit.fhir import (
    MAX_DATE,
    MIN_DATE,
    Context,
    Created,
    Operation,
    Page,
    ResourceType,
    check_params,
    date_search,
    instant,
    meta,
    params,
    parse_date,
    ref_id,
    require_scope,
)

VACCINE_SYSTEM = "http://onetrip.example/CodeSystem/nip-vaccine"
STATUS_SYSTEM = "http://onetrip.example/CodeSystem/immds-forecast-status"
REASON_SYSTEM = "http://onetrip.example/CodeSystem/immds-forecast-reason"
HL7_STATUS_SYSTEM = "http://terminology.hl7.org/CodeSystem/immunization-recommendation-status"
LOINC = "http://loinc.org"
EARLIEST, DUE_DATE, LATEST = "30981-5", "30980-7", "59777-3"
DATE_CRITERIA = ((EARLIEST, "Earliest date to give"), (DUE_DATE, "Date vaccine due"),
                 (LATEST, "Latest date to give immunization"))

GENDERS = ("male", "female", "other", "unknown")
COUNTED = ("completed",)  # entered-in-error and not-done doses are not doses
SKIPPED = ("entered-in-error", "not-done")


def _bad(message_zh: str, message_en: str, where: str) -> BadRequest:
    return BadRequest(f"{message_zh} / {message_en}", expression=[where])


def _date(value: Any, where: str) -> dt.date:
    """A FHIR date, or the local (Asia/Shanghai) day of a dateTime."""
    if not isinstance(value, str) or len(value) < 10:
        raise _bad(f"{where} 须为日期 YYYY-MM-DD", f"{where} must be a date like 2025-03-10", where)
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value)
        else:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            day = (parsed.astimezone(LOCAL_TZ) if parsed.tzinfo else parsed).date()
    except (ValueError, OverflowError):
        raise _bad(f"{where} 日期无效", f"{where} is not a valid date: {value[:40]!r}", where) from None
    return _in_range(day, where)


def _in_range(day: dt.date, where: str) -> dt.date:
    if not MIN_DATE <= day <= MAX_DATE:
        raise _bad(f"{where} 超出范围", f"{where} must lie between {MIN_DATE} and {MAX_DATE}", where)
    return day


def _assessment(part: dict) -> dt.date:
    value = part.get("valueDate", part.get("valueDateTime"))
    if value is None:
        raise _bad("assessmentDate 须给出 valueDate", "assessmentDate must carry valueDate", "assessmentDate")
    return _date(value, "assessmentDate")


def _inline_patient(resource: Any) -> service.Child:
    if not isinstance(resource, dict) or resource.get("resourceType") != "Patient":
        raise _bad("patient 须为 Patient 资源或对已登记患者的引用",
                   "patient must be a Patient resource or a valueReference to a registered Patient", "patient")
    if not resource.get("birthDate"):
        raise _bad("patient 缺少出生日期", "patient.birthDate is required", "patient.birthDate")
    gender = resource.get("gender")
    if gender not in GENDERS:
        raise _bad("patient.gender 须为 male、female、other 或 unknown",
                   "patient.gender is required: male, female, other or unknown", "patient.gender")
    return service.Child(_date(resource["birthDate"], "patient.birthDate"), gender)


def _dose(i: int, resource: Any) -> Dose | None:
    where = f"immunization[{i}]"
    if not isinstance(resource, dict) or resource.get("resourceType") != "Immunization":
        raise _bad(f"{where} 须为 Immunization 资源", f"{where} must be an Immunization resource", where)
    status = resource.get("status", "completed")
    if status in SKIPPED:
        return None
    if status not in COUNTED:
        raise _bad(f"{where}.status 无效", f"{where}.status must be completed, not-done or entered-in-error",
                   f"{where}.status")
    concept = resource.get("vaccineCode")
    codings = concept.get("coding") if isinstance(concept, dict) else None
    codings = [c for c in codings if isinstance(c, dict)] if isinstance(codings, list) else []
    code = next((c.get("code") for c in codings if c.get("system") == VACCINE_SYSTEM), None)
    if code not in VACCINES:
        raise _bad(f"{where}.vaccineCode 须为 {VACCINE_SYSTEM} 中的代码（{'、'.join(VACCINES)}）",
                   f"{where}.vaccineCode must carry a code of {VACCINE_SYSTEM} ({', '.join(VACCINES)})",
                   f"{where}.vaccineCode")
    if "occurrenceDateTime" not in resource:
        raise _bad(f"{where} 缺少接种日期", f"{where}.occurrenceDateTime is required", f"{where}.occurrenceDateTime")
    return Dose(code, _date(resource["occurrenceDateTime"], f"{where}.occurrenceDateTime"))


def _child(ctx: Context, part: dict) -> service.Child:
    if "resource" in part:
        return _inline_patient(part["resource"])
    if "valueReference" in part:
        reference = part["valueReference"]
        try:
            rid = ref_id(reference, "Patient") if isinstance(reference, dict) else None
        except BadRequest:
            rid = None
        if not rid:
            raise _bad("patient 引用须为 Patient/{id}", "patient.valueReference must be Patient/{id}", "patient")
        require_scope(ctx.principal, "Patient", "r")
        try:
            return service.registered_child(ctx.session, ctx.principal, rid)
        except (NotFound, Gone):
            raise _bad(f"患者 {rid} 不存在", f"patient: no registered Patient/{rid}", "patient") from None
    raise _bad("patient 须给出 resource 或 valueReference", "patient needs a resource or a valueReference", "patient")


def parse(ctx: Context, body: Any) -> tuple[dt.date, service.Child, dict | None, list[Dose]]:
    """The operation's input parameters, checked; 400 naming the parameter otherwise."""
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise _bad("请求体须为 Parameters 资源", "the body must be a Parameters resource", "Parameters")
    parts = body.get("parameter")
    if not isinstance(parts, list) or not all(isinstance(p, dict) for p in parts):
        raise _bad("Parameters.parameter 须为列表", "Parameters.parameter must be a list", "Parameters.parameter")
    assessed = child = inline = None
    immunizations = []
    for i, part in enumerate(parts):
        name = part.get("name")
        if name in ("assessmentDate", "patient") and (assessed if name == "assessmentDate" else child) is not None:
            raise _bad(f"参数 {name} 重复", f"parameter {name} is given twice", name)
        if name == "assessmentDate":
            assessed = _assessment(part)
        elif name == "patient":
            child = _child(ctx, part)
            inline = part.get("resource")
        elif name == "immunization":
            immunizations.append(part.get("resource"))
        else:
            raise _bad(f"不支持的参数 {name!r}", f"unknown parameter {name!r}: use assessmentDate, patient, "
                       f"immunization", f"Parameters.parameter[{i}].name")
    if assessed is None:
        raise _bad("缺少 assessmentDate", "assessmentDate is required", "assessmentDate")
    if child is None:
        raise _bad("缺少 patient", "patient is required", "patient")
    if child.birth > assessed:
        raise _bad("出生日期晚于评估日期", "patient.birthDate is after assessmentDate", "patient.birthDate")
    doses = []
    for i, resource in enumerate(immunizations):
        dose = _dose(i, resource)
        if dose is None:
            continue
        if not child.birth <= dose.date <= assessed:
            raise _bad(f"immunization[{i}] 接种日期须在出生日期与评估日期之间",
                       f"immunization[{i}].occurrenceDateTime must lie between the birth date and assessmentDate",
                       f"immunization[{i}].occurrenceDateTime")
        doses.append(dose)
    return assessed, child, inline, doses


def _coding(system: str, code: str, display: str | None = None) -> dict:
    return {"system": system, "code": code, **({"display": display} if display else {})}


def reason_code(reason: str) -> str:
    """The CodeSystem immds-forecast-reason code of a reason ("earliest:interval:dose-1" → "interval")."""
    parts = reason.split(":")
    return parts[1] if parts[0] == "earliest" and len(parts) > 1 else parts[0]


def recommendation_entry(f: SeriesForecast) -> dict:
    """One ImmunizationRecommendation.recommendation for one series."""
    zh, en = VACCINES.get(f.vaccine, (None, None))
    status = [_coding(STATUS_SYSTEM, f.status)]
    if f.status in (DUE, OVERDUE, COMPLETE):
        status.append(_coding(HL7_STATUS_SYSTEM, f.status))
    entry: dict[str, Any] = {
        "vaccineCode": [{"coding": [_coding(VACCINE_SYSTEM, f.vaccine, en)], "text": zh or f.vaccine}],
        "forecastStatus": {"coding": status},
        "forecastReason": [{"coding": [_coding(REASON_SYSTEM, reason_code(r))], "text": r} for r in f.reasons],
        "series": f.series,
    }
    if f.dose is not None:
        entry["doseNumberPositiveInt"] = f.dose
        dates = (f.earliest, f.due, f.latest)
        entry["dateCriterion"] = [{"code": {"coding": [_coding(LOINC, code, display)]}, "value": day.isoformat()}
                                  for (code, display), day in zip(DATE_CRITERIA, dates, strict=True) if day]
    return entry


def recommendation(assessed: dt.date, child: service.Child, inline: dict | None,
                   forecasts: list[SeriesForecast]) -> dict:
    """The ImmunizationRecommendation (not stored: computed for the request)."""
    out: dict[str, Any] = {"resourceType": "ImmunizationRecommendation", "date": assessed.isoformat()}
    if child.record_id:
        out["patient"] = {"reference": f"Patient/{child.record_id}"}
    else:
        contained = {k: v for k, v in (inline or {}).items() if k not in ("id", "meta", "contained", "text")}
        out["contained"] = [{**contained, "id": "patient"}]
        out["patient"] = {"reference": "#patient"}
    out["recommendation"] = [recommendation_entry(f) for f in forecasts]
    return out


def immds_forecast(ctx: Context, body: Any, params: list[tuple[str, str]]) -> Created:
    """ImmDS forecast (``$immds-forecast``): per vaccine series the next dose, its earliest / due / latest
    dates (LOINC 30981-5 / 30980-7 / 59777-3) and status (complete, due, overdue, notdue) from the national
    schedule edition in force on ``assessmentDate``. In: Parameters with ``assessmentDate``, ``patient``
    (Patient resource, or valueReference to a registered Patient — access-checked and audited),
    ``immunization``*. Out: Parameters with ``recommendation`` (ImmunizationRecommendation)."""
    if params:
        raise _bad("此操作不接受查询参数", "this operation takes its parameters in the body", params[0][0])
    assessed, child, inline, doses = parse(ctx, body)
    forecasts = service.forecast_child(ctx.session, child, assessed, doses)
    rec = recommendation(assessed, child, inline, forecasts)
    return Created({"resourceType": "Parameters", "parameter": [{"name": "recommendation", "resource": rec}]},
                   status=200)


IMMDS_DEFINITION = "http://hl7.org/fhir/us/immds/OperationDefinition/immds-forecast"
OPERATIONS = (
    Operation("immds-forecast", immds_forecast, scope=("ImmunizationRecommendation", "r"), body="any",
              definition=IMMDS_DEFINITION),
)


# --- Immunization and ImmunizationRecommendation (issue 20 point 7) -----------------------------------------

TRACE_SYSTEM = "http://onetrip.example/NamingSystem/vaccine-trace-code"  # R6.6 20-character trace code
SITE_SYSTEM = "http://onetrip.example/CodeSystem/vaccination-site"
ROUTE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration"
ROUTES = {"IM": ("IM", "Injection, intramuscular"), "SC": ("SQ", "Injection, subcutaneous"),
          "ID": ("IDINJ", "Injection, intradermal"), "PO": ("PO", "Swallow, oral")}
PERFORMER_FUNCTION = "http://terminology.hl7.org/CodeSystem/v2-0443"
SOURCE_SYSTEM = "http://onetrip.example/CodeSystem/vaccination-source"  # desk | fhir | hl7v2 (meta.tag)
ORIGIN_SYSTEM = "http://terminology.hl7.org/CodeSystem/immunization-origin"
IMMUNIZATION_PARAMS = params(("patient", "reference"), ("date", "date"), ("vaccine-code", "token"),
                             ("status", "token"))
RECOMMENDATION_PARAMS = params(("patient", "reference"), ("date", "date"))


def immunization(v: Any) -> dict:
    """One vaccination record as FHIR Immunization (R6.6: vaccine, holder, trace code, lot, expiry, time,
    vaccinator, recipient; site and route)."""
    zh, en = VACCINES.get(v.vaccine_code, (v.vaccine_code, v.vaccine_code))
    elsewhere = v.source != "desk"  # a dose given elsewhere (FHIR create, HL7 v2 VXU): what the sender gave
    identifiers = [{"system": TRACE_SYSTEM, "value": v.trace_code}] if v.trace_code else []
    if v.external_id:
        system, _, value = v.external_id.rpartition("|")
        identifiers.append({**({"system": system} if system else {}), "value": value})
    place = ({"display": v.recorded_at_name} if v.recorded_at_name
             else {"reference": f"Organization/{v.organization_id}"})
    performers = []
    if v.vaccinator_name:
        performers.append({"function": {"coding": [_coding(PERFORMER_FUNCTION, "AP", "Administering Provider")]},
                           "actor": {"display": v.vaccinator_name}})
    performers.append({"actor": place})
    out: dict[str, Any] = {
        "resourceType": "Immunization", "id": v.id,
        "meta": {**meta(1, v.updated_at), "tag": [_coding(SOURCE_SYSTEM, v.source)]},
        **({"identifier": identifiers} if identifiers else {}),
        "status": v.status,
        "vaccineCode": {"coding": [_coding(VACCINE_SYSTEM, v.vaccine_code, en)], "text": zh},
        "patient": {"reference": f"Patient/{v.patient_record_id}"},
        "occurrenceDateTime": instant(v.occurred_at),
        "recorded": instant(v.created_at),
        "primarySource": v.primary_source is not False,
        "location": place,
    }
    if elsewhere and not v.primary_source:
        out["reportOrigin"] = {"coding": [_coding(ORIGIN_SYSTEM, "record" if v.source == "hl7v2" else "provider")]}
    if v.holder:
        out["manufacturer"] = {"display": v.holder}
    if v.lot_number:
        out["lotNumber"] = v.lot_number
    if v.expiry:
        out["expirationDate"] = v.expiry.isoformat()
    if v.site:
        out["site"] = {"coding": [_coding(SITE_SYSTEM, v.site)], "text": v.site}
    if v.route:
        route, route_display = ROUTES.get(v.route, (v.route, v.route))
        out["route"] = {"coding": [_coding(ROUTE_SYSTEM, route, route_display)]}
    out["performer"] = performers
    if v.status != "not-done":
        out["protocolApplied"] = [{"doseNumberPositiveInt": v.dose_number}]
    if v.status == "entered-in-error" and v.error_reason:
        out["note"] = [{"text": v.error_reason}]
    return out


def read_immunization(ctx: Context, rid: str) -> dict:
    """A vaccination record (access: the clinic that gave it, or the access policy; audited)."""
    return immunization(service.get_vaccination(ctx.session, ctx.principal, rid))


def _patient_param(raw: dict[str, str]) -> str | None:
    value = raw.get("patient")
    if value is None:
        return None
    rid = value.split("/")[-1]
    if not rid:
        raise _bad("patient 须为 Patient/{id}", "patient must be Patient/{id} or an id", "patient")
    return rid


def search_immunizations(ctx: Context, raw: dict[str, str], count: int, offset: int) -> Page:
    """patient (every clinic's records of that person, through the access policy), date, vaccine-code
    (``code`` or ``system|code``), status; without patient the caller's clinic."""
    codes = None
    if raw.get("vaccine-code"):
        codes = []
        for token in raw["vaccine-code"].split(","):
            system, _, code = token.rpartition("|")
            if system and system != VACCINE_SYSTEM:
                raise _bad(f"vaccine-code 的系统须为 {VACCINE_SYSTEM}", f"vaccine-code system must be {VACCINE_SYSTEM}",
                           "vaccine-code")
            codes.append(code)
    when = date_search(raw["date"], "date") if raw.get("date") else None
    rows, more = service.search_vaccinations(ctx.session, ctx.principal, patient_id=_patient_param(raw),
                                             vaccine_codes=codes, when=when, count=count, offset=offset,
                                             query=ctx.query)
    if raw.get("status"):
        wanted = set(raw["status"].split(","))
        rows = [v for v in rows if v.status in wanted]
    return Page([immunization(v) for v in rows], more)


def search_recommendations(ctx: Context, raw: dict[str, str], count: int, offset: int) -> Page:
    """``ImmunizationRecommendation?patient=`` for a registered child: the forecast over the recorded doses
    (today, or ``date=YYYY-MM-DD``). Computed, not stored."""
    rid = _patient_param(raw)
    if rid is None:  # computed per child: nothing to list without one (the façade's contract: a search answers)
        return Page([], False)
    assessed = None
    if raw.get("date"):
        prefix, assessed = parse_date(raw["date"], "date")
        if prefix != "eq":
            raise _bad("date 只接受某一天", "date takes one day (YYYY-MM-DD), no prefix", "date")
    try:
        child, assessed, forecasts = service.registered_forecast(ctx.session, ctx.principal, rid, assessed)
    except (NotFound, Gone):
        return Page([], False)
    if child.birth > assessed:
        raise _bad("出生日期晚于评估日期", "the patient's birth date is after date", "date")
    return Page([_recommendation(rid, child, assessed, forecasts)] if count and offset == 0 else [], False)


def _recommendation(rid: str, child: service.Child, assessed: dt.date, forecasts: list[SeriesForecast]) -> dict:
    rec = recommendation(assessed, child, None, forecasts)
    rec["id"] = f"{rid}-{assessed:%Y%m%d}"
    return rec


def read_recommendation(ctx: Context, rid: str) -> dict:
    """``ImmunizationRecommendation/{patient id}-{YYYYMMDD}``: the search's result read again (recomputed)."""
    record_id, _, day = rid.rpartition("-")
    try:
        assessed = dt.datetime.strptime(day, "%Y%m%d").date()
    except ValueError:
        raise NotFound("ImmunizationRecommendation 不存在 / ImmunizationRecommendation not found: ids are "
                       "{patient id}-{YYYYMMDD}") from None
    if not record_id or not MIN_DATE <= assessed <= MAX_DATE:
        raise NotFound("ImmunizationRecommendation 不存在 / ImmunizationRecommendation not found")
    child, assessed, forecasts = service.registered_forecast(ctx.session, ctx.principal, record_id, assessed)
    if child.birth > assessed:
        raise NotFound("ImmunizationRecommendation 不存在 / ImmunizationRecommendation not found (before birth)")
    return _recommendation(record_id, child, assessed, forecasts)


# --- Immunization create: a dose given elsewhere (issue 20 point 7; immunization/history.py) ---------------

ROUTE_CODES = {fhir_code: ours for ours, (fhir_code, _) in ROUTES.items()} | {ours: ours for ours in ROUTES}
# Our field → the element a 400 names.
CREATE_ELEMENTS = (("vaccine_code", "Immunization.vaccineCode"), ("occurred_at", "Immunization.occurrenceDateTime"),
                   ("status", "Immunization.status"), ("route", "Immunization.route"),
                   ("external_id", "Immunization.identifier"), ("lot_number", "Immunization.lotNumber"),
                   ("manufacturer", "Immunization.manufacturer"), ("performer_name", "Immunization.performer"),
                   ("site", "Immunization.site"), ("recorded_at_name", "Immunization.location"))


def _el(name: str) -> str:
    return f"Immunization.{name}"


def _text_of(value: Any, name: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _bad(f"{_el(name)} 须为非空字符串", f"{_el(name)} must be a non-empty string", _el(name))
    if len(value) > limit:
        raise _bad(f"{_el(name)} 超过 {limit} 个字符", f"{_el(name)} is longer than {limit} characters", _el(name))
    return value.strip()


def _codings(value: Any, name: str) -> tuple[list[dict], str | None]:
    """A CodeableConcept's codings (each a dict) and text; 400 naming the element when malformed."""
    if not isinstance(value, dict):
        raise _bad(f"{_el(name)} 须为 CodeableConcept", f"{_el(name)} must be a CodeableConcept", _el(name))
    codings = value.get("coding", [])
    if not isinstance(codings, list) or not all(isinstance(c, dict) for c in codings):
        raise _bad(f"{_el(name)}.coding 须为列表", f"{_el(name)}.coding must be a list of Coding", _el(name))
    text = value.get("text")
    return codings, text if isinstance(text, str) else None


def _occurrence(body: dict) -> dt.datetime:
    where = _el("occurrenceDateTime")
    value = body.get("occurrenceDateTime")
    if not isinstance(value, str) or len(value) < 10:
        raise _bad(f"{where} 必填（YYYY-MM-DD 或带时区的日期时间）", f"{where} is required: a date or a dateTime with "
                   "a time zone", where)
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value)
            moment = dt.datetime(day.year, day.month, day.day, tzinfo=LOCAL_TZ)
        else:
            moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            moment = moment if moment.tzinfo else moment.replace(tzinfo=LOCAL_TZ)
    except (ValueError, OverflowError):
        raise _bad(f"{where} 日期无效", f"{where} is not a valid date or dateTime: {value[:40]!r}", where) from None
    _in_range(moment.date(), where)
    return moment.astimezone(dt.UTC)


def _performer(body: dict) -> str | None:
    """The administering person's name: the performer with function AP, else the first with a display."""
    performers = body.get("performer", [])
    if not isinstance(performers, list) or not all(isinstance(p, dict) and isinstance(p.get("actor"), dict)
                                                   for p in performers):
        raise _bad("Immunization.performer 须为含 actor 的列表", "Immunization.performer must be a list of "
                   "{function, actor}", _el("performer"))
    named = [p for p in performers if isinstance(p["actor"].get("display"), str) and p["actor"]["display"].strip()]
    def administering(p: dict) -> bool:
        function = p.get("function")
        codings = function.get("coding") if isinstance(function, dict) else None
        return isinstance(codings, list) and any(isinstance(c, dict) and c.get("code") == "AP" for c in codings)

    ap = [p for p in named if administering(p)]
    chosen = (ap or named or [None])[0]
    return _text_of(chosen["actor"]["display"], "performer", 128) if chosen else None


def _external_id(body: dict) -> str | None:
    identifiers = body.get("identifier", [])
    if not isinstance(identifiers, list) or not all(isinstance(i, dict) for i in identifiers):
        raise _bad("Immunization.identifier 须为列表", "Immunization.identifier must be a list", _el("identifier"))
    for i in identifiers:
        value, system = i.get("value"), i.get("system", "")
        if not isinstance(value, str) or not value.strip() or not isinstance(system, str):
            continue
        if system == TRACE_SYSTEM:
            continue  # our own trace codes are the desk's, not a sender's identifier
        return _text_of(f"{system}|{value.strip()}", "identifier", 200)
    return None


def history_dose(body: Any) -> history.HistoryDose:
    """The Immunization body as a dose given elsewhere; 400 naming the element otherwise."""
    if not isinstance(body, dict) or body.get("resourceType") != "Immunization":
        raise _bad("请求体须为 Immunization 资源", "the body must be an Immunization resource", "Immunization")
    status = body.get("status")
    if status not in history.STATUSES:
        raise _bad("Immunization.status 须为 completed 或 not-done", "Immunization.status must be completed or "
                   "not-done", _el("status"))
    codings, _ = _codings(body.get("vaccineCode"), "vaccineCode")
    code = next((c.get("code") for c in codings if c.get("system") == VACCINE_SYSTEM), None)
    if code not in VACCINES:
        raise _bad(f"Immunization.vaccineCode 须为 {VACCINE_SYSTEM} 中的代码（{'、'.join(VACCINES)}）",
                   f"Immunization.vaccineCode must carry a code of {VACCINE_SYSTEM} ({', '.join(VACCINES)})",
                   _el("vaccineCode"))
    patient = body.get("patient")
    try:
        record_id = ref_id(patient, "Patient") if isinstance(patient, dict) else None
    except BadRequest:
        record_id = None
    if not record_id:
        raise _bad("Immunization.patient 须为 Patient/{id}", "Immunization.patient must reference Patient/{id}",
                   _el("patient"))
    occurred = _occurrence(body)
    primary = body.get("primarySource", True)
    if not isinstance(primary, bool):
        raise _bad("Immunization.primarySource 须为布尔值", "Immunization.primarySource must be true or false",
                   _el("primarySource"))
    expiry = None
    if body.get("expirationDate") is not None:
        raw = body["expirationDate"]
        try:
            expiry = _in_range(dt.date.fromisoformat(raw), _el("expirationDate")) if isinstance(raw, str) and \
                len(raw) == 10 else None
        except ValueError:
            expiry = None
        if expiry is None:
            raise _bad("Immunization.expirationDate 须为日期 YYYY-MM-DD", "Immunization.expirationDate must be a "
                       "date like 2027-06-30", _el("expirationDate"))
    manufacturer = body.get("manufacturer")
    if manufacturer is not None and not isinstance(manufacturer, dict):
        raise _bad("Immunization.manufacturer 须为引用", "Immunization.manufacturer must be a Reference",
                   _el("manufacturer"))
    site = route = None
    if body.get("site") is not None:
        codings, text = _codings(body["site"], "site")
        site = _text_of(next((c.get("code") for c in codings if isinstance(c.get("code"), str)), text), "site", 32)
    if body.get("route") is not None:
        codings, _ = _codings(body["route"], "route")
        route = next((ROUTE_CODES[c["code"]] for c in codings if c.get("code") in ROUTE_CODES), None)
        if route is None:
            raise _bad(f"Immunization.route 须为 {ROUTE_SYSTEM} 的 IM、SQ、IDINJ 或 PO",
                       f"Immunization.route must be IM, SQ, IDINJ or PO of {ROUTE_SYSTEM}", _el("route"))
    location = body.get("location")
    if location is not None and not isinstance(location, dict):
        raise _bad("Immunization.location 须为引用", "Immunization.location must be a Reference", _el("location"))
    return history.HistoryDose(
        patient_record_id=record_id, vaccine_code=code, occurred_at=occurred, source="fhir",
        external_id=_external_id(body), status=status, primary_source=primary,
        recorded_at_name=_text_of((location or {}).get("display"), "location", 200),
        lot_number=_text_of(body.get("lotNumber"), "lotNumber", 64), expiry=expiry,
        manufacturer=_text_of((manufacturer or {}).get("display"), "manufacturer", 128),
        performer_name=_performer(body), site=site, route=route, where=CREATE_ELEMENTS)


def create_immunization(ctx: Context, body: Any) -> Created:
    """Record a dose given elsewhere (another clinic's history): status completed or not-done, vaccineCode of
    the nip-vaccine CodeSystem, a registered Patient, occurrenceDateTime (not in the future, not before
    birth), lotNumber, expirationDate, manufacturer.display, performer, site, route, primarySource,
    identifier. Idempotent on the first identifier (the same identifier again answers 200 with the stored
    dose); ``If-None-Exist: identifier=system|value`` for a conditional create. It counts in the forecast."""
    dose = history_dose(body)
    if ctx.if_none_exist:
        raw = check_params(parse_qsl(ctx.if_none_exist, keep_blank_values=True), {"identifier"}, "Immunization")
        system, sep, value = (raw.get("identifier") or "").partition("|")
        if not sep or not system or not value:
            raise BadRequest("If-None-Exist 须为 identifier=system|value / If-None-Exist must be "
                             "identifier=system|value", code="not-supported")
        found = history.find_external(ctx.session, f"{system}|{value}")
        if found is not None:
            return Created(immunization(service.get_vaccination(ctx.session, ctx.principal, found.id)), status=200)
    try:
        v, created = history.record(ctx.session, ctx.principal, dose)
    except (NotFound, Gone):
        raise _bad(f"患者 {dose.patient_record_id[:40]} 不存在", f"Immunization.patient: no registered "
                   f"Patient/{dose.patient_record_id[:40]}", _el("patient")) from None
    return Created(immunization(v), status=201 if created else 200)


RESOURCES = [
    ResourceType("Immunization", read=read_immunization, search=search_immunizations,
                 search_params=IMMUNIZATION_PARAMS, create=create_immunization, conditional_create=True,
                 doc="Vaccinations given at the clinics' desks (issue 20): lot, expiry, trace code, performer, site, "
                     "route; entered-in-error records kept. Create: a dose given elsewhere (history, "
                     "meta.tag vaccination-source fhir), idempotent on its identifier."),
    ResourceType("ImmunizationRecommendation", read=read_recommendation, search=search_recommendations, search_params=RECOMMENDATION_PARAMS,
                 doc="The national-programme forecast of a registered child over the recorded doses (issue 20)."),
]
