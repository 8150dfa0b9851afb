"""A database administrator cannot make the audit trail lie (issue 26): rows are HMAC-chained under a key
held outside the database, and signed checkpoints outside it pin the chain heads. Each attack is played as
a DBA would — guard triggers off, rows edited, the chain rebuilt, the head fixed — on both databases, and
each test first shows what the attack beats without the defence where that says something.

Every test gets its own fresh database (the attacks leave it broken on purpose)."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import hmac
import json
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DatabaseError
from sqlalchemy.orm import sessionmaker

from onetrip.audit import service as audit
from onetrip.audit.archive import (
    ArchiveRefused,
    check_cutoff,
    delete_archived,
    export,
    latest_cutoff,
    verify_export,
)
from onetrip.audit.chain import genesis, row_hash, walk_chain
from onetrip.audit.integrity import verify_report, write_checkpoint
from onetrip.audit.keys import AuditKeyError, Keyring, current_keyring, load_keyring, new_key_line, parse_keys
from onetrip.audit.models import AuditChainHead, AuditEvent
from onetrip.config import Environment, Settings, get_settings
from onetrip.db.session import make_engine
from onetrip.kit.principal import cli_principal
from tests.conftest import Database, template_copy

K1 = base64.b64encode(hashlib.sha256(b"test key one").digest()).decode()
K2 = base64.b64encode(hashlib.sha256(b"test key two").digest()).decode()
KEEP = object()


@pytest.fixture(scope="module", autouse=True)
def _keys():
    """The process's audit keyring for this module: keys k1 (active) and k2, from the environment."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ONETRIP_AUDIT_KEYS", f"k1:{K1},k2:{K2}")
        mp.setenv("ONETRIP_AUDIT_KEY_ID", "k1")
        get_settings.cache_clear()
        yield
    get_settings.cache_clear()


@pytest.fixture
def fresh(db_kind, request, tmp_path):
    """A fresh migrated database for one test (a copy of the session's template)."""
    with template_copy(db_kind, request, tmp_path, prefix="onetrip_at") as url:
        engine = make_engine(url)
        yield Database(db_kind, url, engine, sessionmaker(bind=engine, expire_on_commit=False))
        engine.dispose()


def _write(db, tag: str, n: int = 4) -> tuple[int, list[int]]:
    """n rows in one transaction (so on one chain) through the real writer; (chain, their positions)."""
    with db.session() as s:
        for i in range(n):
            audit.record(s, cli_principal(), "read", what=[f"Patient/{tag}-{i}"])
        s.commit()
        rows = s.execute(select(AuditEvent.chain, AuditEvent.chain_seq)
                         .where(AuditEvent.entity_what.like(f"Patient/{tag}-%")).order_by(AuditEvent.seq)).all()
    return rows[0][0], [p for _, p in rows]


def _as_dba(db, statements: list[tuple[str, dict]]) -> None:
    """What an attacker with DBA rights does: switch the guard off, change rows, switch it back."""
    with db.engine.begin() as c:
        if db.kind == "sqlite":
            sql = {n: c.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = ?", (n,)).scalar_one()
                   for n in ("audit_event_no_update", "audit_event_no_delete")}
            for n in sql:
                c.exec_driver_sql(f"DROP TRIGGER {n}")
        else:
            c.exec_driver_sql("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only")
        for stmt, params in statements:
            c.execute(text(stmt), params)
        if db.kind == "sqlite":
            for definition in sql.values():
                c.exec_driver_sql(definition)
        else:
            c.exec_driver_sql("ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only")


def _chain(db, chain: int) -> list[dict]:
    with db.session() as s:
        cols = [c.key for c in AuditEvent.__table__.columns]
        return [dict(zip(cols, r, strict=True)) for r in s.execute(
            select(*AuditEvent.__table__.columns).where(AuditEvent.chain == chain).order_by(AuditEvent.chain_seq))]


