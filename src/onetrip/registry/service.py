"""Institutions, departments and practitioners: the directory every other domain reads."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from onetrip.audit import service as audit
from onetrip.kit.errors import AccessDenied, BadRequest, NotFound
from onetrip.kit.identifiers import IdentifierError, normalize_phone, normalize_sex, validate_uscc
from onetrip.kit.names import name_pinyin, normalize_name
from onetrip.kit.principal import Principal
from onetrip.outbox.service import record_event
from onetrip.registry import mapping as registry_fhir
from onetrip.registry.models import (
    Department,
    MedicalCommunity,
    Organization,
    OrgType,
    Practitioner,
)

GRADES = {"3A", "3B", "3C", "3", "2A", "2B", "2C", "2", "1A", "1B", "1C", "1", "none"}


def _admin_only(principal: Principal) -> None:
    if not principal.is_operator:
        raise AccessDenied("只有管理员可以修改机构目录 / only an admin changes the institution directory")


def validate_org_fields(code: str, name: str, org_type: str, grade: str | None, uscc: str | None) -> str | None:
    problems = []
    if not code or not code.replace("-", "").isalnum():
        problems.append(("code", "机构代码只能包含字母、数字和- / code may use letters, digits and -"))
    elif len(code) > 32:  # the columns' widths: PostgreSQL refused longer values, SQLite stored them
        problems.append(("code", "机构代码最长 32 个字符 / the code may be 32 characters at most"))
    if not name.strip():
        problems.append(("name", "机构名称不能为空 / name is required"))
    elif len(name.strip()) > 128:
        problems.append(("name", "机构名称最长 128 个字 / the name may be 128 characters at most"))
    if org_type not in OrgType.__members__:
        problems.append(("type", f"机构类型无效 / unknown type {org_type!r}: {', '.join(OrgType.__members__)}"))
    if grade is not None and grade not in GRADES:
        problems.append(("grade", f"等级无效 / unknown grade {grade!r}: {', '.join(sorted(GRADES))}"))
    clean_uscc = None
    if uscc:
        try:
            clean_uscc = validate_uscc(uscc)
        except IdentifierError as e:
            problems.append(("identifier", str(e)))
    if problems:
        raise BadRequest("；".join(m for _, m in problems), expression=[f for f, _ in problems])
    return clean_uscc


def create_organization(session: Session, principal: Principal, *, code: str, name: str, org_type: str,
                        grade: str | None = None, uscc: str | None = None, parent_id: str | None = None,
                        community_id: str | None = None, name_en: str | None = None, licence_no: str | None = None,
                        address: str | None = None, phone: str | None = None, active: bool = True) -> Organization:
    _admin_only(principal)
    clean_uscc = validate_org_fields(code, name, org_type, grade, uscc)
    if session.scalar(select(Organization.id).where(Organization.code == code)):
        raise BadRequest(f"机构代码已存在 / code {code!r} already exists", status=409, code="duplicate")
    if clean_uscc and session.scalar(select(Organization.id).where(Organization.uscc == clean_uscc)):
        raise BadRequest("统一社会信用代码已登记 / this credit code is already registered", status=409,
                         code="duplicate")
    if parent_id and session.get(Organization, parent_id) is None:
        raise BadRequest("上级机构不存在 / parent organization not found", expression=["partOf"])
    if community_id and session.get(MedicalCommunity, community_id) is None:
        raise BadRequest("医共体不存在 / medical community not found")
    if phone:
        try:
            phone = normalize_phone(phone)
        except IdentifierError as e:
            raise BadRequest(str(e), expression=["telecom"]) from None
    org = Organization(code=code, name=name.strip(), org_type=org_type, grade=grade, uscc=clean_uscc,
                       parent_id=parent_id, community_id=community_id, name_en=name_en, licence_no=licence_no,
                       address=address, phone=phone, active=active)
    session.add(org)
    session.flush()
    registry_fhir.snapshot_organization(session, org, "POST")
    audit.record(session, principal, "create", what=[f"Organization/{org.id}"])
    record_event(session, "organization.created", "Organization", org.id, {"code": code})
    return org


def update_organization(session: Session, principal: Principal, org: Organization, **fields) -> Organization:
    _admin_only(principal)
    clean_uscc = validate_org_fields(fields.get("code", org.code), fields.get("name", org.name),
                                     fields.get("org_type", org.org_type), fields.get("grade", org.grade),
                                     fields.get("uscc", org.uscc))
    fields["uscc"] = clean_uscc
    for k, v in fields.items():
        setattr(org, k, v)
    session.flush()
    registry_fhir.snapshot_organization(session, org, "PUT")
    audit.record(session, principal, "update", what=[f"Organization/{org.id}"])
    record_event(session, "organization.updated", "Organization", org.id, {"version": org.version_id})
    return org


def get_organization(session: Session, org_id: str) -> Organization:
    org = session.get(Organization, org_id)
    if org is None:
        raise NotFound("机构不存在 / organization not found")
    return org


def organization_by_code(session: Session, code: str) -> Organization | None:
    return session.scalar(select(Organization).where(Organization.code == code))


def search_organizations(session: Session, *, name: str | None = None, code: str | None = None,
                         org_type: str | None = None, partof: str | None = None, identifier: str | None = None,
                         count: int = 50, offset: int = 0) -> tuple[list[Organization], bool]:
    stmt = select(Organization)
    if name:
        stmt = stmt.where(Organization.name.contains(name.strip()))
    if code:
        stmt = stmt.where(Organization.code == code)
    if org_type:
        stmt = stmt.where(Organization.org_type == org_type)
    if partof:
        stmt = stmt.where(Organization.parent_id == partof)
    if identifier:
        v = identifier.split("|")[-1].upper()
        stmt = stmt.where((Organization.uscc == v) | (Organization.code == identifier.split("|")[-1]))
    rows = list(session.scalars(stmt.order_by(Organization.code).offset(offset).limit(count + 1)))
    return rows[:count], len(rows) > count


def directory(session: Session) -> list[dict]:
    """The medical-community tree with head counts, for the directory page."""
    orgs = list(session.scalars(select(Organization).order_by(Organization.code)))
    staff = dict(session.execute(
        select(Practitioner.organization_id, func.count()).group_by(Practitioner.organization_id)).all())
    communities = {c.id: c for c in session.scalars(select(MedicalCommunity))}
    out = []
    for o in orgs:
        out.append({"org": o, "staff": staff.get(o.id, 0),
                    "community": communities.get(o.community_id).name if o.community_id in communities else None})
    return out


def departments_of(session: Session, org_id: str) -> list[Department]:
    return list(session.scalars(select(Department).where(Department.organization_id == org_id)
                                .order_by(Department.code)))


def create_practitioner(session: Session, principal: Principal, *, name: str, organization_id: str | None,
                        sex: str | None = None, title: str | None = None, qualification: str | None = None,
                        licence_no: str | None = None, phone: str | None = None, staff_no: str | None = None,
                        department_id: str | None = None, active: bool = True) -> Practitioner:
    if not principal.is_operator and principal.organization_id != organization_id:
        raise AccessDenied("只能登记本机构的医务人员 / you can only register your own institution's staff")
    problems = []
    clean_name = normalize_name(name or "")
    if not clean_name:
        problems.append(("name", "姓名不能为空 / name is required"))
    elif len(clean_name) > 64:  # the column's width: PostgreSQL refused it, SQLite stored it
        problems.append(("name", "姓名最长 64 个字 / the name may be 64 characters at most"))
    try:
        sex_code = normalize_sex(sex)
    except IdentifierError as e:
        problems.append(("gender", str(e)))
        sex_code = "0"
    if phone:
        try:
            phone = normalize_phone(phone)
        except IdentifierError as e:
            problems.append(("telecom", str(e)))
    if organization_id and session.get(Organization, organization_id) is None:
        problems.append(("organization", "机构不存在 / organization not found"))
    if problems:
        raise BadRequest("；".join(m for _, m in problems), expression=[f for f, _ in problems])
    pr = Practitioner(name=clean_name, name_pinyin=name_pinyin(clean_name)[:128], sex=sex_code, title=title,
                      qualification=qualification, licence_no=licence_no, phone=phone, staff_no=staff_no,
                      organization_id=organization_id, department_id=department_id, active=active)
    session.add(pr)
    session.flush()
    registry_fhir.snapshot_practitioner(session, pr, "POST")
    audit.record(session, principal, "create", what=[f"Practitioner/{pr.id}"])
    record_event(session, "practitioner.created", "Practitioner", pr.id, {"organization_id": organization_id})
    return pr


def search_practitioners(session: Session, *, name: str | None = None, organization_id: str | None = None,
                         count: int = 50, offset: int = 0) -> tuple[list[Practitioner], bool]:
    stmt = select(Practitioner)
    if name:
        q = name.strip()
        if q.isascii():
            q = q.replace(" ", "").lower()
            stmt = stmt.where(Practitioner.name_pinyin.startswith(q))
        else:
            stmt = stmt.where(Practitioner.name.startswith(normalize_name(q)))
    if organization_id:
        stmt = stmt.where(Practitioner.organization_id == organization_id)
    rows = list(session.scalars(stmt.order_by(Practitioner.name_pinyin, Practitioner.id).offset(offset).limit(count + 1)))
    return rows[:count], len(rows) > count
