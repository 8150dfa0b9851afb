"""FHIR R4 for shared results: DiagnosticReport, Observation, ImagingStudy, ServiceRequest (create,
conditional create with ``If-None-Exist: identifier=system|value``, read, search), declared for the FHIR
façade (``onetrip.interop.fhir``), which also runs ``transaction`` and ``batch`` Bundles through these
creates; a transaction of one laboratory report with its observations, and a transaction's observations,
are stored in one go (``transaction_shortcut``, ``create_group``).

Incoming resources are validated with ``fhir.resources.R4B`` (``kit.fhir.validate``) and then mapped onto
the records service's input shapes. The stored resource is returned on read, with our ids.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import parse_qsl

from pydantic import ValidationError
from sqlalchemy import select

from onetrip.access import service as access
from onetrip.audit import service as audit
from onetrip.kit.clock import LOCAL_TZ
from onetrip.kit.errors import ApiError, BadRequest
from onetrip.kit.fhir import (
    Context,
    Created,
    Page,
    ResourceType,
    check_params,
    date_search,
    entry_error,
    entry_request,
    in_validated_bundle,
    instant,
    params,
    parse_datetime,
    ref_id,
    require_scope,
    resolve,
    validate,
)
from onetrip.kit.principal import Principal
from onetrip.persons.models import PatientRecord
from onetrip.records import observations, rules, service
from onetrip.records import repository as repo
from onetrip.records.models import DiagnosticReport, ImagingStudy, Observation, ServiceRequest
from onetrip.records.schemas import ImagingStudyIn, ObservationIn, ReportIn, ServiceRequestIn

RECOGNITION_MARK_EXT = "urn:onetrip:sd:recognition-mark"  # 互认标识 (RULES R1.4)
LOCAL_CODE_PREFIX = "urn:onetrip:cs:local"  # + ":" + organization code: an institution's own item codes
V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"
CHINA_TZ = LOCAL_TZ  # a time without an offset is local (Asia/Shanghai)
MODELS = {"DiagnosticReport": DiagnosticReport, "Observation": Observation, "ImagingStudy": ImagingStudy,
          "ServiceRequest": ServiceRequest}
SEARCH_PARAMS = {
    "DiagnosticReport": params(("patient", "reference"), ("subject", "reference"), ("category", "token"),
                               ("code", "token"), ("date", "date"), ("identifier", "token")),
    "Observation": params(("patient", "reference"), ("subject", "reference"), ("category", "token"),
                          ("code", "token"), ("date", "date"), ("identifier", "token")),
    "ImagingStudy": params(("patient", "reference"), ("subject", "reference"), ("modality", "token"),
                           ("date", "date"), ("identifier", "token")),
    "ServiceRequest": params(("patient", "reference"), ("subject", "reference"), ("code", "token"),
                             ("authored", "date"), ("identifier", "token")),
}
DATE_COLUMNS = {"DiagnosticReport": "effective_at", "Observation": "effective_at", "ImagingStudy": "started_at",
                "ServiceRequest": "authored_at"}
# The order a Bundle's entries are created in (after Patient entries): what is referenced exists first.
BUNDLE_RANK = {"ServiceRequest": 1, "Observation": 2, "ImagingStudy": 3, "DiagnosticReport": 4}
ACCEPTED = ("Observation", "DiagnosticReport")

# --- FHIR → service input --------------------------------------------------------------------------

_datetime = parse_datetime


def _identifier(body: dict) -> tuple[str, str]:
    for ident in body.get("identifier") or []:
        if ident.get("system") and ident.get("value"):
            return ident["system"], ident["value"]
    raise BadRequest("需要发送方标识（system 和 value）/ an identifier with system and value is required "
                     "(it makes re-sending idempotent)", expression=["identifier"])


def _codes(concept: dict | None) -> dict[str, str | None]:
    out: dict[str, str | None] = {"code_local": None, "code_system": None, "code": None, "display": None}
    concept = concept or {}
    for c in concept.get("coding") or []:
        system = c.get("system") or ""
        if system.startswith(LOCAL_CODE_PREFIX):
            out["code_local"] = out["code_local"] or c.get("code")
        elif out["code"] is None and c.get("code"):
            out["code_system"], out["code"] = system or None, c.get("code")
        out["display"] = out["display"] or c.get("display")
    out["display"] = concept.get("text") or out["display"]
    return out


def _org_ref(refs: list[dict] | None) -> str | None:
    for ref in refs or []:
        if isinstance(ref.get("reference"), str) and ref["reference"].split("/")[-2:-1] == ["Organization"]:
            return ref_id(ref, "Organization")
    return None


def _subject(session, body: dict, organization_id: str | None, principal: Principal) -> dict[str, Any]:
    """The patient (record id or MRN) and the issuing organization (explicit, the caller's, or the
    patient record's)."""
    subject = body.get("subject") or {}
    record_id = ref_id(subject, "Patient") if subject.get("reference") else None
    mrn = (subject.get("identifier") or {}).get("value")
    org = organization_id or principal.organization_id
    if org is None and record_id:
        rec = session.get(PatientRecord, record_id)
        org = rec.organization_id if rec else None
    if org is None:
        raise BadRequest("需要出具机构（performer）/ the issuing organization (performer) is required",
                         expression=["performer"])
    if not record_id and not mrn:
        raise BadRequest("需要患者（subject）/ subject (a Patient reference or its MRN identifier) is required",
                         expression=["subject"])
    return {"organization_id": org, "patient_record_id": record_id, "mrn": None if record_id else mrn}


def _build(cls, **kw):
    try:
        return cls(**kw)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors()[:5])
        raise BadRequest(f"资源内容无效 / invalid content: {problems}") from None


