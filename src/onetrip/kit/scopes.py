"""SMART on FHIR scopes (v2 ``.cruds`` and v1 ``.read``/``.write``/``.*``).

``user/Patient.rs`` lets a user read and search patients they may see; ``system/*.cruds`` lets a
system client do everything on every resource type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SCOPE_RE = re.compile(r"^(patient|user|system)/(\*|[A-Z][A-Za-z]+)\.(\*|read|write|[cruds]+)$")
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}


@dataclass(frozen=True)
class Scope:
    context: str  # patient | user | system
    resource: str  # a FHIR resource type or *
    permissions: frozenset[str]  # of c r u d s

    def allows(self, resource: str, permission: str) -> bool:
        return (self.resource in ("*", resource)) and permission in self.permissions


class ScopeError(ValueError):
    pass


def parse_scope(text: str) -> Scope:
    m = _SCOPE_RE.match(text)
    if not m:
        raise ScopeError(f"无效的授权范围 / invalid scope {text!r} (expected e.g. user/Patient.rs)")
    context, resource, perms = m.groups()
    perms = _V1.get(perms, perms)
    if len(set(perms)) != len(perms) or "".join(sorted(perms, key="cruds".index)) != perms:
        raise ScopeError(f"权限字母须按 c r u d s 顺序且不重复 / permissions must be in c,r,u,d,s order: {text!r}")
    return Scope(context, resource, frozenset(perms))


def parse_scopes(text: str | None) -> tuple[Scope, ...]:
    """Parse a space-separated list; non-SMART scopes such as ``openid`` are ignored."""
    out = []
    for part in (text or "").split():
        if "/" in part:
            out.append(parse_scope(part))
    return tuple(out)


def allows(scopes: tuple[Scope, ...], resource: str, permission: str) -> bool:
    return any(s.allows(resource, permission) for s in scopes)


# What each role may do, as SMART scopes. A token never gets more than its role allows.
_DIRECTORY = "user/Organization.rs user/Practitioner.rs"
_BOOKING = "user/Schedule.rs user/Slot.rs user/Appointment.crus user/ServiceRequest.crs"
# Encounter: visits (issue 8), recorded by the institution that saw the patient.
_RESULTS = "user/DiagnosticReport.rs user/Observation.rs user/ImagingStudy.rs user/Encounter.crs"
# Family-doctor work (issue 7): teams, contracts, registries/follow-ups/worklists, long prescriptions,
# devices, self-check readings (Observation create) and the family figures.
_FAMILY = ("user/CareTeam.crs user/Contract.crus user/CarePlan.crus user/MedicationRequest.crus user/Device.crs "
           "user/Observation.c user/MeasureReport.r")
_REFERRAL = "user/Task.crus"  # referral workflow (issue 6): actions on the referral Task
# issue 20: forecast, records; AEFI reports (AdverseEvent) are made by whoever sees the reaction
_IMMUNIZATION = "user/ImmunizationRecommendation.rs user/Immunization.rs user/AdverseEvent.crus"
# Maternal and child health (issue 21): pregnancy episodes, visit plans, measurements, risk flags, the birth form.
_MCH = ("user/EpisodeOfCare.crus user/CarePlan.crus user/Observation.crs user/Flag.crs "
        "user/QuestionnaireResponse.crus")
ROLE_SCOPES: dict[str, str] = {
    "admin": "user/*.cruds",
    "clinician": f"user/Patient.crus {_DIRECTORY} {_BOOKING} {_RESULTS} {_REFERRAL} {_IMMUNIZATION}",
    "nurse": f"user/Patient.crus {_DIRECTORY} {_BOOKING} {_RESULTS} {_REFERRAL} {_IMMUNIZATION}",
    "scheduler": f"user/Patient.crus {_DIRECTORY} user/Schedule.crus user/Slot.crs user/Appointment.crus "
                 "user/ServiceRequest.crs",
    "family_doctor": f"user/Patient.crus {_DIRECTORY} {_BOOKING} {_RESULTS} {_FAMILY} {_REFERRAL} "
                     f"{_IMMUNIZATION}",
    "vaccinator": f"user/Patient.crus {_DIRECTORY} {_IMMUNIZATION} user/Immunization.c",  # the desk records
    "mch_doctor": f"user/Patient.crus {_DIRECTORY} {_RESULTS} {_REFERRAL} {_IMMUNIZATION} {_MCH}",  # 妇幼保健医生
    # Bureau managers work with aggregates and the directory, not with individual records.
    # MeasureReport: indicator values and report forms (issue 8 cockpit); c/u: generate and replace the forms.
    "bureau_manager": "user/Organization.rs user/Practitioner.rs user/MeasureReport.crus",
    # Integration engineers run the HL7 v2 inbox (message view is masked); no patient records.
    "integration": "user/Organization.rs",
}


def scopes_for_roles(roles: list[str] | frozenset[str]) -> tuple[Scope, ...]:
    found: list[Scope] = []
    for r in roles:
        found.extend(parse_scopes(ROLE_SCOPES.get(r, "")))
    return tuple(found)


def narrow(requested: tuple[Scope, ...], granted: tuple[Scope, ...]) -> tuple[Scope, ...]:
    """The requested scopes cut down to what is granted (a token never exceeds its grant)."""
    out = []
    for req in requested:
        perms: set[str] = set()
        for g in granted:
            if g.context == req.context and g.resource in ("*", req.resource):
                perms |= g.permissions & req.permissions
        if perms:
            out.append(Scope(req.context, req.resource, frozenset(perms)))
    return tuple(out)


def format_scopes(scopes: tuple[Scope, ...]) -> str:
    return " ".join(f"{s.context}/{s.resource}.{''.join(p for p in 'cruds' if p in s.permissions)}" for s in scopes)