def _rechain(db, chain: int, *, edit: tuple[int, dict] | None = None, mac=None, key_id=KEEP,
             drop_from: int | None = None) -> None:
    """Rewrite a chain as an attacker can: edit a row (and/or drop the newest rows from ``drop_from``), then
    recompute every prev_hash/row_hash with ``mac`` (None: the project's unkeyed function) and move the head."""
    rows = _chain(db, chain)
    stmts: list[tuple[str, dict]] = []
    if drop_from is not None:
        stmts.append(("DELETE FROM audit_event WHERE chain = :c AND chain_seq >= :p", {"c": chain, "p": drop_from}))
        rows = [r for r in rows if r["chain_seq"] < drop_from]
    prev = genesis(chain)
    for r in rows:
        if edit is not None and r["chain_seq"] == edit[0]:
            r.update(edit[1])
        if key_id is not KEEP:
            r["key_id"] = key_id
        r["prev_hash"], r["row_hash"] = prev, row_hash(prev, r, mac)
        prev = r["row_hash"]
        stmts.append(("UPDATE audit_event SET agent_name = :a, key_id = :k, prev_hash = :p, row_hash = :h "
                      "WHERE seq = :s", {"a": r["agent_name"], "k": r["key_id"], "p": r["prev_hash"],
                                         "h": r["row_hash"], "s": r["seq"]}))
    stmts.append(("UPDATE audit_chain_head SET last_seq = :n, last_hash = :h WHERE id = :c",
                  {"n": rows[-1]["chain_seq"] if rows else 0, "h": prev, "c": chain}))
    _as_dba(db, stmts)


def _verify(db, directory: Path | None) -> list[str]:
    with db.session() as s:
        return [p.problem for p in verify_report(s, checkpoint_dir=directory).problems]


def _checkpoint(db, directory: Path):
    with db.session() as s:
        return write_checkpoint(s, directory=directory)


def test_an_untouched_trail_is_intact_and_matches_its_checkpoint(fresh, tmp_path):
    _write(fresh, "ok")
    result = _checkpoint(fresh, tmp_path)
    assert result.written and result.problems == []
    with fresh.session() as s:
        report = verify_report(s, checkpoint_dir=tmp_path)
        keys = set(s.scalars(select(AuditEvent.key_id)))
    assert report.problems == [] and report.checked == 4 and report.legacy == 0
    assert report.checkpoint is not None and report.checkpoint.line == 1
    assert keys == {"k1"}
    assert _checkpoint(fresh, tmp_path).written  # a second line extends the first
    line2 = json.loads(result.path.read_text().splitlines()[1])
    assert line2["prev"] == hashlib.sha256(result.path.read_text().splitlines()[0].encode()).hexdigest()


def test_an_edit_rechained_with_the_unkeyed_function_is_found(fresh, tmp_path):
    chain, positions = _write(fresh, "edit")
    _rechain(fresh, chain, edit=(positions[1], {"agent_name": "nobody"}))  # key ids kept: HMACs no longer match
    assert any(p.startswith(f"chain {chain}, row ") and "edited" in p for p in _verify(fresh, None))


def test_a_whole_chain_rebuilt_as_legacy_rows_is_caught_by_the_checkpoint(fresh, tmp_path):
    chain, positions = _write(fresh, "legacy")
    assert _checkpoint(fresh, tmp_path).written
    _rechain(fresh, chain, edit=(positions[0], {"agent_name": "nobody"}), key_id=None)
    assert _verify(fresh, None) == []  # the chain alone looks like old unkeyed rows: this is why checkpoints exist
    found = _verify(fresh, tmp_path)
    assert any("differs from the signed checkpoint" in p for p in found), found
    refused = _checkpoint(fresh, tmp_path)  # and the rewrite is not sealed by the next checkpoint
    assert not refused.written and refused.problems
    assert len(refused.path.read_text().splitlines()) == 1


def test_a_chain_rebuilt_with_a_wrong_key_is_found(fresh):
    chain, positions = _write(fresh, "wrongkey")
    wrong = hmac.new(b"x" * 32, digestmod=hashlib.sha256)
    _rechain(fresh, chain, edit=(positions[2], {"agent_name": "nobody"}), mac=wrong)
    found = _verify(fresh, None)
    assert sum("edited" in p for p in found) == len(positions)  # every rehashed row fails under k1


def test_removed_newest_rows_with_the_head_fixed_are_found_against_the_checkpoint(fresh, tmp_path):
    chain, positions = _write(fresh, "tail", n=5)
    assert _checkpoint(fresh, tmp_path).written
    _rechain(fresh, chain, mac=current_keyring().active_mac, drop_from=positions[3])  # even with the key
    assert _verify(fresh, None) == []  # consistent on its own
    found = _verify(fresh, tmp_path)
    assert any(f"chain {chain}: the signed checkpoint" in p and "newest rows removed" in p for p in found), found


