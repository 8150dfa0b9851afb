"""``onetrip backup`` / ``onetrip restore`` on both databases: a backup taken while a thread registers patients
(audited writes) restores into a fresh database with the manifest's row counts, its audit chain heads and an
intact audit chain; a damaged dump, a non-empty target and a missing pg_dump are refused with what to do."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, inspect, select, table, text
from sqlalchemy.orm import Session

from onetrip.audit.models import AuditChainHead, AuditEvent
from onetrip.audit.service import verify
from onetrip.cli.main import app
from onetrip.config import get_settings
from onetrip.db.session import make_engine, normalize_url
from onetrip.kit.principal import cli_principal
from onetrip.registry import service as registry
from onetrip.registry.models import MedicalCommunity
from tests.factories import register_patient, uscc_for


@pytest.fixture
def new_database(db, tmp_path):
    """Makes new, empty databases of the module's kind: a SQLite file not yet created, or a PostgreSQL database
    made with CREATE DATABASE (all dropped afterwards). Returns their URLs."""
    made: list[str] = []
    admin = create_engine(normalize_url(db.url), isolation_level="AUTOCOMMIT") if db.kind != "sqlite" else None

    def make() -> str:
        name = f"onetrip_restore_{uuid.uuid4().hex[:10]}"
        if admin is None:
            return f"sqlite:///{tmp_path / (name + '.db')}"
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        made.append(name)
        return db.url.rsplit("/", 1)[0] + "/" + name

    yield make
    if admin is not None:
        with admin.connect() as c:
            for name in made:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def fresh_url(new_database) -> str:
    return new_database()


@pytest.fixture(scope="module")
def org(db) -> str:
    """One institution to register patients at (no users needed here)."""
    with db.session() as s:
        mc = MedicalCommunity(code="MCBK", name="备份测试医共体")
        s.add(mc)
        s.flush()
        o = registry.create_organization(s, cli_principal(), code="BK1", name="备份测试医院", org_type="lead_hospital",
                                         grade="3A", uscc=uscc_for(9901), community_id=mc.id)
        s.commit()
        return o.id


def use(monkeypatch, url: str) -> None:
    """Point the CLI (ONETRIP_DATABASE_URL) at ``url``."""
    monkeypatch.setenv("ONETRIP_DATABASE_URL", url)
    get_settings.cache_clear()


def counts_and_heads(url: str, tables) -> tuple[dict[str, int], list[dict]]:
    engine = make_engine(url)
    try:
        with engine.connect() as c:
            counts = {t: c.execute(select(func.count()).select_from(table(t))).scalar_one() for t in tables}
            heads = [{"chain": i, "last_seq": int(n), "last_hash": h} for i, n, h in c.execute(
                select(AuditChainHead.id, AuditChainHead.last_seq, AuditChainHead.last_hash).order_by(AuditChainHead.id))]
    finally:
        engine.dispose()
    return counts, heads


def table_names(url: str) -> list[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as c:
            return inspect(c).get_table_names()
    finally:
        engine.dispose()


def take_backup(cli_env, directory: Path) -> dict:
    r = cli_env.invoke(app, ["backup", str(directory)])
    assert r.exit_code == 0, r.output
    return json.loads((directory / "manifest.json").read_text(encoding="utf-8"))


def test_backup_under_write_load_restores_with_counts_and_an_intact_audit_chain(cli_env, db, org, fresh_url,
                                                                               tmp_path, monkeypatch):
    written = []
    stop, warmed_up = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:  # audited writes through the real service: person, record, audit, outbox, version
        try:
            while not stop.is_set():
                written.append(register_patient(db, org, name="林晓"))
                if len(written) >= 3:
                    warmed_up.set()
        except BaseException as e:  # noqa: BLE001 — asserted below
            errors.append(e)
            warmed_up.set()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert warmed_up.wait(60)
        before = len(written)
        manifest = take_backup(cli_env, tmp_path / "bk")
        during = len(written) - before
    finally:
        stop.set()
        thread.join(60)
    assert not errors, errors

    # The snapshot was taken mid-load: it holds the rows written before, and not those written after it.
    snapshot_records = manifest["tables"]["patient_record"]
    source, _ = counts_and_heads(db.url, ["patient_record"])
    assert before <= snapshot_records <= source["patient_record"]
    assert manifest["database"]["kind"] == db.kind and manifest["alembic_revision"]
    assert manifest["tables"]["audit_event"] > 0 and len(manifest["audit_chain_heads"]) == 32
    assert set(manifest["files"]) == {manifest["dump"]}
    assert len(manifest["files"][manifest["dump"]]["sha256"]) == 64
    bk = tmp_path / "bk"  # every resident's data: the owner's only
    assert all(p.stat().st_mode & 0o077 == 0 for p in [bk, *bk.iterdir()])
    assert during > 0, "no write landed while the backup ran: the test did not test a backup under load"

    use(monkeypatch, fresh_url)
    r = cli_env.invoke(app, ["restore", str(tmp_path / "bk")])
    assert r.exit_code == 0, r.output
    assert "row counts match" in r.output and "audit chain intact" in r.output

    # Checked here again, independently of the command: every table's count, the heads, the chains. The
    # restore added one audit event of its own (who restored what), on one chain.
    restored, heads = counts_and_heads(fresh_url, manifest["tables"])
    assert restored == {**manifest["tables"], "audit_event": manifest["tables"]["audit_event"] + 1}
    moved = [(h, m) for h, m in zip(heads, manifest["audit_chain_heads"], strict=True) if h != m]
    assert len(moved) == 1 and moved[0][0]["last_seq"] == moved[0][1]["last_seq"] + 1
    engine = make_engine(fresh_url)
    try:
        with Session(engine) as s:
            checked, problems = verify(s)
            restored_event = s.scalars(select(AuditEvent).where(AuditEvent.entity_what == "Database/restore")).one()
    finally:
        engine.dispose()
    assert problems == [] and checked == manifest["tables"]["audit_event"] + 1
    assert restored_event.detail["sha256"] == manifest["files"][manifest["dump"]]["sha256"]
    assert restored_event.agent_name.startswith("cli:")
    # ... and the source database logged the backup (after its snapshot, so the backup does not hold it).
    engine = make_engine(db.url)
    try:
        with Session(engine) as s:
            taken = s.scalars(select(AuditEvent).where(AuditEvent.entity_what == "Database/backup")).all()
    finally:
        engine.dispose()
    assert [(e.subtype, e.detail["rows"]) for e in taken] == [("export", sum(manifest["tables"].values()))]


def test_a_corrupted_dump_is_refused_by_its_checksum(cli_env, db, fresh_url, tmp_path, monkeypatch):
    manifest = take_backup(cli_env, tmp_path / "bk")
    dump = tmp_path / "bk" / manifest["dump"]
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte, same size
    dump.write_bytes(bytes(data))

    use(monkeypatch, fresh_url)
    r = cli_env.invoke(app, ["restore", str(tmp_path / "bk")])
    assert r.exit_code == 2, r.output
    assert "SHA-256" in r.output and manifest["dump"] in r.output
    if db.kind == "sqlite":
        assert not Path(fresh_url.split("///", 1)[1]).exists()
    else:
        assert table_names(fresh_url) == []

    (tmp_path / "bk" / "manifest.json").unlink()
    r = cli_env.invoke(app, ["restore", str(tmp_path / "bk")])
    assert r.exit_code == 2 and "manifest.json" in r.output


def test_restore_into_a_non_empty_database_needs_force(cli_env, db, org, fresh_url, tmp_path, monkeypatch):
    register_patient(db, org, name="周敏")
    manifest = take_backup(cli_env, tmp_path / "bk")

    # The module's own database is not empty: refused, and left as it was.
    before, _ = counts_and_heads(db.url, manifest["tables"])
    r = cli_env.invoke(app, ["restore", str(tmp_path / "bk")])
    assert r.exit_code == 2, r.output
    assert "not empty" in r.output and "--force" in r.output
    assert counts_and_heads(db.url, manifest["tables"])[0] == before

    use(monkeypatch, fresh_url)
    assert cli_env.invoke(app, ["restore", str(tmp_path / "bk")]).exit_code == 0
    engine = make_engine(fresh_url)
    with engine.begin() as c:  # the restored database changes after the restore ...
        c.execute(text("DELETE FROM outbox_event"))
    engine.dispose()
    r = cli_env.invoke(app, ["restore", str(tmp_path / "bk")])
    assert r.exit_code == 2 and "--force" in r.output
    r = cli_env.invoke(app, ["restore", str(tmp_path / "bk"), "--force"])  # ... and --force puts the backup back
    assert r.exit_code == 0, r.output
    # the backup's rows, plus the audit event of this restore
    assert counts_and_heads(fresh_url, manifest["tables"])[0] == {
        **manifest["tables"], "audit_event": manifest["tables"]["audit_event"] + 1}


def test_backup_refuses_a_used_directory_and_pg_dump_must_be_installed(cli_env, db, tmp_path, monkeypatch):
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "notes.txt").write_text("x")
    r = cli_env.invoke(app, ["backup", str(tmp_path / "used")])
    assert r.exit_code == 2 and "not empty" in r.output

    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))
    r = cli_env.invoke(app, ["backup", str(tmp_path / "bk")])
    if db.kind == "sqlite":  # SQLite needs no outside tool
        assert r.exit_code == 0, r.output
    else:
        assert r.exit_code == 2, r.output
        assert "pg_dump" in r.output and "postgresql-client-" in r.output


def test_a_backup_of_an_older_schema_is_checked_then_migrated(cli_env, db, new_database, tmp_path, monkeypatch):
    from onetrip.db.migrate import upgrade

    old = new_database()
    upgrade(old, "0013")  # last release's schema
    use(monkeypatch, old)
    manifest = take_backup(cli_env, tmp_path / "bk")
    assert manifest["alembic_revision"] == "0013"

    target = new_database()
    use(monkeypatch, target)
    r = cli_env.invoke(app, ["restore", str(tmp_path / "bk"), "--no-upgrade"])
    assert r.exit_code == 0, r.output  # restored as it was; the audit check is left to after `db upgrade`
    assert "row counts match" in r.output and "onetrip db upgrade" in r.output
    r = cli_env.invoke(app, ["restore", str(tmp_path / "bk"), "--force"])
    assert r.exit_code == 0, r.output
    assert "migrated" in r.output and "audit chain intact" in r.output
