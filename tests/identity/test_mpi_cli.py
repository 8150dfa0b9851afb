"""Issue 3 §3: ``onetrip mpi train | relink | dedupe`` against a real database and real files."""

from __future__ import annotations

import datetime as dt

import pytest
import typer
from sqlalchemy import select
from typer.testing import CliRunner

from onetrip.cli.mpi import mpi_app
from onetrip.identity.models import MatchModel, MatchReview, PersonMerge
from onetrip.identity.schemas import PatientInput
from onetrip.persons.models import PatientRecord
from tests.factories import register_patient

app = typer.Typer()
app.add_typer(mpi_app, name="mpi")



CSV = """record_id,source,name,sex,birth_date,id_number,phone,address
r1,LH1,陈丽,女,1980-03-04,,13700001234,浙江省沧澜市青溪区文昌街道翠湖小区3幢2单元501室
r2,BC03,陳麗,2,1980-03-04,,137 0000 1234,青溪区文昌街道翠湖3-2-501
r3,BC03,王伟,1,1975-13-01,12345,,
r4,LH1,王伟,男,1975-01-13,,,
r5,X,,9,,,,
"""


def test_dedupe_writes_one_row_per_record_and_reports_bad_values(tmp_path):
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    src.write_text(CSV, encoding="utf-8")
    r = CliRunner().invoke(app, ["mpi", "dedupe", str(src), "--out", str(out)])
    assert r.exit_code == 0, r.output
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "record_id,person_id" and len(lines) == 6
    got = dict(line.split(",") for line in lines[1:])
    assert got["r1"] == got["r2"] and len({got["r3"], got["r4"], got["r5"], got["r1"]}) == 4
    assert "line 4" in r.output and "birth_date" in r.output and "id_number" in r.output and "line 6" in r.output


@pytest.mark.parametrize(("content", "message"), [
    ("a,b\n1,2\n", "missing columns"),
    ("record_id,source,name,sex,birth_date,id_number,phone,address\nx,,a,,,,,\nx,,b,,,,,\n", "duplicate record_id"),
])
def test_dedupe_refuses_unreadable_files(tmp_path, content, message):
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    src.write_text(content, encoding="utf-8")
    r = CliRunner().invoke(app, ["mpi", "dedupe", str(src), "--out", str(out)])
    assert r.exit_code == 2 and message in r.output and not out.exists()


def test_dedupe_refuses_non_utf8(tmp_path):
    src = tmp_path / "in.csv"
    src.write_bytes(CSV.encode("gbk"))
    r = CliRunner().invoke(app, ["mpi", "dedupe", str(src), "--out", str(tmp_path / "o.csv")])
    assert r.exit_code == 2 and "UTF-8" in r.output


@pytest.mark.slow
def test_train_on_demo_data_saves_a_version(cli_env, db, tmp_path):
    out = tmp_path / "m.json"
    r = cli_env.invoke(app, ["mpi", "train", "--demo-residents", "1500", "--max-pairs", "2e5", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert out.exists()
    with db.session() as s:
        assert s.scalars(select(MatchModel)).first() is not None
        s.execute(MatchModel.__table__.delete())
        s.commit()


def test_train_on_an_empty_registry_says_why(cli_env):
    r = cli_env.invoke(app, ["mpi", "train", "--no-save"])
    assert r.exit_code in (0, 2)
    if r.exit_code == 2:
        assert "too few records" in r.output


def test_relink_links_singletons_and_queues_the_rest(cli_env, db, world):
    from onetrip.identity import mpi
    from onetrip.identity import service as identity
    from onetrip.kit.principal import cli_principal

    # Two registrations the online matcher could not join (the rule table's thresholds were higher
    # then); relink with the normal thresholds links them.
    from onetrip.rules.service import set_rule

    with db.session() as s:
        set_rule(s, "mpi", "link_threshold", 999.0, by="test", effective_from=dt.date(2021, 1, 1))
        set_rule(s, "mpi", "review_threshold", 999.0, by="test", effective_from=dt.date(2021, 1, 1))
        s.commit()
    kw = dict(sex="2", birth_date=dt.date(1966, 6, 6), phone="13700004545", district="青溪区", street="文昌街道",
              address_line="柳塘村5组18号")
    ids = []
    with db.session() as s:
        for org, name, mrn in ((world.org_a, "何秀兰", "RL-1"), (world.org_b, "何秀蘭", "RL-2")):
            ids.append(identity.register(s, cli_principal(), PatientInput(organization_id=org, mrn=mrn, name=name,
                                                                          **kw)).id)
        s.commit()
        a, b = s.get(PatientRecord, ids[0]), s.get(PatientRecord, ids[1])
        assert a.person_id != b.person_id
        # back to the seeded thresholds
        from onetrip.rules.models import RuleValue

        s.execute(RuleValue.__table__.delete().where(RuleValue.updated_by == "test"))
        s.commit()
    extra = register_patient(db, world.org_a, name="何秀", birth_date=dt.date(1966, 6, 6), sex="2")
    r = cli_env.invoke(app, ["mpi", "relink"])
    assert r.exit_code == 0, r.output
    with db.session() as s:
        a, b = s.get(PatientRecord, ids[0]), s.get(PatientRecord, ids[1])
        assert a.person_id == b.person_id
        m = s.scalars(select(PersonMerge).where(PersonMerge.kind == "link")).all()
        assert m and all(x.status == "active" for x in m)
        assert s.get(PatientRecord, extra).link_method == "new"
        assert mpi.thresholds(s)["link_threshold"] == 16.0
    r = cli_env.invoke(app, ["mpi", "relink"])  # idempotent: nothing new
    assert r.exit_code == 0 and "0 links" in " ".join(r.output.split()), r.output
    with db.session() as s:
        assert all(i.source in ("online", "relink") for i in s.scalars(select(MatchReview)))
