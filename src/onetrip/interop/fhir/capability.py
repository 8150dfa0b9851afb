"""CapabilityStatement for /fhir/R4/metadata."""

from __future__ import annotations

from onetrip import __version__


def _res(rtype: str, interactions: list[str], params: list[tuple[str, str]], versioning: str = "versioned") -> dict:
    return {
        "type": rtype, "versioning": versioning, "readHistory": versioning == "versioned",
        "conditionalCreate": rtype in ("Patient", "Organization"), "updateCreate": False,
        "interaction": [{"code": i} for i in interactions],
        "searchParam": [{"name": n, "type": t} for n, t in params],
    }


def capability_statement(base: str) -> dict:
    return {
        "resourceType": "CapabilityStatement", "status": "active", "date": "2026-11-23", "kind": "instance",
        "software": {"name": "OneTrip", "version": __version__},
        "implementation": {"description": "OneTrip county medical-community platform", "url": base},
        "fhirVersion": "4.0.1", "format": ["application/fhir+json", "json"],
        "rest": [{
            "mode": "server",
            "interaction": [{"code": "transaction"}, {"code": "batch"}],
            "security": {
                "cors": False,
                "service": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                         "code": "SMART-on-FHIR"}]}],
                "description": "OAuth2 bearer tokens from POST /auth/token (password, client_credentials)",
            },
            "resource": [
                {**_res("Patient", ["read", "vread", "history-instance", "search-type", "create", "update",
                                    "delete"],
                        [("identifier", "token"), ("name", "string"), ("birthdate", "date"), ("gender", "token"),
                         ("phone", "token"), ("telecom", "token"), ("organization", "reference")]),
                 "operation": [{"name": "match", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-match"}]},
                _res("Organization", ["read", "vread", "history-instance", "search-type", "create", "update"],
                     [("name", "string"), ("identifier", "token"), ("type", "token"), ("partof", "reference")]),
                _res("Practitioner", ["read", "vread", "search-type", "create"],
                     [("name", "string"), ("organization", "reference")]),
                _res("Schedule", ["read", "search-type"], [("actor", "reference"), ("service-type", "token")],
                     versioning="no-version"),
                _res("Slot", ["read", "search-type"],
                     [("schedule", "reference"), ("service-type", "token"), ("start", "date"), ("status", "token")],
                     versioning="no-version"),
                {**_res("Appointment", ["read", "search-type", "create"],
                        [("patient", "reference"), ("date", "date"), ("status", "token")], versioning="no-version"),
                 "operation": [{"name": n, "definition": f"urn:onetrip:op:appointment-{n}"}
                               for n in ("find", "hold", "book")]},
                *[_res(t, ["read", "search-type", "create"],
                       [("patient", "reference"), ("code", "token"), ("date", "date"), ("identifier", "token")]
                       + ([("category", "token")] if t in ("DiagnosticReport", "Observation") else []),
                       versioning="no-version")
                  for t in ("DiagnosticReport", "Observation", "ImagingStudy", "ServiceRequest")],
                _res("Task", ["read", "search-type", "create", "update"],  # referral workflow (issue 6)
                     [("owner", "reference"), ("requester", "reference"), ("status", "token"),
                      ("patient", "reference"), ("business-status", "token"), ("focus", "reference"),
                      ("based-on", "reference"), ("priority", "token")], versioning="no-version"),
                _res("Encounter", ["read", "create"], [], versioning="no-version"),  # visits (issue 8)
                _res("Subscription", ["read", "search-type", "create", "delete"],  # rest-hook (issue 6 §6)
                     [("status", "token"), ("type", "token"), ("url", "uri"), ("criteria", "string"),
                      ("payload", "token")], versioning="no-version"),
                _res("AuditEvent", ["read", "search-type"],
                     [("patient", "reference"), ("date", "date"), ("agent", "token"), ("subtype", "token"),
                      ("outcome", "token")], versioning="no-version"),
            ],
        }],
    }
