"""Referral fixtures: the shared world (lead hospital A, branch B) plus the 基层科 department at A and
patients registered at the branch."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from onetrip.kit.identifiers import make_resident_id
from onetrip.kit.principal import Principal
from onetrip.kit.scopes import parse_scopes, scopes_for_roles
from onetrip.persons.models import PatientRecord
from onetrip.registry.models import Department, User
from tests.factories import register_patient

_seq = itertools.count(301, 2)


def resident_id() -> str:
    n = next(_seq)
    return make_resident_id("330281", dt.date(1960, 1, 1) + dt.timedelta(days=n * 53 % 20000), n % 999)


def user_principal(db, username: str) -> Principal:
    """The Principal a signed-in user acts as (what the API builds from a token)."""
    with db.session() as s:
        from sqlalchemy import select

        u = s.scalars(select(User).where(User.username == username)).one()
        roles = frozenset(u.roles)
        return Principal(kind="user", id=u.id, name=u.display_name, organization_id=u.organization_id, roles=roles,
                         scopes=scopes_for_roles(roles) or parse_scopes(""), source="test")


@pytest.fixture(scope="module")
def pcd(db, world) -> str:
    """基层科 at the lead hospital."""
    with db.session() as s:
        d = Department(organization_id=world.org_a, code="PCD", name="基层科", specialty="primary_care_management")
        s.add(d)
        s.commit()
        return d.id


@pytest.fixture(scope="module")
def doc_a(db, world) -> Principal:
    return user_principal(db, world.users["doc_a"])


@pytest.fixture(scope="module")
def doc_b(db, world) -> Principal:
    return user_principal(db, world.users["doc_b"])


def branch_patient(db, world, name: str = "李建国") -> tuple[str, str]:
    """(person_id, record_id) of a resident registered at branch B."""
    rec_id = register_patient(db, world.org_b, name=name, id_number=resident_id(), phone="13812345678")
    with db.session() as s:
        return s.get(PatientRecord, rec_id).person_id, rec_id


def lead_patient(db, world, name: str = "张秀英") -> tuple[str, str]:
    """A resident registered at both the lead hospital (record first) and branch B (home branch)."""
    idn = resident_id()
    rec_a = register_patient(db, world.org_a, name=name, id_number=idn)
    register_patient(db, world.org_b, name=name, id_number=idn)
    with db.session() as s:
        return s.get(PatientRecord, rec_a).person_id, rec_a