def _common(session, rtype: str, body: dict, org: str | None, principal: Principal) -> dict[str, Any]:
    if not in_validated_bundle():
        validate(rtype, body)
    system, value = _identifier(body)
    return {**_subject(session, body, org, principal), "identifier_system": system, "identifier_value": value,
            "status": body.get("status") or "unknown", "resource": body}


def _effective(body: dict) -> dt.datetime | None:
    return _datetime(body.get("effectiveDateTime") or (body.get("effectivePeriod") or {}).get("start"),
                     "effective")


def observation_in(session, body: dict, principal: Principal) -> ObservationIn:
    c = _common(session, "Observation", body, _org_ref(body.get("performer")), principal)
    q = body.get("valueQuantity") or {}
    rr = (body.get("referenceRange") or [{}])[0]
    interp = next((cd.get("code") for i in body.get("interpretation") or [] for cd in i.get("coding") or []), None)
    value_string = body.get("valueString")
    if value_string is None and body.get("valueCodeableConcept"):
        value_string = _codes(body["valueCodeableConcept"])["display"]
    return _build(ObservationIn, **c, **_codes(body.get("code")), effective_at=_effective(body),
                  value_quantity=q.get("value"), unit=q.get("unit") or q.get("code"), value_string=value_string,
                  reference_low=(rr.get("low") or {}).get("value"), reference_high=(rr.get("high") or {}).get("value"),
                  reference_text=rr.get("text"), interpretation=interp)


def report_in(session, body: dict, principal: Principal) -> ReportIn:
    c = _common(session, "DiagnosticReport", body, _org_ref(body.get("performer")), principal)
    cat_codes = [cd.get("code") or "" for cat in body.get("category") or [] for cd in cat.get("coding") or []]
    category, section = rules.classify(cat_codes)
    effective = _effective(body) or _datetime(body.get("issued"), "issued")
    if effective is None:
        raise BadRequest("报告需要检查/采样时间 / a DiagnosticReport needs effective[x] or issued",
                         expression=["effective"])
    mark = next((e.get("valueString") for e in body.get("extension") or [] if e.get("url") == RECOGNITION_MARK_EXT),
                None)
    results = [ref_id(r, "Observation") for r in body.get("result") or []]
    based_on = [ref_id(r, "ServiceRequest") for r in body.get("basedOn") or []]
    return _build(ReportIn, **c, **_codes(body.get("code")), category=category, section=section,
                  effective_at=effective, issued=_datetime(body.get("issued"), "issued"),
                  conclusion=body.get("conclusion"), recognition_mark=mark,
                  service_request_id=based_on[0] if based_on else None, result_ids=[r for r in results if r])


