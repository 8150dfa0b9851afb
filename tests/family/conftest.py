"""Family-doctor fixtures: a team at the branch centre B of the test world (doctor, nurse, public-health
physician and a specialist from the lead hospital A), a family-doctor user linked to the team's doctor,
and helpers to register residents and enrol them. Everything through the real services."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass

import pytest

from onetrip.auth.service import create_user
from onetrip.family import common, contracts, teams
from onetrip.family.followups import service as followups
from onetrip.kit.identifiers import make_resident_id
from onetrip.kit.principal import Principal, cli_principal
from onetrip.kit.scopes import scopes_for_roles
from onetrip.registry import service as registry
from tests.factories import PASSWORD, auth, register_patient, token

_seq = itertools.count(201, 2)


@dataclass
class Fam:
    org: str  # branch centre (team's institution)
    lead: str  # lead hospital
    team: str
    team2: str
    doctor: str
    doctor2: str
    username: str  # family_doctor user at org, linked to ``doctor``
    user_id: str


def resident_id(birth: dt.date, female: bool = False) -> str:
    n = next(_seq) % 499  # the counter lives for the whole run; wrap it without flipping the sex digit
    return make_resident_id("330281", birth, n * 2 + (2 if female else 1))  # odd = male, even = female


def build_fam(db, world) -> Fam:
    op = cli_principal()
    with db.session() as s:
        def prac(name, qual, org):
            return registry.create_practitioner(s, op, name=name, organization_id=org, qualification=qual,
                                                title="主治医师" if qual == "physician" else "护师").id

        org, lead = world.org_b, world.org_a
        doc, nurse, ph = prac("周明", "physician", org), prac("李静", "nurse", org), prac("王强", "physician", org)
        spec = prac("陈刚", "physician", lead)
        doc2, nurse2 = prac("赵敏", "physician", org), prac("孙丽", "nurse", org)
        n = next(_seq)
        t1 = teams.create_team(s, op, organization_id=org, code=f"T{n}", name=f"周明团队{n}", doctor_id=doc,
                                 nurse_id=nurse, public_health_id=ph, specialist_id=spec)
        t2 = teams.create_team(s, op, organization_id=org, code=f"U{n}", name=f"赵敏团队{n}", doctor_id=doc2,
                                 nurse_id=nurse2, public_health_id=ph)
        user = create_user(s, f"fd{n}", PASSWORD, ["family_doctor"], "周明", org, practitioner_id=doc)
        s.commit()
        return Fam(org, lead, t1.id, t2.id, doc, doc2, user.username, user.id)


@pytest.fixture(scope="module")
def fam(db, world) -> Fam:
    return build_fam(db, world)


def doctor_principal(fam: Fam) -> Principal:
    roles = frozenset({"family_doctor"})
    return Principal(kind="user", id=fam.user_id, name=fam.username, organization_id=fam.org, roles=roles,
                     scopes=scopes_for_roles(roles))


def resident(db, fam: Fam, *, birth: dt.date = dt.date(1958, 3, 4), female: bool = False, name: str = "张伟") -> str:
    """A resident registered at the team's institution; returns the person id."""
    from onetrip.persons.models import PatientRecord

    rec_id = register_patient(db, fam.org, name=name, id_number=resident_id(birth, female), birth_date=birth,
                              sex="2" if female else "1")
    with db.session() as s:
        return s.get(PatientRecord, rec_id).person_id


def enrolled(db, fam: Fam, programme: str = "hypertension", *, birth: dt.date = dt.date(1958, 3, 4),
             enrolled_on: dt.date | None = None, sign: bool = True) -> tuple[str, str]:
    """A resident signed with ``fam.team`` and enrolled; returns (person id, registry id)."""
    pid = resident(db, fam, birth=birth)
    with db.session() as s:
        if sign:
            contracts.sign_contract(s, cli_principal(), person_id=pid, team_id=fam.team)
        reg = followups.enrol(s, cli_principal(), person_id=pid, programme=programme, team_id=fam.team,
                            enrolled_on=enrolled_on or common.today() - dt.timedelta(days=200))
        s.commit()
        return pid, reg.id


@pytest.fixture(scope="module")
def doc_headers(client, fam) -> dict[str, str]:
    return auth(token(client, fam.username))
