"""The OpenAPI document as the application really answers (issue 26, point 7).

FastAPI writes each operation's success response and a 422 ``HTTPValidationError`` that never happens
(api/errors turns validation errors into a 400 OperationOutcome). ``install(app)`` wraps ``app.openapi()``
once: an ``OperationOutcome`` component; on every operation the error answers any endpoint can give (bad
input, authentication, scopes and access, unknown ids, an undeclared method, conflicts and preconditions,
body limits, rate limits, a busy database) as OperationOutcomes; the FHIR façade's answers (success and
error) in ``application/fhir+json``; downloads in their own media types. A declared code that cannot occur
on some operation is harmless; an undeclared one that occurs is a lie.

The request side says what the handlers accept, so a schema-valid request is not refused: enums and patterns
for fields the handlers check against fixed lists (PARAMETERS, BODIES), "one of these fields" bodies
(WHOLE_BODIES), the OAuth2 token endpoint, FHIR bodies' resourceType (and the whole minimal resource where
every rule can be stated: FHIR_MINIMAL), If-Match / If-None-Exist syntax, a FHIR GET operation's query.
What JSON Schema cannot state (catalogue codes, check digits, date ranges) is listed with its reason in
tests/security/test_openapi_conformance.py (LOOSE_INPUT).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from onetrip.kit.clock import local_date, utcnow

FHIR_JSON = "application/fhir+json"
JSON = "application/json"
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
OUTCOME_REF = {"$ref": "#/components/schemas/OperationOutcome"}

OPERATION_OUTCOME = {
    "title": "OperationOutcome",
    "description": "FHIR R4 OperationOutcome: every error, in Chinese and English (details.text). The token "
                   "endpoint adds OAuth2's error and error_description (RFC 6749 §5.2).",
    "type": "object",
    "required": ["resourceType", "issue"],
    "properties": {
        "resourceType": {"type": "string", "enum": ["OperationOutcome"]},
        "issue": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["severity", "code"],
            "properties": {
                "severity": {"type": "string", "enum": ["fatal", "error", "warning", "information"]},
                "code": {"type": "string"},
                "details": {"type": "object", "properties": {"text": {"type": "string"}}},
                "diagnostics": {"type": "string"},
                "expression": {"type": "array", "items": {"type": "string"}},
            }}},
        "error": {"type": "string"},
        "error_description": {"type": "string"},
    },
}

_ALLOW = {"Allow": {"description": "the methods this path serves", "required": True, "schema": {"type": "string"}}}
_RETRY = {"Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "string"}}}
_BEARER = {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}}

# status → (description, response headers)
ERRORS: dict[int, tuple[str, dict]] = {
    400: ("请求无效 / invalid request: parameters or body fail validation or business rules", {}),
    401: ("需要登录 / authentication required or token invalid", _BEARER),
    403: ("无权限 / the token lacks the scope, or access to this patient's data is denied", {}),
    404: ("不存在 / no such resource (or not visible to the caller)", {}),
    405: ("方法不允许 / method not allowed on this path", _ALLOW),
    406: ("不可接受 / the requested format is not supported", {}),
    409: ("冲突 / conflicts with the current state (duplicate, concurrent change, no capacity)", {}),
    410: ("已删除 / the resource or version was deleted", {}),
    412: ("前提条件失败 / If-Match does not name the current version", {}),
    413: ("请求体过大 / request body too large", {}),
    415: ("媒体类型不支持 / unsupported Content-Type", {}),
    422: ("无法处理 / understood but cannot be processed (business rule)", {}),
    429: ("请求过多 / too many requests: retry later", _RETRY),
    503: ("服务繁忙 / database busy or unavailable: retry shortly", _RETRY),
}

# Success answers that are not JSON: path → media types (the schema of each is a byte string).
DOWNLOADS: dict[str, tuple[str, ...]] = {
    "/api/family/worklist.{fmt}": ("text/csv", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    "/api/reports/{report_id}": ("text/csv", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    "/api/coverage/export": ("text/csv", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    "/api/maternal-child-figures/export": ("text/csv",
                                           "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
}

# Constraints a handler enforces on a parameter declared as a plain string (so a schema-valid value was
# refused with a 400): (path, parameter) → what the handler accepts, cited from the code that checks it.
# "" is allowed where the handler reads an empty value as "not given" (``month or this_month``).
_MONTH = r"^((19[0-9]{2}|2[01][0-9]{2})-(0[1-9]|1[0-2]))?$"
_PERIOD = r"^((19[0-9]{2}|2[01][0-9]{2})-(0[1-9]|1[0-2]|Q[1-4]))?$"
PARAMETERS: dict[tuple[str, str], dict[str, Any]] = {
    ("/api/referrals/criteria", "direction"): {"enum": ["up", "down"]},  # referral.service.DIRECTIONS
    ("/api/referrals", "box"): {"enum": ["incoming", "outgoing"]},  # referral.repository.BOXES
    ("/api/referrals", "status"): {"enum": ["draft", "submitted", "accepted", "rejected", "scheduled", "arrived",
                                            "completed", "cancelled", "expired"]},  # referral.states.Status
    ("/api/family/figures", "level"): {"enum": ["institution", "team", "doctor"]},  # figures GROUP_COLUMNS
    ("/api/family/worklist", "only"): {"enum": ["due", "overdue", "lost"]},  # family.worklist.service
    ("/api/family/worklist.{fmt}", "only"): {"enum": ["due", "overdue", "lost"]},
    ("/api/family/worklist.{fmt}", "fmt"): {"enum": ["csv", "xlsx"]},
    ("/api/cockpit", "month"): {"pattern": _MONTH},  # analytics.cockpit.month_range
    ("/api/indicators/{indicator_id}/values", "period"): {"enum": ["day", "month", "quarter", "year"]},
    ("/api/indicators/{indicator_id}/values", "group_by"): {"enum": ["", "community", "organization", "department"]},
    ("/api/notify/deliveries", "status"): {"enum": ["", "pending", "delivered", "dead", "cancelled"]},
    ("/api/reports", "kind"): {"enum": ["monthly", "quarterly"]},  # analytics.reports
    ("/api/reports", "period"): {"pattern": _PERIOD},
}
# Constraints a handler enforces on a request-body field declared as a plain string: (component, field) → what
# the handler accepts, cited from the code that checks it (tests/security/test_openapi_conformance.py holds
# each list against the code's own enum, so the two cannot drift apart).
_HEADER = (r"^(?!\s*([Cc][Oo][Nn][Tt][Ee][Nn][Tt]-([Tt][Yy][Pp][Ee]|[Ll][Ee][Nn][Gg][Tt][Hh])|[Hh][Oo][Ss][Tt])\s*:)"
           r"(?!\s*[Xx]-[Oo][Nn][Ee][Tt][Rr][Ii][Pp]-)\s*[!-9;-~]+\s*:[ -~]*$")
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("DeviceIn", "kind"): {"enum": ["bp", "glucose", "both"]},  # family.readings.register_device
    ("EnrolIn", "programme"): {"enum": ["hypertension", "diabetes"]},  # family.rules.PROGRAMMES
    ("ResourceIn", "kind"): {"enum": ["device", "room", "clinic_session"]},  # scheduling.models.ResourceKind
    ("BookingIn", "channel"): {"enum": ["phone", "clinic", "kiosk", "web", "app"]},  # scheduling.models.Channel
    ("ItineraryBookIn", "channel"): {"enum": ["phone", "clinic", "kiosk", "web", "app"]},
    ("ContractIn", "package"): {"enum": ["basic", "personalised"]},  # family.models.Package
    ("ContractIn", "channel"): {"enum": ["clinic", "app"]},  # family.models.SigningChannel
    ("ContractIn", "declared_groups"): {"items": {"type": "string", "enum": [
        "pregnant", "disabled", "severe_mental_illness", "tuberculosis", "low_income"]}},  # family.rules
    ("FollowupIn", "method"): {"enum": ["clinic", "home", "phone"]},  # family.followups.service.METHODS
    ("FollowupIn", "adherence"): {"enum": ["regular", "intermittent", "none"]},  # ….ADHERENCE
    ("BreakGlassIn", "reason_code"): {"enum": ["ETREAT", "PATSFTY", "CLINTRCH"]},  # access.service
    # access.service.break_glass: at least 4 characters once stripped (R-A5: a real reason)
    ("BreakGlassIn", "reason_text"): {"pattern": r"\S[\s\S]{2,}\S"},
    ("ItineraryBookIn", "items"): {"minItems": 1},  # scheduling.service.book_itinerary: "nothing to book"
    # notify.service.check_endpoint: an http(s) URL with a host, ASCII, no spaces, no user:password@
    ("SubscriptionIn", "endpoint"): {"pattern": r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,4})?(/[!-~]*)?$"},
    # notify.service.check_event_types + rules.valid_pattern: blanks are dropped, at least one pattern remains
    ("SubscriptionIn", "event_types"): {
        "items": {"type": "string", "pattern": r"^\s*(\*|[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)*(\.\*)?)?\s*$"},
        "contains": {"type": "string", "pattern": r"\S"}},
    # notify.service.check_headers: "Name: value", ASCII printable, not a header OneTrip sets itself
    ("SubscriptionIn", "headers"): {"items": {"type": "string", "pattern": _HEADER}},
    # OAuth2 (RFC 6749 §4.3, §4.4): api/auth.token serves these two grants
    ("Body_token_auth_token_post", "grant_type"): {"enum": ["password", "client_credentials"]},
}
# The token endpoint as an OAuth2 scheme: a tool then knows that 400 invalid_grant / invalid_client from it
# refuses credentials, not the request's shape (the bearer tokens it issues authorise every other operation).
SECURITY_SCHEMES = {
    "OAuth2": {"type": "oauth2", "description": "POST /auth/token (form): password or client_credentials",
               "flows": {"password": {"tokenUrl": "/auth/token", "scopes": {}},
                         "clientCredentials": {"tokenUrl": "/auth/token", "scopes": {}}}},
}
# kit.fhir.parse_if_match: an empty value is no condition; otherwise (W/)"n" with ASCII digits, quotes optional.
IF_MATCH_PATTERN = r'^(\s*|\s*(W/)?"*[0-9]+"*\s*)$'
# kit.clock.MIN_SERVICE_DATE … MAX_SERVICE_DATE (1900-01-01 … 2200-12-31): JSON Schema bounds no dates,
# so every date is declared with the years the service accepts.
SERVICE_DATE_PATTERN = r"^(19[0-9]{2}|2[01][0-9]{2}|2200)-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"


def _bound_dates(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("format") == "date" and node.get("type") == "string":
            node.setdefault("pattern", SERVICE_DATE_PATTERN)
        for value in node.values():
            _bound_dates(value)
    elif isinstance(node, list):
        for value in node:
            _bound_dates(value)


def _constrain(path: str, operation: dict[str, Any]) -> None:
    for parameter in operation.get("parameters", []):
        extra = PARAMETERS.get((path, parameter.get("name")))
        if not extra:
            continue
        schema = parameter.setdefault("schema", {})
        options = schema.get("anyOf")
        if options:  # Optional[str] or Optional[list[str]]: constrain the strings, keep null
            for option in options:
                if option.get("type") == "string":
                    option.update(extra)
                elif option.get("type") == "array" and option.get("items", {}).get("type") == "string":
                    option["items"].update(extra)
        else:
            schema.update(extra)


# A body the handler accepts only with one of several optional fields: component → JSON Schema to add.
def _given(field: str, *, without: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"required": [field], "properties": {field: {"type": "string", "minLength": 1}}}
    if without:
        out["properties"][without] = {"type": "null"}
    return out


WHOLE_BODIES: dict[str, dict[str, Any]] = {
    # api.auth.token: the password grant needs username and password, client_credentials the client's id and
    # secret (RFC 6749 §4.3.2, §4.4.2); wrong ones are 400 invalid_grant / invalid_client (credentials, not shape)
    "Body_token_auth_token_post": {"oneOf": [
        {"required": ["grant_type", "username", "password"], "properties": {
            "grant_type": {"const": "password"}, "username": {"type": "string", "minLength": 1},
            "password": {"type": "string", "minLength": 1}}},
        {"required": ["grant_type", "client_id", "client_secret"], "properties": {
            "grant_type": {"const": "client_credentials"}, "client_id": {"type": "string", "minLength": 1},
            "client_secret": {"type": "string", "minLength": 1}}}]},
    # referral.endpoints.person_of: the patient by person_id or patient_record_id
    "ReferralIn": {"anyOf": [_given("person_id"), _given("patient_record_id")]},
    # family.readings.register_device: a home device names its resident, a kiosk its institution (not both)
    "DeviceIn": {"oneOf": [_given("person_id", without="organization_id"),
                           _given("organization_id", without="person_id")]},
}


def _constrain_bodies(components: dict[str, Any]) -> None:
    for (name, field), extra in BODIES.items():
        schema = components.get(name, {}).get("properties", {}).get(field)
        if schema is None:
            continue
        options = [o for o in schema.get("anyOf", [schema]) if o.get("type") != "null"]
        for option in options:
            for key, value in extra.items():
                if isinstance(value, dict) and isinstance(option.get(key), dict):
                    option[key].update(value)
                else:
                    option[key] = value
    for name, extra in WHOLE_BODIES.items():
        base = components.get(name)
        if base is None:
            continue
        for key, branches in extra.items():  # each branch whole: the model's fields and what the branch adds
            base[key] = [{"type": "object", "required": sorted({*base.get("required", ()), *b["required"]}),
                          "properties": {**base.get("properties", {}), **b["properties"]}} for b in branches]


# FHIR create bodies whose every rule JSON Schema can state: the elements the handler requires, and no others
# (kit.fhir.validate refuses unknown elements; the document describes the minimal resource, not all of R4).
_FHIR_TEXT = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"^[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"}
FHIR_MINIMAL: dict[str, dict[str, Any]] = {
    # registry.mapping.organization_from_fhir + registry.service.validate_org_fields: the local code
    # (letters, digits, -; at most 32), a name (at most 128) and the type from urn:onetrip:cs:org-type
    "Organization": {"required": ["identifier", "name", "type"], "properties": {
        "identifier": {"type": "array", "minItems": 1, "maxItems": 1, "items": {
            "type": "object", "required": ["system", "value"], "additionalProperties": False, "properties": {
                "system": {"type": "string", "enum": ["urn:onetrip:sid:org-code"]},
                "value": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9-]{0,31}$"}}}},
        "name": {**_FHIR_TEXT, "maxLength": 128},
        "type": {"type": "array", "minItems": 1, "maxItems": 1, "items": {
            "type": "object", "required": ["coding"], "additionalProperties": False, "properties": {
                "coding": {"type": "array", "minItems": 1, "maxItems": 1, "items": {
                    "type": "object", "required": ["system", "code"], "additionalProperties": False,
                    "properties": {"system": {"type": "string", "enum": ["urn:onetrip:cs:org-type"]},
                                   "code": {"type": "string", "enum": [  # registry.models.OrgType
                                       "bureau", "lead_hospital", "district_hospital", "branch_centre", "station",
                                       "public_health"]}}}}}}}}},
    # registry.mapping.practitioner_from_fhir: a name (kit.fhir.official_name: its text)
    "Practitioner": {"required": ["name"], "properties": {"name": {
        "type": "array", "minItems": 1, "maxItems": 1, "items": {
            "type": "object", "required": ["text"], "additionalProperties": False,
            "properties": {"text": _FHIR_TEXT}}}}},
}


# The If-None-Exist searches a minimal create answers (registry.fhir.create_organization: identifier and/or
# name, each once; empty = an unconditional create).
_CRITERION = "[^&=]+"
IF_NONE_EXIST: dict[str, str] = {
    "Organization": rf"^(|identifier={_CRITERION}|name={_CRITERION}|identifier={_CRITERION}&name={_CRITERION})$",
}


def _if_none_exist(rtype: str, operation: dict[str, Any]) -> None:
    for parameter in operation.get("parameters", []):
        if parameter.get("in") == "header" and parameter.get("name", "").lower() == "if-none-exist" \
                and rtype in IF_NONE_EXIST:
            parameter["schema"]["pattern"] = IF_NONE_EXIST[rtype]


# The resource a FHIR operation's POST body must be (the handlers' first check).
OPERATION_BODIES = {
    "/fhir/R4/Appointment/$find": "Parameters",  # scheduling.fhir.find
    "/fhir/R4/Appointment/$hold": "Appointment",  # scheduling.fhir (IHE ITI Scheduling)
    "/fhir/R4/Appointment/$book": "Appointment",
    "/fhir/R4/Patient/$match": "Parameters",  # identity.fhir.match
    "/fhir/R4/$immds-forecast": "Parameters",  # immunization.fhir
}


def _fhir_body(path: str, method: str, operation: dict[str, Any]) -> None:
    """A FHIR create, update or Bundle body: a JSON object whose resourceType is the type the URL names (the
    façade answers 400 for any other). Its further content rules are kit.fhir's validation."""
    parts = path.split("/")[3:]  # /fhir/R4/<Type>[/{rid}]
    if method == "post" and path in OPERATION_BODIES:
        rtype = OPERATION_BODIES[path]
    elif method == "post" and parts in ([], [""]):
        rtype = "Bundle"
    elif (method == "post" and len(parts) == 1 and parts[0][:1].isupper()) or \
            (method == "put" and len(parts) == 2 and parts[1] == "{rid}"):
        rtype = parts[0]
    else:
        return
    body = operation.get("requestBody", {})
    for media in body.get("content", {}).values():
        schema = media.setdefault("schema", {})
        if path in OPERATION_BODIES:  # the route also serves GET (no body) or takes Any: POST needs this one
            body["required"] = True
            media["schema"] = schema = {"title": schema.get("title", "Body"), "type": "object"}
        if schema.get("type") == "object":
            schema.setdefault("required", []).append("resourceType")
            schema.setdefault("properties", {})["resourceType"] = {"type": "string", "enum": [rtype]}
            minimal = FHIR_MINIMAL.get(rtype) if method == "post" and path.endswith(f"/{rtype}") else None
            if minimal:
                schema["required"] += minimal["required"]
                schema["properties"].update(minimal["properties"])
                schema["additionalProperties"] = False
                _if_none_exist(rtype, operation)
    for parameter in operation.get("parameters", []):
        if parameter.get("in") == "header" and parameter.get("name", "").lower() == "if-match":
            parameter["schema"]["pattern"] = IF_MATCH_PATTERN  # a string since _headers_not_null


