"""Version snapshots behind vread and _history. Every service write of a FHIR-exposed row calls
``snapshot`` in the same transaction with the JSON its own FHIR mapper built, whichever door (FHIR, web,
CLI) the write came through; the FHIR façade reads them back (``get_version``, ``versions``)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from onetrip.kit.clock import utcnow
from onetrip.versions.models import ResourceVersion


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
