"""The demo loader against both databases: counts match the generator, records link on valid IDs only,
and loading twice is refused with a clear message."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from onetrip.demo.loader import DistrictAlreadyLoaded, load_district
from onetrip.kit.identifiers import parse_resident_id
from onetrip.persons.models import PatientRecord, Person
from onetrip.registry.models import Organization


def test_load_small_district(db):
    steps: list[str] = []
    with db.session() as s:
        summary = load_district(s, residents=400, seed=7, progress=lambda step, done, total: steps.append(step),
                                batch_size=100, batch_commit=s.commit)
        s.commit()
    assert {"organizations", "practitioners", "residents"} <= set(steps)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(PatientRecord)) == summary["patient_records"]
        assert s.scalar(select(func.count()).select_from(Person)) == summary["persons"]
        assert s.scalar(select(func.count()).select_from(Organization)) == summary["organizations"]
        types = dict(s.execute(select(Organization.org_type, func.count()).group_by(Organization.org_type)).all())
        assert types["lead_hospital"] == 2 and types["branch_centre"] == 12
        assert types["lead_hospital"] + types["district_hospital"] == 6
        # Linked records carry a valid 18-character ID; the person has the same ID.
        rows = s.execute(select(PatientRecord.id_number, Person.id_number, PatientRecord.link_method)
                         .join(Person, Person.id == PatientRecord.person_id)).all()
        for rec_id, person_id_number, method in rows:
            if method == "id_number":
                assert rec_id == person_id_number and parse_resident_id(rec_id).number == rec_id
            else:
                assert rec_id is None
        assert summary["duplicate_persons"] > 0  # registration errors leave work for the MPI
        assert all("*" in r["id_number"] for r in summary["sample"])  # masked for printing
    with db.session() as s, pytest.raises(DistrictAlreadyLoaded, match="already loaded"):
        load_district(s, residents=10, seed=7)
