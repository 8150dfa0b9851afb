"""Write a synthetic district (``onetrip.demo.synth``) into the database with SQLAlchemy Core bulk inserts.

What lands where:

* ``medical_community``, ``organization``, ``department``, ``practitioner``: the district's institutions
  and staff, parents before children so foreign keys hold on both databases.
* ``person``: one row per resident, from the district's resident register (the truth: real ID number,
  name, sex, birth date, phone, address).
* ``patient_record``: each institution's registration, as typed (names normalised to simplified
  characters with a pinyin key, IDs validated and 15-digit ones converted to 18). In this spine a record
  is linked only on an exact, valid ID number (``link_method = "id_number"``); a record whose ID is
  missing, invalid or not the resident's gets a new person row of its own (``link_method = "new"``), so
  the demo database holds the duplicate persons the master patient index has to find.

Everything is deterministic for a seed, ids included (uuid4-shaped, drawn from a seeded generator).
The caller owns the transaction (STYLE 2): nothing here commits; pass ``batch_commit`` to commit after
each batch when loading a million residents. Persons and records go in with ``db.bulk`` (``COPY`` on
PostgreSQL, several times faster than multi-row INSERT; executemany elsewhere).
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from onetrip.db.bulk import bulk_insert
from onetrip.demo.synth import District, generate_district
from onetrip.kit.identifiers import IdentifierError, parse_resident_id
from onetrip.kit.masking import mask_id_number
from onetrip.kit.names import name_pinyin, normalize_name
from onetrip.persons.models import PatientRecord, Person
from onetrip.registry.models import Department, MedicalCommunity, Organization, Practitioner

LOADED_AT = dt.datetime(2025, 6, 30, 8, 0, tzinfo=dt.UTC)
"""created_at / updated_at of every demo row, so two loads with one seed are identical."""

Progress = Callable[[str, int, int], None]


class DistrictAlreadyLoaded(RuntimeError):
    """The database already holds organisations with the demo district's codes."""


_ADDRESS = ("province", "city", "district", "street", "address_line")
_PERSON_COLUMNS = (
    "id", "id_number", "name", "name_pinyin", "sex", "birth_date", "phone", "deceased", *_ADDRESS,
    "created_at", "updated_at", "version_id",
)  # fmt: skip
_RECORD_COLUMNS = (
    "id", "person_id", "organization_id", "mrn", "id_number", "name", "name_pinyin", "sex", "birth_date",
    "phone", "active", "deleted_at", "link_method", *_ADDRESS, "created_at", "updated_at", "version_id",
)  # fmt: skip


class _Names:
    """normalize_name + name_pinyin, memoised: a district reuses the same names thousands of times."""

    def __init__(self) -> None:
        self.cache: dict[str, tuple[str, str]] = {}

    def __call__(self, raw: str) -> tuple[str, str]:
        hit = self.cache.get(raw)
        if hit is None:
            name = normalize_name(raw)
            hit = self.cache[raw] = (name, name_pinyin(name))
        return hit


def _valid_id(raw: str | None) -> str | None:
    if not raw:
        return None
    try:
        return parse_resident_id(raw).number
    except IdentifierError:
        return None


def load_district(
    session: Session,
    *,
    residents: int = 20_000,
    seed: int = 42,
    progress: Progress | None = None,
    batch_commit: Callable[[], None] | None = None,
    batch_size: int = 5_000,
) -> dict[str, Any]:
    """Generate the district for ``seed`` and insert it; return counts, organisation codes and a sample.

    ``progress(step, done, total)`` is called as work advances (steps: organizations, practitioners,
    residents); ``batch_commit()`` after every batch of person / record rows. Raises ``DistrictAlreadyLoaded`` if the district's organisations exist already.
    """
    district = generate_district(seed, residents)
    return load_generated(
        session, district, progress=progress, batch_commit=batch_commit, batch_size=batch_size,
    )  # fmt: skip


def load_generated(
    session: Session,
    district: District,
    *,
    progress: Progress | None = None,
    batch_commit: Callable[[], None] | None = None,
    batch_size: int = 5_000,
) -> dict[str, Any]:
    """Insert an already generated ``District`` (see ``load_district``)."""
    report = progress or (lambda _step, _done, _total: None)
    codes = [o.code for o in district.organizations]
    existing = session.execute(select(Organization.code).where(Organization.code.in_(codes)).limit(1)).first()
    if existing:
        raise DistrictAlreadyLoaded(
            f"机构 {existing[0]} 已存在，演示区已加载 / organisation {existing[0]} exists: "
            "the demo district is already loaded (use a fresh database)"
        )
    id_rng = random.Random(f"onetrip-demo:{district.seed}:ids")

    def new_id() -> str:
        return uuid.UUID(int=id_rng.getrandbits(128), version=4).hex

    counts, org_ids = _load_structure(session, district, new_id, report)
    sample: list[dict[str, Any]] = []
    counts.update(_load_people(session, district, new_id, org_ids, report, batch_commit, batch_size, sample))
    return {"seed": district.seed, **counts, "organization_codes": codes, "sample": sample}


def _stamp(row: dict[str, Any], versioned: bool = True) -> dict[str, Any]:
    row["created_at"] = row["updated_at"] = LOADED_AT
    if versioned:
        row["version_id"] = 1
    return row