def test_an_older_copy_of_the_database_is_found(fresh, tmp_path):
    """Restore an older state (head rolled back), then let the application write on: the chain passes the
    checkpoint's position again, but not with the checkpointed rows."""
    chain, positions = _write(fresh, "restore", n=6)
    assert _checkpoint(fresh, tmp_path).written
    _rechain(fresh, chain, mac=current_keyring().active_mac, drop_from=positions[3])  # the older copy
    mac = current_keyring().active_mac
    with fresh.engine.begin() as c:  # the application carries on writing to that chain, with its key
        last_seq, last_hash = c.execute(text("SELECT last_seq, last_hash FROM audit_chain_head WHERE id = :c"),
                                        {"c": chain}).one()
        for i in range(5):
            row = {"chain": chain, "chain_seq": last_seq + 1, "recorded_at": dt.datetime.now(dt.UTC),
                   "type_code": "rest", "subtype": "read", "action": "R", "outcome": "0", "source": "api",
                   "entity_what": f"Patient/after-{i}", "key_id": "k1", "prev_hash": last_hash}
            row["row_hash"] = row_hash(last_hash, row, mac)
            c.execute(AuditEvent.__table__.insert().values(**row))
            last_seq, last_hash = last_seq + 1, row["row_hash"]
        c.execute(text("UPDATE audit_chain_head SET last_seq = :n, last_hash = :h WHERE id = :c"),
                  {"n": last_seq, "h": last_hash, "c": chain})
    assert _verify(fresh, None) == []
    found = _verify(fresh, tmp_path)
    assert any(f"chain {chain}, row {positions[-1]}: differs from the signed checkpoint" in p for p in found), found


def test_a_tampered_checkpoint_file_is_found(fresh, tmp_path):
    _write(fresh, "cpfile")
    path = _checkpoint(fresh, tmp_path).path
    _write(fresh, "cpfile2")
    assert _checkpoint(fresh, tmp_path).written
    _write(fresh, "cpfile3")
    assert _checkpoint(fresh, tmp_path).written
    lines = path.read_text().splitlines()
    assert _verify(fresh, tmp_path) == []
    # a head edited in the file (to match a rewritten database) breaks the line's signature
    body = json.loads(lines[2])
    body["heads"][0][1] += 1
    path.write_text("\n".join([*lines[:2], json.dumps(body, separators=(",", ":"))]) + "\n")
    assert any("bad signature" in p for p in _verify(fresh, tmp_path))
    # a line removed from the middle breaks the chain of lines
    path.write_text("\n".join([lines[0], lines[2]]) + "\n")
    assert any("does not follow the line before it" in p for p in _verify(fresh, tmp_path))
    # a forged file signed with another key
    path.write_text(lines[0].replace('"key_id":"k1"', '"key_id":"k9"') + "\n")
    assert any("not in the keyring" in p for p in _verify(fresh, tmp_path))
    path.write_text("\n".join(lines) + "\n")
    assert _verify(fresh, tmp_path) == []


def test_key_rotation_keeps_both_keys_rows_verifying(fresh, tmp_path, monkeypatch):
    _write(fresh, "before-rotation")
    assert _checkpoint(fresh, tmp_path).written
    monkeypatch.setenv("ONETRIP_AUDIT_KEY_ID", "k2")
    get_settings.cache_clear()
    try:
        assert current_keyring().active == "k2"
        _write(fresh, "after-rotation")
        assert _checkpoint(fresh, tmp_path).written  # checkpoints now signed with k2
        with fresh.session() as s:
            keys = {k for (k,) in s.execute(select(AuditEvent.key_id).distinct())}
        assert keys == {"k1", "k2"}
        assert _verify(fresh, tmp_path) == []
        # dropping the old key from the keyring is noticed, not silently accepted
        monkeypatch.setenv("ONETRIP_AUDIT_KEYS", f"k2:{K2}")
        get_settings.cache_clear()
        found = _verify(fresh, None)
        assert found and all("'k1' is not in the keyring" in p for p in found)
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_archive_refuses_a_cutoff_inside_the_retention(fresh, tmp_path):
    today = dt.date(2026, 12, 7)
    assert latest_cutoff(today, 6) == dt.date(2026, 6, 1)
    assert latest_cutoff(dt.date(2026, 8, 31), 6) == dt.date(2026, 2, 1)  # Feb 28: rows before Feb 1 are older
    check_cutoff(dt.date(2026, 6, 1), today, 6)
    with pytest.raises(ArchiveRefused, match="kept at least 6 months"):
        check_cutoff(dt.date(2026, 7, 1), today, 6)
    with fresh.session() as s, pytest.raises(ArchiveRefused, match="2026-06 at the latest"):
        export(s, current_keyring(), before=dt.date(2026, 12, 1), today=today, retention_months=6,
               out_dir=tmp_path / "archive")
    assert not (tmp_path / "archive").exists()  # nothing written


