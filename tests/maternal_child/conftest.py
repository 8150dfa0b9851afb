"""Maternal and child health fixtures: a 妇幼保健医生 (role mch_doctor) at hospital A and one at centre B."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def mch(client, db, world) -> dict[str, str]:
    """Authorization headers of an mch_doctor of hospital A."""
    from onetrip.auth.service import create_user
    from tests.factories import PASSWORD, auth, token

    with db.session() as s:
        create_user(s, f"mch{world.org_a_code}", PASSWORD, ["mch_doctor"], "妇幼医生甲", world.org_a)
        s.commit()
    return auth(token(client, f"mch{world.org_a_code}"))


@pytest.fixture(scope="module")
def mch_b(client, db, world) -> dict[str, str]:
    """Authorization headers of an mch_doctor of centre B (another institution)."""
    from onetrip.auth.service import create_user
    from tests.factories import PASSWORD, auth, token

    with db.session() as s:
        create_user(s, f"mchb{world.org_a_code}", PASSWORD, ["mch_doctor"], "妇幼医生乙", world.org_b)
        s.commit()
    return auth(token(client, f"mchb{world.org_a_code}"))
