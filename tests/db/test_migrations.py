"""The migrations are the schema: they match the models exactly, and go down and up again cleanly,
on both databases."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from onetrip import schema  # noqa: F401 — registers every table
from onetrip.db.base import Base
from onetrip.db.migrate import alembic_config, upgrade


def test_models_and_migrations_agree(db):
    with db.engine.connect() as c:
        diff = compare_metadata(MigrationContext.configure(c), Base.metadata)
    assert diff == []


def test_sqlite_pragmas_and_postgres_collation(db):
    with db.engine.connect() as c:
        if db.kind == "sqlite":
            assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        else:
            coll = c.exec_driver_sql(
                "SELECT collation_name FROM information_schema.columns "
                "WHERE table_name='patient_record' AND column_name='name_pinyin'").scalar()
            assert coll == "C"  # prefix searches are index range scans


def test_downgrade_and_upgrade_again(db):
    db.engine.dispose()
    command.downgrade(alembic_config(db.url), "base")
    upgrade(db.url)
    with db.engine.connect() as c:
        head = ScriptDirectory.from_config(alembic_config(db.url)).get_current_head()
        assert MigrationContext.configure(c).get_current_revision() == head