def imaging_study_in(session, body: dict, principal: Principal) -> ImagingStudyIn:
    c = _common(session, "ImagingStudy", body, None, principal)
    started = _datetime(body.get("started"), "started")
    if started is None:
        raise BadRequest("影像检查需要开始时间 / an ImagingStudy needs started", expression=["started"])
    accession = next((i.get("value") for i in body.get("identifier") or []
                      if any(cd.get("code") == "ACSN" for cd in (i.get("type") or {}).get("coding") or [])), None)
    modality = next((m.get("code") for m in body.get("modality") or []), None)
    return _build(ImagingStudyIn, **c, **_codes((body.get("procedureCode") or [None])[0]), started_at=started,
                  modality=modality, series_count=body.get("numberOfSeries"),
                  instance_count=body.get("numberOfInstances"), accession=accession)


def service_request_in(session, body: dict, principal: Principal) -> ServiceRequestIn:
    org = _org_ref([body["requester"]] if body.get("requester") else [])
    c = _common(session, "ServiceRequest", body, org, principal)
    return _build(ServiceRequestIn, **c, **_codes(body.get("code")), intent=body.get("intent") or "order",
                  authored_at=_datetime(body.get("authoredOn"), "authoredOn"))


_INGEST = {
    "DiagnosticReport": (report_in, service.ingest_report),
    "Observation": (observation_in, observations.store_one),
    "ImagingStudy": (imaging_study_in, service.ingest_imaging_study),
    "ServiceRequest": (service_request_in, service.ingest_service_request),
}


# --- stored row → FHIR -----------------------------------------------------------------------------

def _iso(value: dt.datetime | None) -> str | None:
    return instant(value) if value else None


def to_fhir(session, row) -> dict:
    """The stored resource with our ids; rows that did not come as FHIR (HL7 v2) get the core fields."""
    rtype = type(row).__name__
    # A shallow copy: only top-level keys are set below, and nested values are read-only here and in
    # every caller (they serialise the result).
    out = dict(row.resource) if row.resource else {}
    out.update({"resourceType": rtype, "id": row.id,
                "meta": {"versionId": "1", "lastUpdated": _iso(row.updated_at)},
                "subject": {"reference": f"Patient/{row.patient_record_id}"}})
    out.setdefault("status", row.status)
    out.setdefault("identifier", [{"system": row.identifier_system, "value": row.identifier_value}])
    codings = [c for c in ({"system": row.code_system, "code": row.code} if row.code else None,
                           {"system": LOCAL_CODE_PREFIX, "code": row.code_local} if row.code_local else None) if c]
    concept = {**({"coding": codings} if codings else {}), **({"text": row.display} if row.display else {})}
    if rtype == "DiagnosticReport":
        out.setdefault("code", concept or {"text": "unknown"})
        out.setdefault("effectiveDateTime", _iso(row.effective_at))
        if row.issued:
            out.setdefault("issued", _iso(row.issued))
        if row.conclusion:
            out.setdefault("conclusion", row.conclusion)
        if row.recognition_mark and "extension" not in out:
            out["extension"] = [{"url": RECOGNITION_MARK_EXT, "valueString": row.recognition_mark}]
        out.setdefault("performer", [{"reference": f"Organization/{row.organization_id}"}])
        obs = repo.observations_of_report(session, row.id)
        if obs:
            out["result"] = [{"reference": f"Observation/{o.id}"} for o in obs]
    elif rtype == "Observation":
        out.setdefault("code", concept or {"text": "unknown"})
        out.setdefault("effectiveDateTime", _iso(row.effective_at))
        has_value = any(k.startswith("value") for k in out)
        if not has_value and row.value_quantity is not None:
            out["valueQuantity"] = {"value": row.value_quantity, **({"unit": row.unit} if row.unit else {})}
        elif not has_value and row.value_string:
            out["valueString"] = row.value_string
        out.setdefault("performer", [{"reference": f"Organization/{row.organization_id}"}])
    elif rtype == "ImagingStudy":
        out.setdefault("started", _iso(row.started_at))
        if row.modality:
            out.setdefault("modality", [{"system": "http://dicom.nema.org/resources/ontology/DCM",
                                         "code": row.modality}])
        for key, value in (("numberOfSeries", row.series_count), ("numberOfInstances", row.instance_count)):
            if value is not None:
                out.setdefault(key, value)
    else:
        out.setdefault("intent", row.intent)
        if concept:
            out.setdefault("code", concept)
    return out