def _old_rows(db, chain: int, n: int, when: dt.datetime) -> None:
    """Rows the application wrote long ago (same key), at the start of ``chain``."""
    mac = current_keyring().active_mac
    with db.engine.begin() as c:
        last_seq, last_hash = c.execute(text("SELECT last_seq, last_hash FROM audit_chain_head WHERE id = :c"),
                                        {"c": chain}).one()
        for i in range(n):
            row = {"chain": chain, "chain_seq": last_seq + 1, "recorded_at": when + dt.timedelta(minutes=i),
                   "type_code": "rest", "subtype": "read", "action": "R", "outcome": "0", "source": "api",
                   "entity_what": f"Patient/old-{i}", "detail": {"i": i, "名": "值"}, "key_id": "k1",
                   "prev_hash": last_hash}
            row["row_hash"] = row_hash(last_hash, row, mac)
            c.execute(AuditEvent.__table__.insert().values(**row))
            last_seq, last_hash = last_seq + 1, row["row_hash"]
        c.execute(text("UPDATE audit_chain_head SET last_seq = :n, last_hash = :h WHERE id = :c"),
                  {"n": last_seq, "h": last_hash, "c": chain})


def test_archive_exports_a_verified_file_and_manifest_then_deletes_behind_a_sealed_marker(fresh, tmp_path):
    old = dt.datetime(2025, 3, 10, 8, 0, tzinfo=dt.UTC)
    for chain in (3, 4):
        _old_rows(fresh, chain, 3, old)
    _old_rows(fresh, 3, 2, dt.datetime(2026, 11, 1, tzinfo=dt.UTC))  # recent rows after them: kept
    keyring = current_keyring()
    with fresh.session() as s:
        result = export(s, keyring, before=dt.date(2025, 6, 1), today=dt.date(2026, 12, 7), retention_months=6,
                        out_dir=tmp_path / "archive")
    manifest = json.loads(result.manifest.read_text())
    assert manifest["sha256"] == hashlib.sha256(result.file.read_bytes()).hexdigest() == result.sha256
    assert manifest["rows"] == result.rows == 6
    assert {c: (v["from"], v["to"]) for c, v in manifest["chains"].items()} == {"3": (1, 3), "4": (1, 3)}
    with gzip.open(result.file, "rt") as f:
        assert [json.loads(line)["entity_what"] for line in f][:3] == ["Patient/old-0", "Patient/old-1",
                                                                         "Patient/old-2"]
    assert verify_export(result.manifest, keyring) == []
    # the trigger still refuses deleting rows no marker covers
    with fresh.engine.begin() as c, pytest.raises(DatabaseError, match="append-only"):
        c.execute(text("DELETE FROM audit_event WHERE chain = 3"))
    with fresh.session() as s:
        assert delete_archived(s, keyring, result) == 6
        s.commit()
        left = s.execute(select(AuditEvent.chain, AuditEvent.chain_seq).order_by(AuditEvent.chain,
                                                                                   AuditEvent.chain_seq)).all()
    assert left == [(3, 4), (3, 5)]
    assert _verify(fresh, tmp_path / "cp") == []  # removed rows are not "missing": the marker says where they went
    assert _checkpoint(fresh, tmp_path / "cp").written
    with fresh.engine.begin() as c, pytest.raises(DatabaseError, match="append-only"):
        c.execute(text("DELETE FROM audit_event WHERE chain = 3 AND chain_seq = 4"))
    # an archive file changed afterwards no longer matches its manifest
    result.file.write_bytes(gzip.compress(b"{}\n"))
    assert any("SHA-256 does not match" in p for p in verify_export(result.manifest, keyring))
    # a marker moved by hand (to hide deleting more rows) has no valid seal
    _as_dba(fresh, [("UPDATE audit_chain_head SET archived_seq = 4 WHERE id = 3", {}),
                    ("DELETE FROM audit_event WHERE chain = 3 AND chain_seq = 4", {})])
    assert any("no valid seal" in p for p in _verify(fresh, None))


def test_unkeyed_rows_after_keyed_rows_are_a_rewrite():
    mac = hmac.new(b"k" * 32, digestmod=hashlib.sha256)
    rows, prev = [], genesis(1)
    for pos in range(1, 4):
        row = {"seq": pos, "chain_seq": pos, "type_code": "rest", "subtype": "read", "action": "R", "outcome": "0",
               "source": "api", "key_id": None if pos == 1 else "a"}
        row["prev_hash"], row["row_hash"] = prev, row_hash(prev, row, None if pos == 1 else mac)
        prev = row["row_hash"]
        rows.append(row)
    walk = walk_chain(rows, macs={"a": mac})
    assert walk.problems == [] and walk.legacy == 1 and walk.count == 3
    rows[2] = {**rows[2], "key_id": None, "row_hash": row_hash(rows[2]["prev_hash"], rows[2])}
    assert any("unkeyed row after keyed rows" in p.problem for p in walk_chain(rows, macs={"a": mac}).problems)


