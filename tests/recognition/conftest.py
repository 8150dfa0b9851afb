"""Recognition fixtures: the app with the CDS Hooks and REST routers first, the seeded catalogue, and the
records fixtures (a third institution and tokens)."""

from __future__ import annotations

import pytest

from onetrip.recognition.service import seed_catalogue
from tests.records.conftest import rec  # noqa: F401 — re-exported fixture


@pytest.fixture(scope="module")
def catalogue(db):
    with db.session() as s:
        seed_catalogue(s)
        s.commit()


@pytest.fixture(scope="module")
def app(db, catalogue):
    from onetrip.app import create_app
    from onetrip.config import Settings

    return create_app(Settings(database_url=db.url), factory=db.factory)
