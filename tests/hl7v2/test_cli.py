"""``onetrip hl7 inbox list|rerun`` against a real database (the app is tested directly until it is wired
into ``cli.main``)."""

from __future__ import annotations

from onetrip.cli.hl7 import hl7_app
from onetrip.interop.hl7v2 import service
from tests.hl7v2.helpers import adt


def _store_and_process(db, text: str) -> str:
    with db.session() as s:
        receipt = service.receive(s, text.encode())
        s.commit()
        service.process(s, receipt.inbox_id, max_attempts=1)
        s.commit()
        return receipt.inbox_id


def test_list_and_rerun(cli_env, db, world):
    failed = _store_and_process(db, adt(world.org_a_code, "CLI-2", event="A40", mrn="C1", mrg="C2"))
    refused = _store_and_process(db, adt(world.org_a_code, "CLI-9", version="2.7"))
    r = cli_env.invoke(hl7_app, ["inbox", "list", "--status", "failed"])
    assert r.exit_code == 0, r.output
    assert "CLI-2" in r.output and "CLI-9" not in r.output
    assert cli_env.invoke(hl7_app, ["inbox", "list", "--status", "nonsense"]).exit_code == 2

    r = cli_env.invoke(hl7_app, ["inbox", "rerun", failed])
    assert r.exit_code == 1 and "failed" in r.output  # C1 and C2 are still unknown
    _store_and_process(db, adt(world.org_a_code, "CLI-0", mrn="C1", family="郑", given="一"))
    _store_and_process(db, adt(world.org_a_code, "CLI-1", mrn="C2", family="郑", given="壹", birth="19700101"))
    r = cli_env.invoke(hl7_app, ["inbox", "rerun", failed])
    assert r.exit_code == 0, r.output
    assert cli_env.invoke(hl7_app, ["inbox", "rerun", refused]).exit_code == 2
    assert cli_env.invoke(hl7_app, ["inbox", "rerun", "nope"]).exit_code == 2


def test_rerun_all_failed(cli_env, db, world):
    a = _store_and_process(db, adt(world.org_a_code, "ALL-1", event="A40", mrn="R1", mrg="R2"))
    b = _store_and_process(db, adt(world.org_a_code, "ALL-2", event="A40", mrn="R3", mrg="R4"))
    assert cli_env.invoke(hl7_app, ["inbox", "rerun-all", "--status", "received"]).exit_code == 2
    r = cli_env.invoke(hl7_app, ["inbox", "rerun-all"])
    assert r.exit_code == 1 and "ALL-1" in r.output and "ALL-2" in r.output  # nobody registered yet
    for mrn, name in (("R1", "一"), ("R2", "二"), ("R3", "三"), ("R4", "四")):
        _store_and_process(db, adt(world.org_a_code, f"ALL-REG-{mrn}", mrn=mrn, family="钱", given=name,
                                   birth=f"19{60 + int(mrn[1])}0101"))
    r = cli_env.invoke(hl7_app, ["inbox", "rerun-all"])
    assert r.exit_code == 0, r.output
    assert "processed 2" in r.output.replace("已处理 / ", "")
    with db.session() as s:
        from onetrip.interop.hl7v2.models import InboxMessage

        assert {s.get(InboxMessage, i).status for i in (a, b)} == {"processed"}
