"""All queries on persons and patient records."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Row, Select, func, or_, select, text, union
from sqlalchemy.orm import Session

from onetrip.identity.schemas import SearchParams
from onetrip.kit.names import looks_like_pinyin, name_pinyin, normalize_name
from onetrip.persons.models import PatientRecord, Person

_MAX = "\U0010ffff"


def registered_residents(session: Session, organization_id: str, *, born_from: dt.date | None = None,
                         born_to: dt.date | None = None, sex: str | None = None, township: str | None = None,
                         person_id: str | None = None) -> list[Row]:
    """The living, unmerged residents with an active record at ``organization_id`` whose birth date is known and in
    [born_from, born_to], of ``sex`` (the person's code) and in ``township`` (街道/乡镇) when given — one row per
    person (its first record): person id, name, id_number, phone, birth_date, sex, street, record id, record
    phone. The eligible lists of campaigns (vaccination programmes, 两癌 screening) start here."""
    q = (select(Person.id, Person.name, Person.id_number, Person.phone, Person.birth_date, Person.sex, Person.street,
                PatientRecord.id, PatientRecord.phone)
         .join(PatientRecord, PatientRecord.person_id == Person.id)
         .where(PatientRecord.organization_id == organization_id, PatientRecord.active.is_(True),
                PatientRecord.deleted_at.is_(None), Person.merged_into_id.is_(None), Person.deceased.is_(False),
                Person.birth_date.is_not(None))
         .order_by(Person.birth_date, Person.id, PatientRecord.id))
    if born_from is not None:
        q = q.where(Person.birth_date >= born_from)
    if born_to is not None:
        q = q.where(Person.birth_date <= born_to)
    if sex is not None:
        q = q.where(Person.sex == sex)
    if township:
        q = q.where(Person.street == township)
    if person_id is not None:
        q = q.where(Person.id == person_id)
    seen: set[str] = set()
    out = []
    for row in session.execute(q):
        if row[0] not in seen:
            seen.add(row[0])
            out.append(row)
    return out


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


# --- master patient index --------------------------------------------------------------------------------


def mpi_candidates(session: Session, *, id_number: str | None, phone: str | None, pinyin_keys: list[str],
                   birth_date, sex: str | None, district: str | None, limit: int,
                   exclude_record_id: str | None = None) -> list[PatientRecord]:
    """Records sharing a blocking key (issue 3 §2): resident ID; phone; pinyin name + birth date; birth
    date + sex + district. One indexed query per key (ix_patient_record_id_number, _phone,
    _name_pinyin_birth, _birth_sex_district), each capped at ``limit``."""
    base = select(PatientRecord.id).where(PatientRecord.deleted_at.is_(None))
    if exclude_record_id:
        base = base.where(PatientRecord.id != exclude_record_id)
    queries = []
    if id_number:
        queries.append(base.where(PatientRecord.id_number == id_number))
    if phone:
        queries.append(base.where(PatientRecord.phone == phone))
    if pinyin_keys and birth_date:
        dates = [birth_date]
        if birth_date.day <= 12 and birth_date.day != birth_date.month:  # a day/month swap is a valid date
            dates.append(birth_date.replace(month=birth_date.day, day=birth_date.month))
        queries.append(base.where(PatientRecord.name_pinyin.in_(pinyin_keys), PatientRecord.birth_date.in_(dates)))
    if birth_date and sex and district:
        queries.append(base.where(PatientRecord.birth_date == birth_date, PatientRecord.sex == sex,
                                  PatientRecord.district == district))
    if not queries:
        return []
    # One round trip: each key's indexed lookup, capped, then the records themselves.
    ids = union(*(q.limit(limit).subquery().select() for q in queries)).subquery()
    return list(session.scalars(select(PatientRecord).where(PatientRecord.id.in_(select(ids.c.id)))))


def persons_by_ids(session: Session, ids: list[str]) -> dict[str, Person]:
    if not ids:
        return {}
    return {p.id: p for p in session.scalars(select(Person).where(Person.id.in_(ids)))}


def not_a_match_pairs(session: Session, person_id: str, others: list[str]) -> set[str]:
    """Of ``others``, the persons remembered as not the same resident as ``person_id``."""
    from onetrip.identity.models import NotAMatch

    if not others:
        return set()
    rows = session.execute(select(NotAMatch.person_id, NotAMatch.other_person_id).where(
        or_((NotAMatch.person_id == person_id) & NotAMatch.other_person_id.in_(others),
            (NotAMatch.other_person_id == person_id) & NotAMatch.person_id.in_(others))))
    return {b if a == person_id else a for a, b in rows}


def records_replaced_by(session: Session, record_id: str) -> list[str]:
    """Duplicate registrations merged into ``record_id`` (FHIR Patient.link replaces)."""
    return list(session.scalars(select(PatientRecord.id).where(PatientRecord.replaced_by_id == record_id)
                                .order_by(PatientRecord.id)))


def lock_blocking_keys(session: Session, keys: list[str]) -> None:
    """Serialise concurrent registrations that share a blocking key, so the second one sees the first
    and links to it (issue 3 acceptance: two institutions, one new person). PostgreSQL: transaction-scoped
    advisory locks, taken in sorted order (no deadlock). SQLite: writers are already serialised by
    BEGIN IMMEDIATE, nothing to do."""
    if session.get_bind().dialect.name != "postgresql":
        return
    if keys:  # one round trip; the ordered subquery fixes the locking order
        session.execute(text("SELECT count(pg_advisory_xact_lock(hashtext(k))) FROM "
                             "(SELECT k FROM unnest(CAST(:keys AS text[])) AS k ORDER BY k) AS ordered"),
                        {"keys": ["mpi:" + k for k in sorted(set(keys))]})
