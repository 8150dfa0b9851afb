"""The OpenAPI document as the application really answers (issue 26, point 7).

FastAPI writes each operation's success response and a 422 ``HTTPValidationError`` that never happens
(api/errors turns validation errors into a 400 OperationOutcome). ``install(app)`` wraps ``app.openapi()``
once: an ``OperationOutcome`` component; on every operation the error answers any endpoint can give (bad
input, authentication, scopes and access, unknown ids, an undeclared method, conflicts and preconditions,
body limits, rate limits, a busy database) as OperationOutcomes; the FHIR façade's answers (success and
error) in ``application/fhir+json``; downloads in their own media types. A declared code that cannot occur
on some operation is harmless; an undeclared one that occurs is a lie.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

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
    for path, item in schema.get("paths", {}).items():
        media = FHIR_JSON if path.startswith("/fhir") else JSON
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            _constrain(path, operation)
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