def _load_structure(
    session: Session, d: District, new_id: Callable[[], str], report: Progress
) -> tuple[dict[str, Any], dict[str, str]]:
    names = _Names()
    community_ids = {c.code: new_id() for c in d.communities}
    session.execute(insert(MedicalCommunity.__table__), [
        _stamp({"id": community_ids[c.code], "code": c.code, "name": c.name}, versioned=False)
        for c in d.communities
    ])  # fmt: skip

    org_ids = {o.code: new_id() for o in d.organizations}
    session.execute(insert(Organization.__table__), [
        _stamp({
            "id": org_ids[o.code], "code": o.code, "name": o.name, "name_en": o.name_en,
            "org_type": o.org_type, "grade": o.grade, "uscc": o.uscc, "licence_no": o.licence_no,
            "community_id": community_ids.get(o.community_code), "parent_id": org_ids.get(o.parent_code),
            "address": o.address, "phone": o.phone, "active": True,
        })
        for o in d.organizations  # parents come first in District.organizations
    ])  # fmt: skip
    report("organizations", len(d.organizations), len(d.organizations))

    dept_ids = {(x.org_code, x.code): new_id() for x in d.departments}
    session.execute(insert(Department.__table__), [
        _stamp({
            "id": dept_ids[(x.org_code, x.code)], "organization_id": org_ids[x.org_code], "code": x.code,
            "name": x.name, "specialty": x.specialty,
        }, versioned=False)
        for x in d.departments
    ])  # fmt: skip

    rows = []
    for p in d.practitioners:
        name, pinyin = names(p.name)
        rows.append(_stamp({
            "id": new_id(), "organization_id": org_ids[p.org_code],
            "department_id": dept_ids.get((p.org_code, p.department_code)), "staff_no": p.staff_no,
            "name": name, "name_pinyin": pinyin, "sex": p.sex, "title": p.title,
            "qualification": p.qualification, "licence_no": p.licence_no, "practice_since": p.practice_since,
            "phone": p.phone, "active": True,
        }))  # fmt: skip
    session.execute(insert(Practitioner.__table__), rows)
    report("practitioners", len(rows), len(rows))
    counts = {
        "communities": len(d.communities), "organizations": len(d.organizations),
        "departments": len(d.departments), "practitioners": len(rows),
    }  # fmt: skip
    return counts, org_ids


def _load_people(
    session: Session,
    d: District,
    new_id: Callable[[], str],
    org_ids: dict[str, str],
    report: Progress,
    batch_commit: Callable[[], None] | None,
    batch_size: int,
    sample: list[dict[str, Any]],
) -> dict[str, int]:
    """Persons and records, streamed; ``sample`` receives the first five residents (ID masked)."""
    names = _Names()
    person_table, record_table = Person.__table__, PatientRecord.__table__
    persons: list[tuple] = []
    records: list[tuple] = []
    n_persons = n_records = n_linked = n_residents = 0
    t = LOADED_AT

    def flush() -> None:
        nonlocal n_persons, n_records
        n_persons += len(persons)
        n_records += len(records)
        bulk_insert(session, person_table, persons, columns=_PERSON_COLUMNS)
        bulk_insert(session, record_table, records, columns=_RECORD_COLUMNS)
        persons.clear()
        records.clear()
        if batch_commit:
            batch_commit()
        report("residents", n_residents, d.residents)

    report("residents", 0, d.residents)
    for r in d.iter_residents():
        if len(sample) < 5:
            sample.append({
                "name": r.name, "sex": r.sex, "birth_year": r.birth_date.year,
                "id_number": mask_id_number(r.id_number), "street": r.street,
            })  # fmt: skip
        person_id = new_id()
        name, pinyin = names(r.name)
        persons.append((
            person_id, r.id_number, name, pinyin, r.sex, r.birth_date, r.phone, False,
            r.province, r.city, r.district, r.street, r.address_line, t, t, 1,
        ))  # fmt: skip
        validated: dict[str, str | None] = {}  # one resident's records mostly carry the same ID
        for rec in r.records:
            raw = rec.id_number
            if raw is None:
                id_number = None
            elif raw in validated:
                id_number = validated[raw]
            else:
                id_number = validated[raw] = _valid_id(raw)
            name, pinyin = names(rec.name)
            address = (rec.province, rec.city, rec.district, rec.street, rec.address_line)
            if id_number is not None and id_number == r.id_number:
                owner, method = person_id, "id_number"
                n_linked += 1
            else:
                owner, method = new_id(), "new"
                persons.append((
                    owner, None, name, pinyin, rec.sex, rec.birth_date, rec.phone, False, *address, t, t, 1,
                ))  # fmt: skip
            records.append((
                new_id(), owner, org_ids[rec.org_code], rec.mrn, id_number, name, pinyin, rec.sex,
                rec.birth_date, rec.phone, True, None, method, *address, t, t, 1,
            ))  # fmt: skip
        n_residents += 1
        if len(records) >= batch_size or len(persons) >= batch_size:
            flush()
    flush()
    return {
        "residents": n_residents, "persons": n_persons, "duplicate_persons": n_persons - n_residents,
        "patient_records": n_records, "records_linked_by_id": n_linked,
    }  # fmt: skip
