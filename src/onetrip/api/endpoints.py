"""Plain REST endpoints that have no FHIR home: the caller, break-the-glass, consent, audit check."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from onetrip.access import service as access
from onetrip.api.deps import DB, CurrentPrincipal, require_scope
from onetrip.audit import service as audit
from onetrip.identity import service as identity
from onetrip.kit.errors import AccessDenied
from onetrip.kit.masking import mask_id_number, mask_phone

router = APIRouter(prefix="/api", tags=["api"])


@router.get("/me")
def me(principal: CurrentPrincipal) -> dict:
    """Who the token belongs to: kind, name, institution, roles and scopes."""
    return {"kind": principal.kind, "id": principal.id, "name": principal.name,
            "organization_id": principal.organization_id, "roles": sorted(principal.roles),
            "scope": principal.raw_scope}


class BreakGlassIn(BaseModel):
    person_id: str = Field(min_length=1, max_length=32)
    reason_code: str = Field(default="ETREAT", max_length=16)
    reason_text: str = Field(min_length=1, max_length=500)


@router.post("/break-glass", status_code=201)
def break_glass(body: BreakGlassIn, session: DB, principal: CurrentPrincipal) -> dict:
    """紧急访问 — open a time-limited emergency access to one person's records, with a reason.
    It is audited (DICOM 110113/110127, purpose ETREAT) and reviewed by an admin afterwards. A write: it
    changes who may read the person's records, so the token needs ``Patient.u``."""
    require_scope(principal, "Patient", "u")
    bg = access.start_break_glass(session, principal, body.person_id, body.reason_code, body.reason_text)
    return {"id": bg.id, "person_id": bg.person_id, "expires_at": bg.expires_at.isoformat()}


@router.post("/break-glass/{bg_id}/end")
def end_break_glass(bg_id: str, session: DB, principal: CurrentPrincipal) -> dict:
    """End an emergency access early (writes the 110138 stop event). Needs ``Patient.u``."""
    require_scope(principal, "Patient", "u")
    bg = access.end_break_glass(session, principal, bg_id)
    return {"id": bg.id, "ended_at": bg.ended_at.isoformat() if bg.ended_at else None}


class ConsentIn(BaseModel):
    person_id: str = Field(min_length=1, max_length=32)
    decision: str = Field(pattern="^(permit|deny)$")
    grantee_organization_id: str | None = Field(default=None, max_length=32)


@router.post("/consents", status_code=201)
def record_consent(body: ConsentIn, session: DB, principal: CurrentPrincipal) -> dict:
    """Record a resident's decision on sharing with one institution (or, without a grantee, with all).
    A write on what the patient's record shares: needs ``Patient.u``."""
    require_scope(principal, "Patient", "u")
    identity.read_person(session, principal, body.person_id)
    c = access.record_consent(session, principal, body.person_id, body.decision, body.grantee_organization_id)
    return {"id": c.id, "decision": c.decision}


@router.get("/persons/{person_id}")
def read_person(person_id: str, session: DB, principal: CurrentPrincipal) -> dict:
    """A resident with their records at every institution (through the access policy, audited).
    Identifiers are masked; the full values are in the FHIR Patient reads."""
    person, records = identity.read_person(session, principal, person_id)
    return {
        "id": person.id, "name": person.name, "sex": person.sex,
        "birth_date": person.birth_date.isoformat() if person.birth_date else None,
        "id_number": mask_id_number(person.id_number), "phone": mask_phone(person.phone),
        "records": [{"id": r.id, "organization_id": r.organization_id, "mrn": r.mrn} for r in records],
    }


@router.get("/audit/verify")
def verify_audit(session: DB, principal: CurrentPrincipal) -> dict:
    """Check the audit hash chain (admins). Lists rows that were edited or removed."""
    if not principal.is_admin:
        raise AccessDenied("只有管理员可以校验审计链 / only admins verify the audit chain")
    checked, problems, checkpoint = audit.verify_with_checkpoint(session)
    return {"checked": checked, "ok": not problems,
            "problems": [{"seq": p.seq, "problem": p.problem} for p in problems[:100]],
            "checkpoint": {"state": checkpoint.state, "taken_at": checkpoint.taken_at, "line": checkpoint.line,
                           "key_id": checkpoint.key_id, "chains": checkpoint.chains}}