def _headers_not_null(operation: dict[str, Any]) -> None:
    """An optional header is absent or a string: HTTP has no null header (FastAPI writes ``str | None`` as
    anyOf string/null, which a client may send as the text 'null')."""
    for parameter in operation.get("parameters", []):
        schema = parameter.get("schema", {})
        options = schema.get("anyOf")
        if parameter.get("in") != "header" or not options:
            continue
        strings = [o for o in options if o.get("type") != "null"]
        if len(strings) == 1 and len(strings) < len(options):
            parameter["schema"] = {**{k: v for k, v in schema.items() if k != "anyOf"}, **strings[0]}


def _not_after_this_year(operation: dict[str, Any]) -> None:
    """family.figures.service.compute_figures: a year in the future is a 400. The bound is this year when the
    document is built (once per process; a process running across New Year under-states the next year)."""
    for parameter in operation.get("parameters", []):
        if parameter.get("name") == "year":
            for option in parameter.get("schema", {}).get("anyOf", [parameter.get("schema", {})]):
                if option.get("type") == "integer":
                    option["maximum"] = min(option.get("maximum", 9999), local_date(utcnow()).year)


def _query(name: str, description: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": description, "schema": schema}


# FHIR operations read their parameters from the query string themselves (kit.fhir Operation): a GET operation
# declares them here, as the handler's check_params accepts them. path → parameters
# an empty value is "not given" (``raw.get("start")``)
_DATE = {"anyOf": [{"type": "string", "format": "date"}, {"type": "string", "maxLength": 0}]}
OPERATION_QUERIES: dict[str, list[dict[str, Any]]] = {
    "/fhir/R4/Appointment/$find": [  # scheduling.fhir.find
        _query("service-type", "exam codes, comma-separated (several with patient: an itinerary)",
               {"type": "string", "minLength": 1, "pattern": "[^,]"}, required=True),
        _query("start", "from this date (default now)", _DATE),
        _query("end", "to the end of this date (default start + 14 days)", _DATE),
        _query("patient", "Patient/{id}", {"type": "string"}),
        _query("organization", "Organization/{id}", {"type": "string"}),
        _query("purpose", "e.g. primary_care: may use reserved places", {"type": "string"}),
    ],
}


def _success(path: str, status: str, response: dict[str, Any]) -> None:
    if status == "204":
        response.pop("content", None)
        return
    if path in DOWNLOADS:
        response["content"] = {m: {"schema": {"type": "string", "format": "binary"}} for m in DOWNLOADS[path]}
        return
    if path.startswith("/fhir"):
        content = response.get("content") or {JSON: {"schema": {}}}
        schema = next(iter(content.values())).get("schema", {})
        response["content"] = {FHIR_JSON: {"schema": schema}}


def _error(media: str, status: int) -> dict[str, Any]:
    description, headers = ERRORS[status]
    out: dict[str, Any] = {"description": description, "content": {media: {"schema": OUTCOME_REF}}}
    if headers:
        out["headers"] = headers
    return out


def describe(schema: dict[str, Any]) -> dict[str, Any]:
    """Post-process FastAPI's document in place (and return it): see the module docstring."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["OperationOutcome"] = OPERATION_OUTCOME
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    _constrain_bodies(components)
    schema["components"].setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
    for path, item in schema.get("paths", {}).items():
        media = FHIR_JSON if path.startswith("/fhir") else JSON
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            _constrain(path, operation)
            _headers_not_null(operation)
            if path == "/api/family/figures":
                _not_after_this_year(operation)
            if path.startswith("/fhir"):
                _fhir_body(path, method, operation)
            if method == "get" and path in OPERATION_QUERIES:
                operation.pop("requestBody", None)  # a GET carries no body: the parameters are in the query
                operation["parameters"] = OPERATION_QUERIES[path]
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)  # FastAPI's HTTPValidationError: validation answers 400 here
            if path.startswith("/fhir") and method == "post" and "201" in responses and "200" not in responses:
                # a conditional create (If-None-Exist) that matched answers 200 with the existing resource
                responses["200"] = {"description": "已存在 / an existing resource matched If-None-Exist",
                                    "content": {FHIR_JSON: {"schema": {}}}}
            for status, response in responses.items():
                if status.startswith("2"):
                    _success(path, status, response)
            for status in ERRORS:
                responses.setdefault(str(status), _error(media, status))
    _bound_dates(schema)
    return schema


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` return the described document (built once, like FastAPI's own)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = describe(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