def fhir_results(session, items) -> list[dict]:
    """The FHIR resources of timeline items (``records.schemas.TimelineItem``): each DiagnosticReport
    followed by its Observations, each ImagingStudy; items whose row is gone are left out."""
    out: list[dict] = []
    for item in items:
        model = DiagnosticReport if item.resource_type == "DiagnosticReport" else ImagingStudy
        row = session.get(model, item.id)
        if row is None:
            continue
        out.append(to_fhir(session, row))
        if model is DiagnosticReport:
            out += [to_fhir(session, o) for o in repo.observations_of_report(session, row.id)]
    return out


# --- create / conditional create (shared by single creates and bundles) ---------------------------

def _if_none_exist(query: str, rtype: str) -> tuple[str, str]:
    raw = check_params(parse_qsl(query, keep_blank_values=True), {"identifier"}, rtype)
    system, sep, value = (raw.get("identifier") or "").partition("|")
    if not sep or not system or not value:
        raise BadRequest("If-None-Exist 须为 identifier=system|value / If-None-Exist must be "
                         "identifier=system|value", code="not-supported")
    return system, value


def _minimal(row) -> dict:
    """What a response entry needs of a stored row when the client asked for ``Prefer: return=minimal``:
    its type, id and version (for the Location), not the resource."""
    return {"resourceType": type(row).__name__, "id": row.id, "meta": {"versionId": "1"}}


def create(session, principal: Principal, rtype: str, body: Any, if_none_exist: str | None, *,
           minimal: bool = False) -> tuple[int, dict]:
    """Create one resource (or find it): (HTTP status, resource). ``minimal``: only its type, id and
    version are returned (``Prefer: return=minimal`` in a Bundle). The façade has checked the scope."""
    to_input, ingest = _INGEST[rtype]
    data = to_input(session, body, principal)
    if if_none_exist:
        system, value = _if_none_exist(if_none_exist, rtype)
        found = repo.by_identifier(session, MODELS[rtype], data.organization_id, system, value)
        if found is not None:
            return 200, _minimal(found) if minimal else to_fhir(session, found)
    stored = ingest(session, principal, data)
    return (201 if stored.created else 200), _minimal(stored.row) if minimal else to_fhir(session, stored.row)


