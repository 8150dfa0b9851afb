"""Errors at the boundary become FHIR OperationOutcomes with the right 4xx — never a traceback."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error a client can act on. ``message`` is shown to people (zh / en); ``code`` is a FHIR
    issue-type code (invalid, not-found, forbidden, conflict, ...)."""

    status: int = 400
    code: str = "invalid"
    # When True the request's transaction is committed before the error is returned, so that what was
    # written for the record — an audited denial — is not rolled back with the rest.
    commit_session: bool = False

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 expression: list[str] | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.expression = expression
        self.headers = headers or {}


class BadRequest(ApiError):
    status, code = 400, "invalid"


class Unauthorized(ApiError):
    status, code = 401, "login"

    def __init__(self, message: str = "需要登录或令牌无效 / authentication required or token invalid", **kw) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(message, **kw)


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class AccessDenied(Forbidden):
    """A denied read of patient data: the denial has been audited and must be committed."""

    commit_session = True


class NotFound(ApiError):
    status, code = 404, "not-found"


class Gone(ApiError):
    status, code = 410, "deleted"


class Conflict(ApiError):
    status, code = 409, "conflict"


class PreconditionFailed(ApiError):
    status, code = 412, "conflict"


class Unprocessable(ApiError):
    status, code = 422, "processing"


def operation_outcome(message: str, *, code: str = "invalid", severity: str = "error",
                      expression: list[str] | None = None, diagnostics: str | None = None) -> dict[str, Any]:
    issue: dict[str, Any] = {"severity": severity, "code": code, "details": {"text": message}}
    if diagnostics:
        issue["diagnostics"] = diagnostics
    if expression:
        issue["expression"] = expression
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def outcome_from_issues(issues: list[tuple[str, str, list[str] | None]]) -> dict[str, Any]:
    """Several problems at once: [(code, message, expression)]."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [
            {"severity": "error", "code": c, "details": {"text": m}, **({"expression": e} if e else {})}
            for c, m, e in issues
        ],
    }
