"""All queries on persons and patient records."""

from __future__ import annotations

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from onetrip.identity.models import PatientRecord, Person
from onetrip.identity.schemas import SearchParams
from onetrip.kit.names import looks_like_pinyin, name_pinyin, normalize_name

_MAX = "\U0010ffff"


def person_by_id_number(session: Session, id_number: str) -> Person | None:
    return session.scalar(select(Person).where(Person.id_number == id_number))


def record_by_mrn(session: Session, organization_id: str, mrn: str) -> PatientRecord | None:
    return session.scalar(
        select(PatientRecord).where(PatientRecord.organization_id == organization_id, PatientRecord.mrn == mrn)
    )


def records_of_person(session: Session, person_id: str) -> list[PatientRecord]:
    return list(session.scalars(
        select(PatientRecord).where(PatientRecord.person_id == person_id).order_by(PatientRecord.created_at)
    ))


def _prefix(column, value: str):
    # A range on a byte-ordered column is an index range scan on both databases (see db.base.SearchKey).
    return (column >= value) & (column < value + _MAX)


def search_stmt(p: SearchParams, *, visible_orgs: list[str] | None, extra_person_ids=None) -> Select:
    """Records matching ``p``. ``visible_orgs`` None = all institutions; otherwise records held by those
    institutions or belonging to ``extra_person_ids`` (a list or a subquery of person ids the caller has
    access to elsewhere)."""
    stmt = select(PatientRecord).where(PatientRecord.deleted_at.is_(None))
    if p.identifier:
        ident = p.identifier.split("|")[-1].strip().upper()
        stmt = stmt.where(or_(PatientRecord.id_number == ident, PatientRecord.mrn == p.identifier.split("|")[-1]))
    if p.name:
        q = p.name.strip()
        if looks_like_pinyin(q):
            stmt = stmt.where(_prefix(PatientRecord.name_pinyin, q.replace(" ", "").lower()))
        else:
            q = normalize_name(q)
            stmt = stmt.where(_prefix(PatientRecord.name, q))
    if p.birth_date:
        stmt = stmt.where(PatientRecord.birth_date == p.birth_date)
    if p.birth_date_from:
        stmt = stmt.where(PatientRecord.birth_date >= p.birth_date_from)
    if p.birth_date_to:
        stmt = stmt.where(PatientRecord.birth_date <= p.birth_date_to)
    if p.sex:
        stmt = stmt.where(PatientRecord.sex == p.sex)
    if p.phone:
        stmt = stmt.where(PatientRecord.phone == p.phone)
    if p.organization_id:
        stmt = stmt.where(PatientRecord.organization_id == p.organization_id)
    if visible_orgs is not None:
        cond = PatientRecord.organization_id.in_(visible_orgs)
        if extra_person_ids is not None:
            cond = or_(cond, PatientRecord.person_id.in_(
                extra_person_ids if isinstance(extra_person_ids, list) else select(extra_person_ids.c[0])))
        stmt = stmt.where(cond)
    return stmt


def search(session: Session, p: SearchParams, *, visible_orgs: list[str] | None, extra_person_ids=None) -> tuple[list[PatientRecord], int | None]:
    stmt = search_stmt(p, visible_orgs=visible_orgs, extra_person_ids=extra_person_ids)
    rows = list(session.scalars(
        stmt.order_by(PatientRecord.name_pinyin, PatientRecord.id).offset(p.offset).limit(p.count + 1)
    ))
    return rows, None


def count(session: Session, p: SearchParams, *, visible_orgs: list[str] | None, extra_person_ids=None) -> int:
    stmt = search_stmt(p, visible_orgs=visible_orgs, extra_person_ids=extra_person_ids)
    return session.scalar(select(func.count()).select_from(stmt.subquery())) or 0


def persons_elsewhere(session: Session, p: SearchParams, exclude_orgs: list[str], limit: int = 20) -> list[str]:
    """Person ids whose records at *other* institutions match — used only to offer break-the-glass when
    a query is an exact resident ID, never to list other institutions' records."""
    stmt = search_stmt(p, visible_orgs=None, extra_person_ids=None).where(
        PatientRecord.organization_id.not_in(exclude_orgs)
    )
    return list(dict.fromkeys(r.person_id for r in session.scalars(stmt.limit(limit))))


def pinyin_of(name: str) -> str:
    return name_pinyin(name)
