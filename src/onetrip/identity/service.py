"""Registering, changing, reading and searching patient records — always through the access policy,
always audited. A record links to a person on an exact, valid resident ID number; otherwise the master
patient index (``identity.mpi``, issue 3) scores the candidates and links, queues a review, or creates a
new person."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from onetrip.access import service as access
from onetrip.audit import service as audit
from onetrip.identity import mapping as patient_fhir
from onetrip.identity import matching, mpi
from onetrip.identity import repository as repo
from onetrip.identity.schemas import PatientInput, SearchParams
from onetrip.kit.clock import utcnow
from onetrip.kit.errors import AccessDenied, BadRequest, Gone, NotFound, PreconditionFailed
from onetrip.kit.identifiers import IdentifierError, normalize_phone, normalize_sex, parse_resident_id
from onetrip.kit.masking import mask_id_number
from onetrip.kit.names import name_pinyin, normalize_name
from onetrip.kit.principal import Principal
from onetrip.outbox.service import record_event
from onetrip.persons.models import PatientRecord, Person
from onetrip.registry.models import Organization

ADDRESS_FIELDS = ("province", "city", "district", "street", "address_line")


@dataclass
class CleanPatient:
    name: str
    name_pinyin: str
    sex: str
    birth_date: object
    id_number: str | None
    phone: str | None


# The residents of an institution by birth date, sex and township (campaign eligible lists in the domains); not
# audited here: the caller audits the list it shows.
registered_residents = repo.registered_residents


def clean(data: PatientInput) -> CleanPatient:
    """Validate and normalise (R7.1 ID, R7.2 sex, R7.5 phone, simplified name + pinyin); every problem is
    reported at once with the field it concerns."""
    problems: list[tuple[str, str]] = []
    name = normalize_name(data.name)
    if not name:
        problems.append(("name", "姓名不能为空 / name is required"))
    try:
        sex = normalize_sex(data.sex)
    except IdentifierError as e:
        problems.append(("gender", str(e)))
        sex = "0"
    id_number = None
    birth = data.birth_date
    if data.id_number and data.id_number.strip():
        try:
            rid = parse_resident_id(data.id_number, expected_sex=sex if sex in ("1", "2") else None,
                                    expected_birth_date=data.birth_date)
            id_number = rid.number
            sex = rid.sex if sex in ("0", "9") else sex
            birth = birth or rid.birth_date
        except IdentifierError as e:
            problems.append(("identifier", str(e)))
    phone = None
    if data.phone and data.phone.strip():
        try:
            phone = normalize_phone(data.phone)
        except IdentifierError as e:
            problems.append(("telecom", str(e)))
    if problems:
        raise BadRequest("；".join(m for _, m in problems), expression=[f for f, _ in problems])
    return CleanPatient(name, name_pinyin(name), sex, birth, id_number, phone)


def _org_or_400(session: Session, organization_id: str) -> Organization:
    org = session.get(Organization, organization_id)
    if org is None:
        raise BadRequest(f"机构不存在 / unknown organization {organization_id!r}", expression=["managingOrganization"])
    return org


def _check_write(principal: Principal, organization_id: str) -> None:
    if principal.is_operator:
        return
    if principal.organization_id != organization_id:
        raise AccessDenied("只能登记或修改本机构的患者 / you can only register or change your own institution's patients")


def _features(c: CleanPatient, data: PatientInput) -> matching.Features:
    return matching.features(name=c.name, birth_date=c.birth_date, sex=c.sex, id_number=c.id_number,
                             phone=c.phone, district=data.district, street=data.street,
                             address_line=data.address_line)


def _link_person(session: Session, c: CleanPatient, data: PatientInput, current: Person | None,
                 match: mpi.OnlineMatch | None = None) -> tuple[Person, str]:
    if c.id_number:
        found = repo.person_by_id_number(session, c.id_number)
        if found is not None:
            return found, "id_number"
        if current is not None and current.id_number is None:
            current.id_number = c.id_number
            return current, "id_number"
    if current is not None and (c.id_number is None or current.id_number == c.id_number):
        return current, "new" if current.id_number is None else "id_number"
    if current is None and match is not None and match.decision == matching.LINK and match.person is not None:
        person = match.person
        if c.id_number and person.id_number is None:
            try:  # the ID is new to the registry (checked above); a concurrent writer may just have added it
                with session.begin_nested():
                    person.id_number = c.id_number
                    session.flush()
            except IntegrityError:
                session.refresh(person)
                found = repo.person_by_id_number(session, c.id_number)
                if found is not None:
                    return found, "id_number"
                raise
        return person, "mpi"
    person = Person(id_number=c.id_number, name=c.name, name_pinyin=c.name_pinyin, sex=c.sex,
                    birth_date=c.birth_date, phone=c.phone, **{f: getattr(data, f) for f in ADDRESS_FIELDS})
    if c.id_number is None:
        session.add(person)
        session.flush()
        return person, "new"
    # Two institutions registering the same new resident at the same moment: the unique index on the
    # ID number lets one insert win; the other links to the winner instead of failing.
    try:
        with session.begin_nested():
            session.add(person)
            session.flush()
    except IntegrityError:
        found = repo.person_by_id_number(session, c.id_number)
        if found is None:
            raise
        return found, "id_number"
    return person, "id_number"


def _fill_person(person: Person, c: CleanPatient, data: PatientInput) -> None:
    """A person keeps known values; gaps are filled from a newer registration."""
    if not person.phone and c.phone:
        person.phone = c.phone
    if not person.birth_date and c.birth_date:
        person.birth_date = c.birth_date
    if person.sex in ("0", "9") and c.sex in ("1", "2"):
        person.sex = c.sex
    for f in ADDRESS_FIELDS:
        if not getattr(person, f) and getattr(data, f):
            setattr(person, f, getattr(data, f))


def register(session: Session, principal: Principal, data: PatientInput) -> PatientRecord:
    """Register a resident at an institution (new MRN). 409 if the MRN is taken there."""
    _org_or_400(session, data.organization_id)
    _check_write(principal, data.organization_id)
    c = clean(data)
    if repo.record_by_mrn(session, data.organization_id, data.mrn) is not None:
        raise BadRequest(f"该机构已有此病案号 / MRN {data.mrn!r} already exists at this institution",
                         status=409, code="duplicate", expression=["identifier"])
    match = None
    if not (c.id_number and repo.person_by_id_number(session, c.id_number) is not None):
        match = mpi.match_online(session, _features(c, data))
    person, method = _link_person(session, c, data, None, match)
    _fill_person(person, c, data)
    rec = PatientRecord(person_id=person.id, organization_id=data.organization_id, mrn=data.mrn, name=c.name,
                        name_pinyin=c.name_pinyin, sex=c.sex, birth_date=c.birth_date, id_number=c.id_number,
                        phone=c.phone, active=data.active, link_method=method,
                        **{f: getattr(data, f) for f in ADDRESS_FIELDS})
    session.add(rec)
    session.flush()
    patient_fhir.snapshot_patient(session, rec, "POST")
    audit.record(session, principal, "create", person_ids=[person.id], what=[f"Patient/{rec.id}"])
    record_event(session, "patient.created", "Patient", rec.id,
                 {"organization_id": rec.organization_id, "link_method": method}, person_id=person.id)
    if method == "mpi" and match is not None:
        top = match.candidates[0]
        record_event(session, "person.linked", "Patient", rec.id,
                     {"record_id": rec.id, "to_person_id": person.id, "method": "mpi",
                      "match_weight": top.score.match_weight, "model": match.model_version}, person_id=person.id)
    elif match is not None and match.decision != matching.NEW:
        mpi.queue_reviews(session, rec, match, source="online")
    return rec


def update(session: Session, principal: Principal, record_id: str, data: PatientInput,
           expected_version: int | None = None) -> PatientRecord:
    rec = session.get(PatientRecord, record_id, with_for_update=True)
    if rec is None:
        raise NotFound("患者记录不存在 / patient record not found")
    if rec.deleted_at is not None:
        raise Gone("患者记录已删除 / patient record was deleted")
    _check_write(principal, rec.organization_id)
    if data.organization_id != rec.organization_id:
        raise BadRequest("不能把患者记录移到其他机构 / a record cannot move to another institution",
                         expression=["managingOrganization"])
    if expected_version is not None and expected_version != rec.version_id:
        raise PreconditionFailed(
            f"记录已被他人修改（当前版本 {rec.version_id}）/ the record changed since you read it "
            f"(now version {rec.version_id}, you sent {expected_version}): reload and retry")
    c = clean(data)
    if data.mrn != rec.mrn and repo.record_by_mrn(session, rec.organization_id, data.mrn) is not None:
        raise BadRequest(f"该机构已有此病案号 / MRN {data.mrn!r} already exists", status=409, code="duplicate")
    person = session.get(Person, rec.person_id)
    demographics_changed = (c.name, c.sex, c.birth_date, c.id_number, c.phone) != (
        rec.name, rec.sex, rec.birth_date, rec.id_number, rec.phone) or any(
        getattr(data, f) != getattr(rec, f) for f in ADDRESS_FIELDS)
    id_changed = c.id_number != rec.id_number
    if id_changed:
        person, rec.link_method = _link_person(session, c, data, person if c.id_number else None)
        rec.person_id = person.id
    _fill_person(person, c, data)
    rec.mrn, rec.name, rec.name_pinyin, rec.sex = data.mrn, c.name, c.name_pinyin, c.sex
    rec.birth_date, rec.id_number, rec.phone, rec.active = c.birth_date, c.id_number, c.phone, data.active
    for f in ADDRESS_FIELDS:
        setattr(rec, f, getattr(data, f))
    rec.updated_at = utcnow()
    session.flush()
    patient_fhir.snapshot_patient(session, rec, "PUT")
    audit.record(session, principal, "update", person_ids=[rec.person_id], what=[f"Patient/{rec.id}"])
    record_event(session, "patient.updated", "Patient", rec.id, {"version": rec.version_id}, person_id=rec.person_id)
    if demographics_changed and not (id_changed and rec.link_method == "id_number"):
        # Changed demographics may reveal a duplicate: queue it for review (never moved silently).
        match = mpi.match_online(session, _features(c, data), exclude_record_id=rec.id,
                                 exclude_person_id=rec.person_id)
        if match.decision != matching.NEW:
            mpi.queue_reviews(session, rec, match, source="update")
    return rec


def delete(session: Session, principal: Principal, record_id: str) -> PatientRecord:
    """Soft delete: the record leaves searches and reads answer 410; history and audit stay."""
    rec = session.get(PatientRecord, record_id, with_for_update=True)
    if rec is None:
        raise NotFound("患者记录不存在 / patient record not found")
    _check_write(principal, rec.organization_id)
    if rec.deleted_at is None:
        rec.deleted_at, rec.active = utcnow(), False
        session.flush()
        patient_fhir.snapshot_patient(session, rec, "DELETE")
        audit.record(session, principal, "delete", person_ids=[rec.person_id], what=[f"Patient/{rec.id}"])
        record_event(session, "patient.deleted", "Patient", rec.id, {}, person_id=rec.person_id)
    return rec


def read(session: Session, principal: Principal, record_id: str, *, subtype: str = "read") -> PatientRecord:
    """One audited read (or an audited denial → 403)."""
    rec = session.get(PatientRecord, record_id)
    if rec is None:
        raise NotFound("患者记录不存在 / patient record not found")
    if rec.organization_id == principal.organization_id or principal.is_operator:
        audit.record(session, principal, subtype, person_ids=[rec.person_id], what=[f"Patient/{rec.id}"])
    else:
        access.require_read(session, principal, rec.person_id, f"Patient/{rec.id}", subtype)
    if rec.deleted_at is not None:
        raise Gone("患者记录已删除 / patient record was deleted")
    # MPI merges: the FHIR view shows Patient.link replaces (replaced-by comes from the column itself).
    rec.replaces_ids = repo.records_replaced_by(session, rec.id)
    return rec


def read_person(session: Session, principal: Principal, person_id: str) -> tuple[Person, list[PatientRecord]]:
    """The person and every record of theirs — a cross-institution read, through the policy. A person
    merged into another (MPI) answers with the surviving person (check ``person.id``)."""
    person = session.get(Person, person_id)
    if person is None:
        raise NotFound("居民不存在 / person not found")
    if person.merged_into_id:
        person_id = mpi.surviving_person_id(session, person_id)
        person = session.get(Person, person_id)
    access.require_read(session, principal, person_id, f"Person/{person_id}")
    return person, [r for r in repo.records_of_person(session, person_id) if r.deleted_at is None]


@dataclass
class SearchResult:
    records: list[PatientRecord]
    has_more: bool
    hidden_person_ids: list[str]  # exact-ID matches held only elsewhere: offer break-the-glass


def search(session: Session, principal: Principal, p: SearchParams, *, query_text: str = "") -> SearchResult:
    """Records the caller may see; one audit event per patient on the page (BALP)."""
    hidden: list[str] = []
    if principal.is_operator:
        rows, _ = repo.search(session, p, visible_orgs=None)
    else:
        own = [principal.organization_id] if principal.organization_id else []
        if access.default_policy(session) == "permit":
            rows, _ = repo.search(session, p, visible_orgs=None)  # refusals are filtered out below
        else:
            rows, _ = repo.search(session, p, visible_orgs=own,
                                  extra_person_ids=access.granted_person_ids(session, principal))
        elsewhere = list({r.person_id for r in rows if r.organization_id not in own})
        if elsewhere:  # a grant found them; a refusal (consent deny) still wins
            allowed = access.decisions(session, principal, elsewhere)
            rows = [r for r in rows if r.organization_id in own or allowed[r.person_id].allowed]
        if p.identifier and not rows:
            hidden = repo.persons_elsewhere(session, p, own)
    has_more = len(rows) > p.count
    rows = rows[: p.count]
    if rows:
        audit.record(session, principal, "search-type", person_ids=[r.person_id for r in rows],
                     what=[f"Patient/{r.id}" for r in rows], query=query_text or _describe(p))
    else:
        audit.record(session, principal, "search-type", query=query_text or _describe(p),
                     detail={"results": 0, "hidden_matches": len(hidden)})
    return SearchResult(rows, has_more, hidden)


def _describe(p: SearchParams) -> str:
    parts = []
    for k, v in p.model_dump(exclude_none=True, exclude={"count", "offset"}).items():
        parts.append(f"{k}={mask_id_number(str(v)) if k == 'identifier' else v}")
    return "&".join(parts)


def person_records_by_ids(session: Session, ids: list[str]) -> list[PatientRecord]:
    return list(session.scalars(select(PatientRecord).where(PatientRecord.id.in_(ids))))
