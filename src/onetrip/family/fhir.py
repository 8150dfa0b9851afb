"""FHIR R4 self-check readings, a variant of ``Observation`` (whose primary provider is records).

The façade (``onetrip.interop.fhir``) asks this variant first: an Observation that ``readings.is_self_check``
claims (BP panel 85354-9 with components 8480-6 / 8462-4, or a glucose code such as 2339-0 / 1558-6 marked
as measured by the patient or a device) is stored as a reading; every other Observation goes to the shared
results store, so there is one store per kind of data and one URL for clients. A read by id answers a
reading when the id is one, else the results store answers.
"""

from __future__ import annotations

from sqlalchemy import select

from onetrip.access import service as access
from onetrip.family import readings
from onetrip.family.models import Reading
from onetrip.identity.fhir import RESIDENT_ID_SYSTEM
from onetrip.kit.errors import BadRequest
from onetrip.kit.fhir import Context, Created, Variant, parse_datetime, ref_id, validate
from onetrip.persons.models import PatientRecord, Person


def _person_of(session, body: dict) -> str:
    subject = body.get("subject") or {}
    reference = subject.get("reference") or ""
    if reference.startswith("Patient/"):
        rec = session.get(PatientRecord, ref_id(subject, "Patient"))
        if rec is None or rec.deleted_at is not None:
            raise BadRequest("患者不存在 / the referenced Patient does not exist", code="not-found",
                             expression=["subject"])
        return rec.person_id
    ident = subject.get("identifier") or {}
    if ident.get("system") == RESIDENT_ID_SYSTEM and ident.get("value"):
        person = session.scalars(select(Person).where(Person.id_number == str(ident["value"]).upper())).first()
        if person is not None:
            return person.id
        raise BadRequest("未找到该居民 / no resident with this ID number", code="not-found", expression=["subject"])
    raise BadRequest("需要患者（Patient 引用或居民身份证号标识）/ subject must reference a Patient or carry the resident "
                     "ID identifier", expression=["subject"])


def create_reading(ctx: Context, body: dict) -> Created:
    """Self-check BP and glucose readings (kiosk, home device) are stored as readings and may raise an
    alert for the family-doctor team."""
    session, principal = ctx.session, ctx.principal
    validate("Observation", body)
    person_id = _person_of(session, body)
    if not principal.is_operator:
        access.require_read(session, principal, person_id, f"Patient/{person_id}")
    fields = readings.reading_from_fhir(body)
    effective = body.get("effectiveDateTime") or (body.get("effectivePeriod") or {}).get("start")
    at = parse_datetime(effective, "effective") if effective else None
    ident = next((i for i in body.get("identifier") or [] if i.get("system") and i.get("value")), None)
    source = "kiosk" if principal.organization_id else "fhir"
    r, created = readings.store_reading(session, principal, person_id=person_id, measured_at=at, source=source,
                                        source_system=ident["system"] if ident else None,
                                        source_id=ident["value"] if ident else None, resource=body, **fields)
    return Created(readings.reading_to_fhir(r), 201 if created else 200,
                   location=f"{ctx.base}/Observation/{r.id}/_history/1")


def read_reading(ctx: Context, rid: str) -> dict | None:
    """A self-check reading (access policy; audited), or None when the id is not a reading's."""
    r = ctx.session.get(Reading, rid)
    if r is None:
        return None
    access.require_read(ctx.session, ctx.principal, r.person_id, f"Observation/{r.id}")
    return readings.reading_to_fhir(r)


VARIANTS = {
    "Observation": Variant("self-check readings (family)", claims=readings.is_self_check, create=create_reading,
                           read=read_reading),
}
