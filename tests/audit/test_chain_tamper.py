"""With several chains, tampering behind the triggers' back is still found, chain by chain: an edited
row, a row removed from the middle, the newest rows of a chain removed (truncation), a row moved to
another chain, a chain head removed. Own module: it breaks chains on purpose."""

from __future__ import annotations

from sqlalchemy import select

from onetrip.audit import service as audit
from onetrip.audit.models import AuditEvent
from onetrip.kit.principal import cli_principal
from tests.audit.test_tamper import _tamper


def _write(db, tag: str, n: int = 4) -> list[tuple[int, int, int]]:
    """n rows in one transaction (so on one chain); returns their (seq, chain, chain_seq)."""
    with db.session() as s:
        for i in range(n):
            audit.record(s, cli_principal(), "read", what=[f"Patient/{tag}-{i}"])
        s.commit()
        return [tuple(r) for r in s.execute(select(AuditEvent.seq, AuditEvent.chain, AuditEvent.chain_seq)
                                             .where(AuditEvent.entity_what.like(f"Patient/{tag}-%"))
                                             .order_by(AuditEvent.seq))]


def _problems(db) -> list[str]:
    with db.session() as s:
        return [p.problem for p in audit.verify(s)[1]]


def test_intact_to_begin_with(db):
    _write(db, "start")
    assert _problems(db) == []


def test_an_edited_row_is_found_on_its_chain(db):
    rows = _write(db, "edit")
    seq, chain, pos = rows[1]
    _tamper(db, f"UPDATE audit_event SET agent_name = 'nobody' WHERE seq = {seq}")
    assert f"chain {chain}, row {pos}: row content does not match its hash (edited)" in _problems(db)


def test_a_row_removed_from_the_middle_of_a_chain_is_found(db):
    rows = _write(db, "gap")
    seq, chain, pos = rows[1]
    _tamper(db, f"DELETE FROM audit_event WHERE seq = {seq}")
    assert any(p.startswith(f"chain {chain}: rows {pos}..{pos} are missing") for p in _problems(db))


def test_the_newest_rows_of_a_chain_removed_are_found(db):
    rows = _write(db, "tail")
    chain = rows[0][1]
    _tamper(db, f"DELETE FROM audit_event WHERE chain = {chain} AND chain_seq >= {rows[2][2]}")
    assert any(p.startswith(f"chain {chain}: the head says") and "rows removed" in p for p in _problems(db))


def test_a_row_moved_to_another_chain_is_found(db):
    rows = _write(db, "move")
    seq, chain, pos = rows[0]
    other = 1 if chain != 1 else 2
    _tamper(db, f"UPDATE audit_event SET chain = {other}, chain_seq = 1000000 WHERE seq = {seq}")
    found = _problems(db)
    assert any(p.startswith(f"chain {chain}:") and "missing" in p for p in found)
    assert any(p.startswith(f"chain {other}, row 1000000: link to the previous row is broken") for p in found)


def test_a_removed_chain_head_is_found(db):
    rows = _write(db, "head")
    chain = rows[0][1]
    with db.engine.begin() as c:
        c.exec_driver_sql(f"DELETE FROM audit_chain_head WHERE id = {chain}")
    assert any(p.startswith(f"chain {chain}:") and "no chain head" in p for p in _problems(db))
