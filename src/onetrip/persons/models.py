"""The person key every clinical table carries: ``Person`` (the resident) and ``PatientRecord`` (one
institution's registration of them, its MRN; FHIR ``Patient``).

They sit in the spine, below ``access`` (whose policy asks which institutions hold a record of a person) and
below ``identity`` (the master patient index that matches, links and merges them)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from onetrip.db.base import Base, IdMixin, SearchKey, TimestampMixin, VersionedMixin


class AddressMixin:
    province: Mapped[str | None] = mapped_column(String(32))
    city: Mapped[str | None] = mapped_column(String(32))
    district: Mapped[str | None] = mapped_column(String(32))
    street: Mapped[str | None] = mapped_column(String(64), doc="街道/乡镇")
    address_line: Mapped[str | None] = mapped_column(String(255), doc="村/小区, 门牌")


class Person(IdMixin, TimestampMixin, VersionedMixin, AddressMixin, Base):
    """The resident. Demographics here are the best-known values across the person's records."""

    __tablename__ = "person"
    id_number: Mapped[str | None] = mapped_column(String(18), unique=True, doc="居民身份证号 (18, validated R7.1)")
    name: Mapped[str] = mapped_column(SearchKey(64), doc="simplified Chinese")
    name_pinyin: Mapped[str] = mapped_column(SearchKey(128))
    sex: Mapped[str] = mapped_column(String(1), doc="GB/T 2261.1 (R7.2)")
    birth_date: Mapped[dt.date | None]
    phone: Mapped[str | None] = mapped_column(String(20), doc="E.164 (R7.5)")
    deceased: Mapped[bool] = mapped_column(default=False)
    merged_into_id: Mapped[str | None] = mapped_column(
        ForeignKey("person.id"), index=True,
        doc="set when this person was merged into another (FHIR Patient.link replaced-by); cleared by unmerge")


class PatientRecord(IdMixin, TimestampMixin, VersionedMixin, AddressMixin, Base):
    """One institution's registration of a resident. FHIR ``Patient`` at our boundary."""

    __tablename__ = "patient_record"
    __table_args__ = (
        UniqueConstraint("organization_id", "mrn"),
        Index("ix_patient_record_name_pinyin_birth", "name_pinyin", "birth_date"),
        Index("ix_patient_record_birth_sex_district", "birth_date", "sex", "district"),  # MPI blocking key
    )
    person_id: Mapped[str] = mapped_column(ForeignKey("person.id"), index=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organization.id"), index=True)
    mrn: Mapped[str] = mapped_column(String(64), index=True, doc="病案号/门诊号 at this institution")
    id_number: Mapped[str | None] = mapped_column(String(18), index=True)
    name: Mapped[str] = mapped_column(SearchKey(64), index=True)
    name_pinyin: Mapped[str] = mapped_column(SearchKey(128))
    sex: Mapped[str] = mapped_column(String(1))
    birth_date: Mapped[dt.date | None]
    phone: Mapped[str | None] = mapped_column(String(20), index=True)
    active: Mapped[bool] = mapped_column(default=True)
    deleted_at: Mapped[dt.datetime | None]
    link_method: Mapped[str] = mapped_column(
        String(16), default="new", doc="how person_id was set: id_number | new | mpi | manual"
    )
    replaced_by_id: Mapped[str | None] = mapped_column(
        ForeignKey("patient_record.id"),
        doc="a duplicate registration at the same institution merged into this record (Patient.link replaced-by)")
