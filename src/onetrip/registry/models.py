"""Registry tables: the medical community (医共体) hierarchy and the people and systems that act in it."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from onetrip.db.base import Base, IdMixin, JSONVariant, SearchKey, TimestampMixin, VersionedMixin


class OrgType(StrEnum):
    bureau = "bureau"  # 卫健局 — the district health bureau (oversight, no patients)
    lead_hospital = "lead_hospital"  # 总院 — the medical community's lead hospital
    district_hospital = "district_hospital"  # 区级医院 — other district-level hospitals
    branch_centre = "branch_centre"  # 分院 / 社区卫生服务中心 / 乡镇卫生院
    station = "station"  # 社区卫生服务站 / 村卫生室
    public_health = "public_health"  # 疾控 / 妇幼 — public-health institutions


ORG_TYPE_LABELS = {
    OrgType.bureau: "卫健局",
    OrgType.lead_hospital: "医共体总院",
    OrgType.district_hospital: "区级医院",
    OrgType.branch_centre: "社区卫生服务中心/分院",
    OrgType.station: "服务站/村卫生室",
    OrgType.public_health: "公共卫生机构",
}


class Role(StrEnum):
    clinician = "clinician"
    nurse = "nurse"
    scheduler = "scheduler"
    family_doctor = "family_doctor"
    vaccinator = "vaccinator"
    mch_doctor = "mch_doctor"  # 妇幼保健医生 (issue 21)
    bureau_manager = "bureau_manager"
    integration = "integration"  # 接口工程师: the HL7 v2 inbox (issue 4)
    admin = "admin"


class MedicalCommunity(IdMixin, TimestampMixin, Base):
    """医共体: a lead hospital with its branch centres and stations."""

    __tablename__ = "medical_community"
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128))


class Organization(IdMixin, TimestampMixin, VersionedMixin, Base):
    __tablename__ = "organization"
    code: Mapped[str] = mapped_column(String(32), unique=True, doc="Short local code used in URLs and CLI")
    name: Mapped[str] = mapped_column(String(128))
    name_en: Mapped[str | None] = mapped_column(String(128))
    org_type: Mapped[str] = mapped_column(String(32), doc="OrgType")
    grade: Mapped[str | None] = mapped_column(String(16), doc="医院等级, e.g. 3A (三级甲等), 2A, 1, none")
    uscc: Mapped[str | None] = mapped_column(String(18), unique=True, doc="统一社会信用代码 (GB 32100, R7.3)")
    licence_no: Mapped[str | None] = mapped_column(String(64), doc="医疗机构执业许可证登记号")
    community_id: Mapped[str | None] = mapped_column(ForeignKey("medical_community.id"), index=True)
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("organization.id"), index=True)
    address: Mapped[str | None] = mapped_column(String(255))
    phone: Mapped[str | None] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(default=True)


class Department(IdMixin, TimestampMixin, Base):
    __tablename__ = "department"
    __table_args__ = (UniqueConstraint("organization_id", "code"),)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organization.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(128))
    specialty: Mapped[str | None] = mapped_column(String(64))


class Practitioner(IdMixin, TimestampMixin, VersionedMixin, Base):
    __tablename__ = "practitioner"
    organization_id: Mapped[str | None] = mapped_column(ForeignKey("organization.id"), index=True)
    department_id: Mapped[str | None] = mapped_column(ForeignKey("department.id"))
    staff_no: Mapped[str | None] = mapped_column(String(32), doc="工号 within the organisation")
    name: Mapped[str] = mapped_column(String(64))
    name_pinyin: Mapped[str] = mapped_column(SearchKey(128), index=True)
    sex: Mapped[str] = mapped_column(String(1), default="0", doc="GB/T 2261.1")
    title: Mapped[str | None] = mapped_column(String(32), doc="职称, e.g. 主治医师, 护师")
    qualification: Mapped[str | None] = mapped_column(String(32), doc="physician / nurse / pharmacist / technician")
    licence_no: Mapped[str | None] = mapped_column(String(64), doc="执业证书编码")
    practice_since: Mapped[dt.date | None] = mapped_column(doc="first year of clinical practice")
    phone: Mapped[str | None] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(default=True)


class User(IdMixin, TimestampMixin, Base):
    __tablename__ = "app_user"
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(255))
    roles: Mapped[list[str]] = mapped_column(JSONVariant, default=list)
    organization_id: Mapped[str | None] = mapped_column(ForeignKey("organization.id"), index=True)
    practitioner_id: Mapped[str | None] = mapped_column(ForeignKey("practitioner.id"))
    locale: Mapped[str] = mapped_column(String(8), default="zh_CN")
    active: Mapped[bool] = mapped_column(default=True)
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[dt.datetime | None]
    password_changed_at: Mapped[dt.datetime | None]
    last_login_at: Mapped[dt.datetime | None]
    # Second factor (TOTP, RFC 6238) — required for privileged roles (等保 2.0 level 3, RULES §10; migration 0015).
    # The secret is set when enrolment starts and counts only once ``totp_enrolled_at`` is set (a first code
    # confirmed it). ``totp_last_step`` is the 30-second step of the last accepted code: a code of that step or
    # an earlier one is a replay and is refused.
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_enrolled_at: Mapped[dt.datetime | None]
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)


class UserSession(IdMixin, Base):
    """A login. Tokens carry its id, so idle timeout and logout take effect server-side (等保 2.0)."""

    __tablename__ = "user_session"
    user_id: Mapped[str] = mapped_column(ForeignKey("app_user.id"), index=True)
    created_at: Mapped[dt.datetime]
    last_seen_at: Mapped[dt.datetime]
    ended_at: Mapped[dt.datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(32))
    client_address: Mapped[str | None] = mapped_column(String(64))


class RecoveryCode(IdMixin, Base):
    """One of a user's single-use recovery codes for the second factor (shown once at enrolment). Only a SHA-256
    of the code is stored: the codes are 80 random bits, so a fast hash is as safe as a slow one and can be looked
    up by value."""

    __tablename__ = "auth_recovery_code"
    user_id: Mapped[str] = mapped_column(ForeignKey("app_user.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]


class LoginThrottle(Base):
    """Sign-in failure counters, one row per key (RULES §10 login-failure handling; migration 0015): ``a:<address>``
    (a client address), ``p:<user name>|<address>`` (an account from one address) and ``u:<user name>`` (an
    account from anywhere). Keys use the user name as typed, existing or not, so the counters say nothing about
    which accounts exist. A table rather than process memory: every server process reads the same counters."""

    __tablename__ = "auth_throttle"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[dt.datetime]
    failures: Mapped[int] = mapped_column(default=0)
    next_allowed_at: Mapped[dt.datetime | None] = mapped_column(doc="progressive delay: no attempt before this")
    locked_until: Mapped[dt.datetime | None] = mapped_column(doc="pair or account lock")
    addresses: Mapped[list[str]] = mapped_column(JSONVariant, default=list, doc="u: rows: addresses that failed")


class SystemClient(IdMixin, TimestampMixin, Base):
    """An integration (HIS/LIS/PACS, a bureau report tool) using OAuth2 client credentials."""

    __tablename__ = "system_client"
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    secret_hash: Mapped[str] = mapped_column(String(255))
    scopes: Mapped[str] = mapped_column(String(1024), doc="space-separated SMART scopes, e.g. system/*.cruds")
    organization_id: Mapped[str | None] = mapped_column(ForeignKey("organization.id"))
    active: Mapped[bool] = mapped_column(default=True)


Index("ix_organization_type", Organization.org_type)