def report_with_results(ctx: Context, entries: list[dict], ids: dict[str, str]) -> list[tuple[int, int, dict]] | None:
    """What a laboratory sends — one DiagnosticReport and the Observation entries its ``result`` lists, for
    the same subject — stored report first, its observations then inserted with the report's id (no
    UPDATE of every observation to link it, one audit call, one patient look-up): the same checks, in the
    same order, the same stored rows and the same outcome as entry by entry. None (nothing written) when
    the bundle is of another shape or an entry is invalid: the entry-by-entry path then finds the error."""
    session, principal, minimal = ctx.session, ctx.principal, ctx.minimal
    kinds = [(e.get("resource") or {}).get("resourceType") if isinstance(e, dict) else None for e in entries]
    if kinds.count("DiagnosticReport") != 1 or any(k not in ("Observation", "DiagnosticReport") for k in kinds):
        return None
    report_i = kinds.index("DiagnosticReport")
    obs_idx = [i for i, k in enumerate(kinds) if k == "Observation"]
    urls = [entries[i].get("fullUrl") for i in obs_idx]
    report_body = entries[report_i]["resource"]
    results = report_body.get("result")
    if (not obs_idx or any((e.get("request") or {}).get("ifNoneExist") for e in entries)
            or not all(isinstance(u, str) and u for u in urls) or len(set(urls)) != len(urls)
            or not isinstance(results, list) or not all(isinstance(r, dict) for r in results)
            or sorted(str(r.get("reference")) for r in results) != sorted(urls)
            or _mentions([entries[i]["resource"] for i in obs_idx], [*urls, entries[report_i].get("fullUrl")])):
        return None
    try:
        datas = []
        for i in obs_idx:
            rtype, resource, _ = entry_request(i, entries[i], ACCEPTED)
            require_scope(principal, rtype, "c")
            datas.append(observation_in(session, resolve(resource, ids), principal))
        entry_request(report_i, entries[report_i], ACCEPTED)
        subject = _subject(session, report_body, _org_ref(report_body.get("performer")), principal)
    except ApiError:
        return None
    key = (subject["organization_id"], subject["patient_record_id"], subject["mrn"])
    if any((d.organization_id, d.patient_record_id, d.mrn) != key or d.effective_at is None or d.report_id
           or (d.value_quantity is None and not d.value_string) for d in datas):
        return None  # an observation the report would not take as its own as it is (another subject ...)
    try:
        planned = observations.plan(session, principal, datas)
    except ApiError as e:
        raise entry_error(obs_idx[getattr(e, "item_index", 0)], e) from None
    for i, row_id in zip(obs_idx, planned.ids, strict=True):
        ids[entries[i]["fullUrl"]] = f"Observation/{row_id}"
    try:
        require_scope(principal, "DiagnosticReport", "c")
        data = report_in(session, resolve(report_body, ids), principal)
        record = planned.records.get((data.organization_id, data.mrn)) if data.mrn else None
        if record is not None:  # the record the observations were checked against: no second look-up
            data = data.model_copy(update={"patient_record_id": record.id, "mrn": None})
        stored = service.ingest_report(session, principal, data, planned)
    except ApiError as e:
        raise entry_error(report_i, e) from None
    assert planned.stored is not None
    out = []
    for i, s in zip(obs_idx, planned.stored, strict=True):
        ids[entries[i]["fullUrl"]] = f"Observation/{s.row.id}"
        out.append((i, 201 if s.created else 200, _minimal(s.row) if minimal else to_fhir(session, s.row)))
    report = stored.row
    if entries[report_i].get("fullUrl"):
        ids[entries[report_i]["fullUrl"]] = f"DiagnosticReport/{report.id}"
    out.append((report_i, 201 if stored.created else 200, _minimal(report) if minimal else to_fhir(session, report)))
    return out


def _mentions(resources: list, urls: list) -> bool:
    text = json.dumps(resources)
    return any(isinstance(u, str) and json.dumps(u) in text for u in urls)


def observations_together(ctx: Context, entries: list[dict], indexes: list[int], ids: dict[str, str],
                          keep: list) -> list[tuple[int, int, dict]]:
    """A transaction's Observation entries (no ``ifNoneExist``) in one go; the same outcome, and the same
    first failing entry, as creating them one after another. ``keep`` holds the rows for the rest of the
    Bundle (the report entries after them find them in the session's identity map)."""
    session, principal, minimal = ctx.session, ctx.principal, ctx.minimal
    datas, failed = [], None
    for i in indexes:
        try:
            rtype, resource, _ = entry_request(i, entries[i], ACCEPTED)
            require_scope(principal, rtype, "c")
            datas.append(observation_in(session, resolve(resource, ids), principal))
        except ApiError as e:
            failed = (i, e)  # the entries before it are stored first: one of them may fail earlier
            break
    try:
        stored = observations.store(session, principal, datas)
    except ApiError as e:
        raise entry_error(indexes[getattr(e, "item_index", 0)], e) from None
    if failed is not None:
        raise entry_error(*failed) from None
    keep.extend(s.row for s in stored)
    return [(i, 201 if s.created else 200, _minimal(s.row) if minimal else to_fhir(session, s.row))
            for i, s in zip(indexes, stored, strict=True)]


# --- search --------------------------------------------------------------------------------------

