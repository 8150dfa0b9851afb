"""CapabilityStatement for /fhir/R4/metadata, written from the registry: it lists what is served."""

from __future__ import annotations

from onetrip import __version__
from onetrip.interop.fhir.registry import resource_types, system_operations
from onetrip.kit.fhir import ResourceType


def interactions(rt: ResourceType) -> list[str]:
    """The FHIR interaction codes a type answers, from the handlers it declares."""
    out = []
    for code, present in (("read", rt.read), ("vread", rt.versioned), ("history-instance", rt.history),
                          ("search-type", rt.search), ("create", rt.create), ("update", rt.update),
                          ("delete", rt.delete)):
        if present:
            out.append(code)
    return out


def search_params(rt: ResourceType) -> list[tuple[str, str]]:
    seen: dict[str, str] = {}
    for p in (*rt.search_params, *(p for v in rt.variants for p in v.search_params)):
        seen.setdefault(p.name, p.type)
    return list(seen.items())


def resource_entry(rt: ResourceType) -> dict:
    versioning = "versioned" if rt.versioned else "no-version"
    entry = {
        "type": rt.name, "versioning": versioning, "readHistory": rt.versioned,
        "conditionalCreate": rt.conditional_create, "updateCreate": False,
        "interaction": [{"code": i} for i in interactions(rt)],
        "searchParam": [{"name": n, "type": t} for n, t in search_params(rt)],
    }
    if rt.doc:
        entry["documentation"] = rt.doc
    if rt.operations:
        entry["operation"] = [{"name": op.name, "definition": op.definition or f"urn:onetrip:op:{rt.name}-{op.name}"}
                              for op in rt.operations]
    return entry


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
            "resource": [resource_entry(rt) for rt in resource_types().values()],
            "operation": [{"name": op.name, "definition": op.definition or f"urn:onetrip:op:{op.name}"}
                          for op in system_operations()],
        }],
    }
