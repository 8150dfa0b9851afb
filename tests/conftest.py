"""Test fixtures. The schema is built from the Alembic migrations (never create_all), once per run and
database kind; each test module then gets its own fresh copy (a copied SQLite file, or a PostgreSQL
database cloned from a template), so modules are isolated and tests see real commits and real locks.

Database-backed tests run on both SQLite and PostgreSQL (fixture param ``db``). PostgreSQL comes from
``ONETRIP_TEST_PG_URL`` (default postgresql://postgres@127.0.0.1:5432/test). With CI=true an unreachable
PostgreSQL fails the run; elsewhere its half is skipped with a notice.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

# The audit trail's key and its checkpoint files live outside the database (docs/security.md): the tests use a
# fixed test key and a throw-away data directory, never the developer's ~/.local/share/onetrip. Set before any
# onetrip import reads the settings; a test that needs other values sets its own with monkeypatch.
os.environ.setdefault("ONETRIP_AUDIT_KEYS", "test1:" + "dGVzdC1vbmx5LWF1ZGl0LWtleS1ub3QtYS1zZWNyZXQtMTIzNA==")
os.environ.setdefault("XDG_DATA_HOME", tempfile.mkdtemp(prefix="onetrip-test-data-"))

from sqlalchemy import Engine, create_engine, text  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker

from onetrip.db.migrate import upgrade
from onetrip.db.session import make_engine
from tests.browser_kit import browser_page, chromium, live_server  # noqa: F401 — fixtures for browser tests

PG_URL = os.environ.get("ONETRIP_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"
PG_HOWTO = ("PostgreSQL half skipped: no server at {url} ({err}). To run it, start PostgreSQL "
            "(e.g. `pg_ctlcluster 15 main start`) or set ONETRIP_TEST_PG_URL=postgresql://user@host:port/db")


def pytest_addoption(parser):
    parser.addoption("--db", default="both", choices=["sqlite", "postgresql", "both"],
                     help="which database(s) the database-backed tests run on")


def pytest_collection_modifyitems(config, items):
    """Mark the security suite (tests/security/ and the tests its catalogue lists from other folders)."""
    from tests.security.catalogue import OUTSIDE

    outside = set(OUTSIDE)
    for item in items:
        path = item.nodeid.split("::")[0]
        if path.startswith("tests/security/") or f"{path}::{item.originalname}" in outside:
            item.add_marker(pytest.mark.security)


def pytest_generate_tests(metafunc):
    if "db_kind" in metafunc.fixturenames:
        choice = metafunc.config.getoption("--db")
        kinds = ["sqlite", "postgresql"] if choice == "both" else [choice]
        metafunc.parametrize("db_kind", kinds, scope="module")


def _pg_admin_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture(scope="session")
def _pg_template(tmp_path_factory):
    """Migrate a template database once and yield its name — or, if PostgreSQL is unreachable, the
    notice explaining how to run the PostgreSQL half."""
    admin = create_engine(_pg_admin_url(PG_URL), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(text("select 1"))
    except Exception as e:  # noqa: BLE001 — any failure to connect means "not reachable"
        admin.dispose()
        msg = PG_HOWTO.format(url=PG_URL, err=type(e).__name__)
        if IN_CI:
            pytest.exit("CI=true but PostgreSQL is unreachable: " + msg, returncode=3)
        yield msg  # not a database name: the reason the PostgreSQL half is skipped
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw")
    name = f"onetrip_tpl_{worker}_{uuid.uuid4().hex[:8]}"
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_URL.rsplit("/", 1)[0] + "/" + name
    upgrade(url)
    yield name
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tpl") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


_counter = itertools.count()


@dataclass
class Database:
    kind: str
    url: str
    engine: Engine
    factory: sessionmaker[Session]

    def session(self) -> Session:
        return self.factory()


@contextlib.contextmanager
def template_copy(db_kind: str, request, directory: Path, prefix: str = "onetrip_t") -> Iterator[str]:
    """The URL of a new copy of the migrated template database (a copied SQLite file in ``directory``, or a
    PostgreSQL database created from the template and dropped afterwards)."""
    if db_kind == "sqlite":
        path = directory / "test.db"
        shutil.copy(request.getfixturevalue("_sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    tpl_name = request.getfixturevalue("_pg_template")
    if tpl_name.startswith("PostgreSQL half skipped"):
        pytest.skip(tpl_name)
    name = f"{prefix}_{os.getpid()}_{next(_counter)}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(_pg_admin_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{tpl_name}"'))
    try:
        yield PG_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="module")
def db(db_kind, request, tmp_path_factory) -> Database:
    """A fresh, migrated database for this test module, with the default rule values seeded."""
    from onetrip.rules.service import seed_rules

    with template_copy(db_kind, request, tmp_path_factory.mktemp("db")) as url:
        engine = make_engine(url)
        factory = sessionmaker(bind=engine, expire_on_commit=False)
        with factory() as s:
            seed_rules(s)
            s.commit()
        yield Database(db_kind, url, engine, factory)
        engine.dispose()


@pytest.fixture(scope="module")
def app(db):
    from onetrip.app import create_app
    from onetrip.config import Settings

    return create_app(Settings(database_url=db.url), factory=db.factory)


@pytest.fixture(scope="module")
def client(app):
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def world(db):
    """A small district: one medical community, a lead hospital A and a branch centre B, users at each,
    an admin and a system client. Returned as a plain namespace of ids and credentials."""
    from tests.factories import build_world

    return build_world(db)


@pytest.fixture
def cli_env(db, monkeypatch):
    """A Typer CliRunner whose ``onetrip`` commands talk to this module's database."""
    from typer.testing import CliRunner

    from onetrip.config import get_settings
    from onetrip.db import session as db_session

    monkeypatch.setenv("ONETRIP_DATABASE_URL", db.url)
    caches = (get_settings, db_session.get_engine, db_session.get_sessionmaker)
    for f in caches:
        f.cache_clear()
    yield CliRunner()
    db_session.get_engine().dispose()
    for f in caches:
        f.cache_clear()