def _date_condition(column, value: str, name: str):
    """Year, month, day or dateTime precision with the FHIR prefixes (``onetrip.kit.fhir.date_search``)."""
    return date_search(value, name).condition(column)


def search(session, principal: Principal, rtype: str, raw: dict[str, str], query_text: str, count: int,
           offset: int) -> tuple[list, bool]:
    model = MODELS[rtype]
    q = select(model)
    patient = raw.get("patient") or raw.get("subject")
    if patient:
        rec = session.get(PatientRecord, patient.split("/")[-1])
        if rec is None:
            return [], False
        access.require_read(session, principal, rec.person_id, f"{rtype}?{query_text}", subtype="search-type")
        q = q.where(model.person_id.in_(repo.merged_person_ids(session, rec.person_id)))  # MPI merges
    elif not principal.is_operator:
        # Without a patient a caller sees its own institution's results only.
        q = q.where(model.organization_id == principal.organization_id)
    if raw.get("identifier"):
        system, sep, value = raw["identifier"].partition("|")
        q = q.where(model.identifier_system == system, model.identifier_value == value) if sep else q.where(
            model.identifier_value == system)
    if raw.get("code"):
        system, sep, code = raw["code"].partition("|")
        code = code if sep else system
        q = q.where((model.code == code) | (model.code_local == code))
    if raw.get("category"):
        category, section = rules.classify([raw["category"]])
        word = raw["category"].lower() if category == "other" else category
        target = model if rtype == "DiagnosticReport" else DiagnosticReport
        if rtype == "Observation":
            q = q.join(DiagnosticReport, Observation.report_id == DiagnosticReport.id)
        q = q.where(target.section == section) if section else q.where(
            target.category == ("lab" if word == "laboratory" else word))
    if raw.get("modality"):
        q = q.where(ImagingStudy.modality == raw["modality"].split("|")[-1])
    date_column = getattr(model, DATE_COLUMNS[rtype])
    for name in ("date", "authored"):
        if raw.get(name):
            q = q.where(_date_condition(date_column, raw[name], name))
    if count == 0:
        return [], False
    rows = list(session.scalars(q.order_by(date_column.desc(), model.id).offset(offset).limit(count + 1)))
    has_more = len(rows) > count
    rows = rows[:count]
    if rows and not patient:
        audit.record(session, principal, "search-type", person_ids=[r.person_id for r in rows],
                     what=[f"{rtype}/{r.id}" for r in rows], query=query_text)
    return rows, has_more

# --- declarations -------------------------------------------------------------------------------

def _resource_type(rtype: str) -> ResourceType:
    model = MODELS[rtype]

    def create_one(ctx: Context, body: dict) -> Created:
        status, out = create(ctx.session, ctx.principal, rtype, body, ctx.if_none_exist, minimal=ctx.minimal)
        return Created(out, status)

    def read_one(ctx: Context, rid: str) -> dict:
        return to_fhir(ctx.session, service.read(ctx.session, ctx.principal, model, rid))

    def search_type(ctx: Context, raw: dict[str, str], count: int, offset: int) -> Page:
        rows, has_more = search(ctx.session, ctx.principal, rtype, raw, ctx.query, count, offset)
        return Page([to_fhir(ctx.session, r) for r in rows], has_more)

    create_one.__doc__ = (f"Create a {rtype} (idempotent on its first identifier at the issuing institution; "
                          "``If-None-Exist: identifier=system|value`` for a conditional create).")
    read_one.__doc__ = f"Read a {rtype} (access policy; audited)."
    search_type.__doc__ = (f"Search {rtype}: {', '.join(sorted(p.name for p in SEARCH_PARAMS[rtype]))}, "
                           "_count, _offset.")
    return ResourceType(
        rtype, read=read_one, search=search_type, search_params=SEARCH_PARAMS[rtype], create=create_one,
        conditional_create=True, bundle_rank=BUNDLE_RANK[rtype], doc=f"Shared results: {rtype}.",
        create_group=observations_together if rtype == "Observation" else None,
        transaction_shortcut=report_with_results if rtype == "DiagnosticReport" else None)


RESOURCES = [_resource_type(t) for t in MODELS]
