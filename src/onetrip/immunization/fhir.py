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

from onetrip.immunization import service
from onetrip.immunization.forecast import COMPLETE, DUE, OVERDUE, Dose, SeriesForecast
from onetrip.kit.clock import LOCAL_TZ
from onetrip.kit.errors import BadRequest, Gone, NotFound
from onetrip.kit.fhir import MAX_DATE, MIN_DATE, Context, Created, Operation, ref_id, require_scope

VACCINE_SYSTEM = "http://onetrip.example/CodeSystem/nip-vaccine"
STATUS_SYSTEM = "http://onetrip.example/CodeSystem/immds-forecast-status"
REASON_SYSTEM = "http://onetrip.example/CodeSystem/immds-forecast-reason"
HL7_STATUS_SYSTEM = "http://terminology.hl7.org/CodeSystem/immunization-recommendation-status"
LOINC = "http://loinc.org"
EARLIEST, DUE_DATE, LATEST = "30981-5", "30980-7", "59777-3"
DATE_CRITERIA = ((EARLIEST, "Earliest date to give"), (DUE_DATE, "Date vaccine due"),
                 (LATEST, "Latest date to give immunization"))

# The CodeSystem nip-vaccine: the RULES §6 abbreviations (docs/immunization.md holds the definition).
VACCINES: dict[str, tuple[str, str]] = {
    "HepB": ("乙肝疫苗", "hepatitis B vaccine"),
    "BCG": ("卡介苗", "BCG vaccine"),
    "IPV": ("脊灰灭活疫苗", "inactivated poliovirus vaccine"),
    "bOPV": ("二价脊灰减毒活疫苗", "bivalent oral poliovirus vaccine (types 1 and 3)"),
    "DTaP": ("百白破疫苗", "diphtheria, tetanus and acellular pertussis vaccine"),
    "DT": ("白破疫苗", "diphtheria and tetanus vaccine"),
    "MPSV-A": ("A群流脑多糖疫苗", "meningococcal polysaccharide vaccine group A"),
    "MPSV-AC": ("A群C群流脑多糖疫苗", "meningococcal polysaccharide vaccine groups A and C"),
    "MMR": ("麻腮风疫苗", "measles, mumps and rubella vaccine"),
    "JE-L": ("乙脑减毒活疫苗", "Japanese encephalitis vaccine, live attenuated"),
    "JE-I": ("乙脑灭活疫苗", "Japanese encephalitis vaccine, inactivated"),
    "HepA-L": ("甲肝减毒活疫苗", "hepatitis A vaccine, live attenuated"),
    "HepA-I": ("甲肝灭活疫苗", "hepatitis A vaccine, inactivated"),
    "HPV2": ("双价人乳头瘤病毒疫苗", "bivalent human papillomavirus vaccine"),
}
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
