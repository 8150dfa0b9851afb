"""Records fixtures: the app with the records routers in front of the main FHIR router's catch-all, a
third ("stranger") institution, and tokens whose scopes include the result resources."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass

import pytest

from onetrip.auth.service import create_user
from onetrip.kit.identifiers import make_resident_id
from onetrip.kit.principal import cli_principal
from onetrip.registry import service as registry
from tests.factories import PASSWORD, token, uscc_for

_seq = itertools.count(301, 2)


def resident_id() -> str:
    n = next(_seq)
    return make_resident_id("330281", dt.date(1960, 1, 1) + dt.timedelta(days=n * 41 % 15000), n % 999)


@dataclass
class Rec:
    org_c: str
    his: str  # system client token (system/*.cruds, institution A)
    doc_a: str
    doc_b: str
    doc_c: str  # a clinician at an institution that holds no record of the patients


@pytest.fixture(scope="module")
def rec(db, world, client):
    n = next(_seq) * 7
    with db.session() as s:
        c = registry.create_organization(s, cli_principal(), code=f"SC{n}", name=f"陌生卫生院{n}",
                                         org_type="district_hospital", grade="2A", uscc=uscc_for(9000 + n))
        create_user(s, f"doc_c{n}", PASSWORD, ["clinician"], "陌生医生", c.id)
        s.commit()
        org_c = c.id
    r = client.post("/auth/token", data={"grant_type": "client_credentials", "client_id": world.client_id,
                                         "client_secret": world.client_secret})
    assert r.status_code == 200, r.text
    return Rec(org_c, r.json()["access_token"], token(client, world.users["doc_a"]),
               token(client, world.users["doc_b"]), token(client, f"doc_c{n}"))