def test_keyring_settings_are_checked_with_messages_that_say_what_to_fix(tmp_path):
    line = new_key_line("ops-2027")
    assert parse_keys(line, "x")[0][0] == "ops-2027" and len(parse_keys(line, "x")[0][1]) == 32
    with pytest.raises(AuditKeyError, match="at least 32"):
        parse_keys("k:" + base64.b64encode(b"short").decode(), "ONETRIP_AUDIT_KEYS")
    with pytest.raises(AuditKeyError, match="not valid base64"):
        parse_keys("k:@@@", "ONETRIP_AUDIT_KEYS")
    with pytest.raises(ValueError, match="ONETRIP_AUDIT_KEYS"):  # production refuses to start without one
        Settings(env="production", secret_key="s" * 40, audit_keys=None, audit_key_file=None)
    unchecked = Settings.model_construct(env=Environment.production, secret_key="s" * 40, audit_keys=None,
                                         audit_key_file=None)
    with pytest.raises(AuditKeyError, match="production needs an audit key"):  # and the keyring says so too
        load_keyring(unchecked)
    with pytest.raises(AuditKeyError, match="not in the keyring"):
        load_keyring(Settings(audit_keys=f"k1:{K1}", audit_key_id="k7", audit_key_file=None))
    keyfile = tmp_path / "keys"
    keyfile.write_text(f"# ops keys\nold:{K2}\n{line}\n")
    ring = load_keyring(Settings(audit_key_file=keyfile, audit_keys=f"k1:{K1}", audit_key_id="ops-2027"))
    assert isinstance(ring, Keyring) and set(ring.keys) == {"old", "ops-2027", "k1"} and ring.active == "ops-2027"
    assert "k1:" not in repr(Settings(audit_keys=f"k1:{K1}"))  # the secret is not printed with the settings


def test_cli_checkpoint_verify_archive_and_rotate(fresh, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from onetrip.cli.main import app
    from onetrip.db import session as db_session
    from onetrip.rules.service import seed_rules

    with fresh.session() as s:
        seed_rules(s)
        s.commit()
    chain, _ = _write(fresh, "cli")
    monkeypatch.setenv("ONETRIP_DATABASE_URL", fresh.url)
    monkeypatch.setenv("ONETRIP_AUDIT_CHECKPOINT_DIR", str(tmp_path / "cp"))
    caches = (get_settings, db_session.get_engine, db_session.get_sessionmaker)
    for f in caches:
        f.cache_clear()
    runner = CliRunner()
    try:
        cp = runner.invoke(app, ["audit", "checkpoint"])
        assert cp.exit_code == 0, cp.output
        ok = runner.invoke(app, ["audit", "verify"])
        assert ok.exit_code == 0 and "intact" in ok.output and "compared with the signed checkpoint" in ok.output
        _rechain(fresh, chain, mac=current_keyring().active_mac, drop_from=2)
        bad = runner.invoke(app, ["audit", "verify"])
        assert bad.exit_code == 1 and "最新的行被删除" in bad.output and "newest rows removed" in bad.output
        refused = runner.invoke(app, ["audit", "checkpoint"])
        assert refused.exit_code == 1 and "no checkpoint written" in refused.output
        month = dt.datetime.now(dt.UTC).strftime("%Y-%m")
        inside = runner.invoke(app, ["audit", "archive", "--before", month, "--out", str(tmp_path / "a")])
        assert inside.exit_code == 2 and "kept at least 6 months" in inside.output
        typo = runner.invoke(app, ["audit", "archive", "--before", "2025/01"])
        assert typo.exit_code == 2 and "YYYY-MM" in typo.output
        rotated = runner.invoke(app, ["audit", "rotate-key", "--key-id", "k3"])
        assert rotated.exit_code == 0 and "ONETRIP_AUDIT_KEY_ID=k3" in rotated.output
        assert parse_keys(rotated.stdout.strip().splitlines()[0], "out")[0][0] == "k3"
        with fresh.session() as s:  # the new secret went nowhere near the database
            assert s.scalar(select(AuditChainHead.archived_seal).where(AuditChainHead.archived_seal.is_not(None))) is None
    finally:
        db_session.get_engine().dispose()
        for f in caches:
            f.cache_clear()
