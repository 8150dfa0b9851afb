"""Version snapshots behind vread and _history. Every service write of a FHIR-exposed row calls
``snapshot`` in the same transaction, whichever door (FHIR, web, CLI) the write came through."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from onetrip.interop.fhir.models import ResourceVersion
from onetrip.kit.clock import utcnow


def snapshot(session: Session, resource_type: str, resource_id: str, version_id: int, method: str,
             content: dict | None, person_id: str | None = None) -> None:
    existing = session.scalar(select(ResourceVersion).where(
        ResourceVersion.resource_type == resource_type, ResourceVersion.resource_id == resource_id,
        ResourceVersion.version_id == version_id))
    if existing is not None:  # the same version written twice in one transaction: keep the latest
        existing.content, existing.method, existing.last_updated = content, method, utcnow()
        return
    session.add(ResourceVersion(resource_type=resource_type, resource_id=resource_id, version_id=version_id,
                                method=method, last_updated=utcnow(), content=content, person_id=person_id))


def get_version(session: Session, resource_type: str, resource_id: str, version_id: int) -> ResourceVersion | None:
    return session.scalar(select(ResourceVersion).where(
        ResourceVersion.resource_type == resource_type, ResourceVersion.resource_id == resource_id,
        ResourceVersion.version_id == version_id))


def versions(session: Session, resource_type: str, resource_id: str, limit: int = 100) -> list[ResourceVersion]:
    return list(session.scalars(select(ResourceVersion).where(
        ResourceVersion.resource_type == resource_type, ResourceVersion.resource_id == resource_id)
        .order_by(ResourceVersion.version_id.desc()).limit(limit)))


def snapshot_patient(session: Session, rec, method: str) -> None:
    from onetrip.interop.fhir.mappers import patient_to_fhir
    from onetrip.registry.models import Organization

    org = session.get(Organization, rec.organization_id)
    content = None if method == "DELETE" else patient_to_fhir(rec, org)
    snapshot(session, "Patient", rec.id, rec.version_id, method, content, rec.person_id)


def snapshot_organization(session: Session, org, method: str) -> None:
    from onetrip.interop.fhir.mappers import organization_to_fhir

    snapshot(session, "Organization", org.id, org.version_id, method, organization_to_fhir(org))


def snapshot_practitioner(session: Session, pr, method: str) -> None:
    from onetrip.interop.fhir.mappers import practitioner_to_fhir
    from onetrip.registry.models import Organization

    org = session.get(Organization, pr.organization_id) if pr.organization_id else None
    snapshot(session, "Practitioner", pr.id, pr.version_id, method, practitioner_to_fhir(pr, org))
