"""Immunisation fixtures: the module's database with the schedule table seeded (as `onetrip db upgrade` does)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def schedule_seeded(db) -> int:
    from onetrip.immunization.service import seed_schedule

    with db.session() as s:
        added = seed_schedule(s)
        s.commit()
    return added
