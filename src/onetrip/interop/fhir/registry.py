"""The registry: every FHIR resource type served, as the domains declare them, in one table.

A type has one primary provider (the domain whose ``RESOURCES`` declares it) and may have variants from
other domains (``VARIANTS``): records serves Observation and ServiceRequest; family's self-check readings
and referral's referrals are variants of them. The façade asks a type's variants first — a create body a
variant claims, a read by an id a variant knows, a search a variant claims — and the primary otherwise,
so no domain shadows another's routes or looks up another's endpoints.
"""

from __future__ import annotations

import dataclasses
from functools import cache

from onetrip.analytics import fhir as analytics_fhir
from onetrip.audit import fhir as audit_fhir
from onetrip.family import fhir as family_fhir
from onetrip.identity import fhir as identity_fhir
from onetrip.immunization import fhir as immunization_fhir
from onetrip.kit.fhir import Operation, ResourceType
from onetrip.notify import fhir as notify_fhir
from onetrip.records import fhir as records_fhir
from onetrip.referral import fhir as referral_fhir
from onetrip.registry import fhir as registry_fhir
from onetrip.scheduling import fhir as scheduling_fhir

# The order of the CapabilityStatement.
PROVIDERS = (identity_fhir, registry_fhir, scheduling_fhir, records_fhir, referral_fhir, analytics_fhir,
             notify_fhir, audit_fhir, immunization_fhir)
VARIANT_PROVIDERS = (family_fhir, referral_fhir)
# Server-level operations (``POST [base]/$immds-forecast``): each module's ``OPERATIONS``.
SYSTEM_OPERATION_PROVIDERS = (immunization_fhir,)


def build(providers=PROVIDERS, variant_providers=VARIANT_PROVIDERS) -> dict[str, ResourceType]:
    types: dict[str, ResourceType] = {}
    for module in providers:
        for rt in module.RESOURCES:
            if rt.name in types:
                raise ValueError(f"FHIR type {rt.name} declared twice (a second domain must declare a Variant)")
            types[rt.name] = rt
    for module in variant_providers:
        for name, variant in module.VARIANTS.items():
            if name not in types:
                raise ValueError(f"variant {variant.name!r} of {name}, which no domain serves")
            types[name] = dataclasses.replace(types[name], variants=(*types[name].variants, variant))
    return types


@cache
def resource_types() -> dict[str, ResourceType]:
    """Every type served, by name, in the CapabilityStatement's order."""
    return build()


def bundle_types() -> set[str]:
    return {name for name, rt in resource_types().items() if rt.bundle_rank is not None}


def system_operations(providers=SYSTEM_OPERATION_PROVIDERS) -> tuple[Operation, ...]:
    """Operations on the whole server, not on a type (routed as ``/fhir/R4/${name}``)."""
    ops = tuple(op for module in providers for op in module.OPERATIONS)
    names = [op.name for op in ops]
    if len(names) != len(set(names)):
        raise ValueError(f"a server-level FHIR operation is declared twice: {names}")
    return ops
