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


@pytest.fixture(scope="module")
def vac(client, db, world, schedule_seeded) -> dict[str, str]:
    """A vaccinator of clinic A (role vaccinator: Immunization.crs): the desk's user."""
    from onetrip.auth.service import create_user
    from tests.factories import PASSWORD, auth, token

    with db.session() as s:
        create_user(s, f"vac{world.org_a_code}", PASSWORD, ["vaccinator"], "接种员甲", world.org_a)
        s.commit()
    return auth(token(client, f"vac{world.org_a_code}"))


@pytest.fixture(scope="module")
def doc(client, world, schedule_seeded) -> dict[str, str]:
    """A clinician of hospital A: reads immunisation data, records no dose."""
    from tests.factories import auth, token

    return auth(token(client, world.users["doc_a"]))
