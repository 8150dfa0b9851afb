"""The schedule table: one row per vaccine dose and edition of the programme (RULES §6).

A new edition is data: rows with a new ``edition`` and ``effective_from``; the forecaster uses the edition in
force on the assessment date. Seeded from ``db/seeds/immunization_schedule.json`` (2021 and 2025 editions) by
``onetrip db upgrade``; a seeded row an operator changed is never overwritten.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from onetrip.db.base import Base, IdMixin, JSONVariant, TimestampMixin


class ScheduleDose(IdMixin, TimestampMixin, Base):
    """One dose of one series in one edition (e.g. 2025 / DTaP / 3 / DTaP at 6 m, complete before 12 m)."""

    __tablename__ = "imm_schedule_dose"
    __table_args__ = (UniqueConstraint("edition", "series", "dose_number"),)
    edition: Mapped[str] = mapped_column(String(16), doc="2021, 2025, ...")
    effective_from: Mapped[dt.date] = mapped_column(doc="the edition is used for assessments from this date")
    series: Mapped[str] = mapped_column(String(16), doc="HepB, BCG, Polio, DTaP, MPSV-A, MMR, JE-L, ...")
    dose_number: Mapped[int] = mapped_column(doc="within the series (polio: IPV 1-2, bOPV 3-4)")
    vaccine_code: Mapped[str] = mapped_column(String(16), doc="CodeSystem nip-vaccine (docs/immunization.md)")
    min_age: Mapped[str] = mapped_column(String(8), doc="R6.1 minimum age: 0d (birth), 1m, 6m, 2y ...")
    complete_before: Mapped[str | None] = mapped_column(String(8), doc="R6.1 complete-before age; none: never "
                                                                       "overdue")
    intervals: Mapped[list[dict]] = mapped_column(JSONVariant, default=list,
                                                  doc="R6.2 [{from_dose, min}] from earlier doses of the series")
    live_injectable: Mapped[bool] = mapped_column(default=False, doc="R6.2: 28 days from other live injectables")
    sex: Mapped[str | None] = mapped_column(String(8), doc="female: girls only (HPV2)")
    alt_group: Mapped[str | None] = mapped_column(String(16), doc="alternative products: JE (JE-L/JE-I), HepA")
    alt_rank: Mapped[int] = mapped_column(default=1, doc="the lowest rank is forecast until a product is chosen")
    citation: Mapped[str | None] = mapped_column(String(255))
    note: Mapped[str | None] = mapped_column(Text)
    updated_by: Mapped[str] = mapped_column(String(64), default="seed")


# --- Vaccines and traceability (issue 20 point 2; RULES R6.6) -------------------------------------------------

LOT_STATUSES = ("available", "quarantined", "expired")
VACCINATION_STATUSES = ("completed", "entered-in-error", "not-done")  # not-done: reported elsewhere


class Fridge(IdMixin, TimestampMixin, Base):
    """A vaccine refrigerator (or freezer) of a clinic: where packages are kept; the cold chain (R6.7) watches it."""

    __tablename__ = "imm_fridge"
    __table_args__ = (UniqueConstraint("organization_id", "name"),)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organization.id"), index=True)
    name: Mapped[str] = mapped_column(String(64), doc="as labelled in the clinic, e.g. 冷藏柜1")
    frozen: Mapped[bool] = mapped_column(default=False, doc="R6.7: a freezer (≤ −20 °C) rather than 2–8 °C")
    sensor_key_hash: Mapped[str | None] = mapped_column(String(64), doc="sha256 of the sensor's key (shown once)")


class VaccineProduct(IdMixin, TimestampMixin, Base):
    """A vaccine product: what the marketing-authorisation holder (上市许可持有人) sells in one specification."""

    __tablename__ = "imm_vaccine_product"
    __table_args__ = (UniqueConstraint("vaccine_code", "name", "holder", "specification"),)
    vaccine_code: Mapped[str] = mapped_column(String(16), doc="CodeSystem nip-vaccine (the forecaster's codes)")
    name: Mapped[str] = mapped_column(String(128))
    holder: Mapped[str] = mapped_column(String(128), doc="R6.6 marketing-authorisation holder")
    specification: Mapped[str] = mapped_column(String(64), doc="e.g. 0.5 mL/支")
    doses_per_package: Mapped[int] = mapped_column(doc="doses in the smallest package (one trace code)")


class VaccineLot(IdMixin, TimestampMixin, Base):
    """One lot (批号) of a product, with its expiry; quarantined lots (cold-chain excursion) cannot be used."""

    __tablename__ = "imm_vaccine_lot"
    __table_args__ = (UniqueConstraint("product_id", "lot_number"),)
    product_id: Mapped[str] = mapped_column(ForeignKey("imm_vaccine_product.id"), index=True)
    lot_number: Mapped[str] = mapped_column(String(64))
    expiry: Mapped[dt.date] = mapped_column(doc="R6.6: usable through this day")
    status: Mapped[str] = mapped_column(String(16), default="available", doc="available | quarantined | expired")
    status_note: Mapped[str | None] = mapped_column(Text)


class VaccinePackage(IdMixin, TimestampMixin, Base):
    """The smallest package, identified by its 20-character trace code (追溯码, R6.6); one scan uses one dose."""

    __tablename__ = "imm_vaccine_package"
    __table_args__ = (CheckConstraint("doses_left >= 0 AND doses_left <= doses_total", name="doses_in_range"),)
    trace_code: Mapped[str] = mapped_column(String(20), unique=True)
    lot_id: Mapped[str] = mapped_column(ForeignKey("imm_vaccine_lot.id"), index=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organization.id"), index=True, doc="the clinic")
    fridge_id: Mapped[str | None] = mapped_column(ForeignKey("imm_fridge.id"), index=True)
    doses_total: Mapped[int] = mapped_column()
    doses_left: Mapped[int] = mapped_column(doc="decremented by a conditional UPDATE per recorded dose")
    received_at: Mapped[dt.datetime] = mapped_column()
    inbound_ref: Mapped[str | None] = mapped_column(String(64), doc="the county CDC's delivery number")


class Vaccination(IdMixin, TimestampMixin, Base):
    """A dose given (R6.6 record: vaccine, holder, trace code, lot, expiry, time, vaccinator, recipient). Never
    deleted: a wrong record is marked entered-in-error with the reason (kept ≥ 5 years after expiry)."""

    __tablename__ = "imm_vaccination"
    # A dose recorded elsewhere (issue 20 point 7) is stored once per sender's identifier: NULLs (desk rows)
    # never collide on either database.
    __table_args__ = (UniqueConstraint("source", "external_id"),)
    person_id: Mapped[str] = mapped_column(ForeignKey("person.id"), index=True, doc="the recipient")
    patient_record_id: Mapped[str] = mapped_column(ForeignKey("patient_record.id"), index=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organization.id"), index=True,
                                                 doc="the clinic (for a dose given elsewhere: who reported it)")
    vaccine_code: Mapped[str] = mapped_column(String(16), index=True)
    dose_number: Mapped[int] = mapped_column(doc="within the series (the forecaster's dose number)")
    # Only our desk fills the package, product and trace code; a dose given elsewhere may lack the rest too.
    product_id: Mapped[str | None] = mapped_column(ForeignKey("imm_vaccine_product.id"))
    holder: Mapped[str | None] = mapped_column(String(128))
    package_id: Mapped[str | None] = mapped_column(ForeignKey("imm_vaccine_package.id"), index=True)
    trace_code: Mapped[str | None] = mapped_column(String(20), index=True)
    lot_number: Mapped[str | None] = mapped_column(String(64))
    expiry: Mapped[dt.date | None] = mapped_column()
    occurred_at: Mapped[dt.datetime] = mapped_column(index=True)
    vaccinator_id: Mapped[str | None] = mapped_column(String(64))
    vaccinator_name: Mapped[str | None] = mapped_column(String(128))
    site: Mapped[str | None] = mapped_column(String(32), doc="e.g. left-deltoid, right-thigh, oral")
    route: Mapped[str | None] = mapped_column(String(16), doc="IM, SC, ID, PO")
    status: Mapped[str] = mapped_column(String(24), default="completed",
                                        doc="completed | entered-in-error | not-done (reported elsewhere)")
    error_reason: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(8), default="desk",
                                        doc="desk | fhir | hl7v2: how the record reached us")
    external_id: Mapped[str | None] = mapped_column(String(200), doc="the sender's identifier (system|value)")
    recorded_at_name: Mapped[str | None] = mapped_column(String(200), doc="where it was given, when not ours")
    primary_source: Mapped[bool] = mapped_column(default=True,
                                                 doc="FHIR primarySource: recorded by who gave it")


class TemperatureReading(IdMixin, TimestampMixin, Base):
    """One temperature of a fridge: from its sensor or the manual morning/afternoon record (R6.7)."""

    __tablename__ = "imm_temperature"
    fridge_id: Mapped[str] = mapped_column(ForeignKey("imm_fridge.id"), index=True)
    measured_at: Mapped[dt.datetime] = mapped_column(index=True)
    celsius: Mapped[float] = mapped_column()
    source: Mapped[str] = mapped_column(String(8), doc="sensor | manual")
    recorded_by: Mapped[str | None] = mapped_column(String(64), doc="the user of a manual record")
    excursion: Mapped[bool] = mapped_column(default=False, doc="outside the fridge's range (R6.7)")


class ColdChainAlarm(IdMixin, TimestampMixin, Base):
    """An excursion: the fridge's lots are quarantined until a person releases them with a note (R6.7)."""

    __tablename__ = "imm_cold_chain_alarm"
    fridge_id: Mapped[str] = mapped_column(ForeignKey("imm_fridge.id"), index=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organization.id"), index=True)
    reading_id: Mapped[str] = mapped_column(ForeignKey("imm_temperature.id"))
    celsius: Mapped[float] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default="open", doc="open | released")
    lot_ids: Mapped[list[str]] = mapped_column(JSONVariant, default=list, doc="the lots this alarm quarantined")
    released_at: Mapped[dt.datetime | None] = mapped_column()
    released_by: Mapped[str | None] = mapped_column(String(128))
    release_note: Mapped[str | None] = mapped_column(Text)


# --- AEFI reports (issue 20 point 5) ---

class AefiReport(IdMixin, TimestampMixin, Base):
    """A suspected adverse event following immunization (疑似预防接种异常反应): reported within 48 h of its
    discovery, within 2 h for death, serious or cluster (群体性) events (R6.7)."""

    __tablename__ = "imm_aefi_report"
    person_id: Mapped[str] = mapped_column(ForeignKey("person.id"), index=True)
    patient_record_id: Mapped[str] = mapped_column(ForeignKey("patient_record.id"), index=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organization.id"), index=True,
                                                 doc="the reporting clinic")
    vaccination_id: Mapped[str | None] = mapped_column(ForeignKey("imm_vaccination.id"), index=True,
                                                       doc="the suspected dose, when known")
    vaccine_code: Mapped[str] = mapped_column(String(16))
    onset_at: Mapped[dt.datetime] = mapped_column()
    discovered_at: Mapped[dt.datetime] = mapped_column(doc="the deadline counts from here (R6.7)")
    severity: Mapped[str] = mapped_column(String(16), doc="general | serious | death")
    cluster: Mapped[bool] = mapped_column(default=False, doc="a cluster (群体性) event")
    symptoms: Mapped[list[str]] = mapped_column(JSONVariant, default=list, doc="short codes: fever, rash, ...")
    description: Mapped[str | None] = mapped_column(Text)
    deadline_at: Mapped[dt.datetime] = mapped_column(index=True, doc="discovered_at + 48 h (2 h urgent), R6.7")
    status: Mapped[str] = mapped_column(String(16), default="draft", index=True, doc="draft | reported | closed")
    created_by: Mapped[str] = mapped_column(String(128))
    reported_at: Mapped[dt.datetime | None] = mapped_column()
    reported_by: Mapped[str | None] = mapped_column(String(128))
    late: Mapped[bool] = mapped_column(default=False, doc="reported after the deadline")
    closed_at: Mapped[dt.datetime | None] = mapped_column()
    closed_by: Mapped[str | None] = mapped_column(String(128))
    outcome: Mapped[str | None] = mapped_column(Text, doc="the closing note")


# --- programmes and coverage (issue 20 point 6) ---

PROGRAMME_KINDS = ("campaign", "cohort")
INVITATION_STATUSES = ("invited", "vaccinated", "declined", "ineligible")
CONTACTS = ("own", "guardian", "none")


class Programme(IdMixin, TimestampMixin, Base):
    """A vaccination programme beyond the childhood schedule's forecast: a campaign (the free influenza
    vaccination of elderly residents) or a cohort (HPV2 for girls reaching 13 in the period)."""

    __tablename__ = "imm_programme"
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name_zh: Mapped[str] = mapped_column(String(128))
    name_en: Mapped[str] = mapped_column(String(128))
    vaccine_code: Mapped[str] = mapped_column(String(16), doc="CodeSystem nip-vaccine (IIV, HPV2, ...)")
    kind: Mapped[str] = mapped_column(String(16), doc="campaign: age on the reference date | cohort: reaching "
                                                      "min_age_years within start..end")
    min_age_years: Mapped[int | None] = mapped_column()
    max_age_years: Mapped[int | None] = mapped_column()
    reference_date: Mapped[dt.date] = mapped_column(doc="a campaign's ages are counted on this day")
    sex: Mapped[str | None] = mapped_column(String(8), doc="female | male; none: everyone")
    organization_id: Mapped[str] = mapped_column(ForeignKey("organization.id"), index=True,
                                                 doc="residents registered at this institution")
    township: Mapped[str | None] = mapped_column(String(64), doc="乡镇/街道 (the person index's street)")
    start_date: Mapped[dt.date] = mapped_column()
    end_date: Mapped[dt.date] = mapped_column()
    free: Mapped[bool] = mapped_column(default=True)
    status: Mapped[str] = mapped_column(String(16), default="active", doc="active | closed")
    created_by: Mapped[str] = mapped_column(String(64))


class Invitation(IdMixin, TimestampMixin, Base):
    """One person invited to a programme (one row per programme and person: never invited twice)."""

    __tablename__ = "imm_invitation"
    __table_args__ = (UniqueConstraint("programme_id", "person_id"),)
    programme_id: Mapped[str] = mapped_column(ForeignKey("imm_programme.id"), index=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("person.id"), index=True)
    patient_record_id: Mapped[str | None] = mapped_column(ForeignKey("patient_record.id"))
    status: Mapped[str] = mapped_column(String(16), default="invited",
                                        doc="invited | vaccinated | declined | ineligible")
    invited_at: Mapped[dt.datetime] = mapped_column()
    contact: Mapped[str] = mapped_column(String(8), doc="own | guardian | none (no phone: nothing sent yet)")
    notification_ref: Mapped[str | None] = mapped_column(String(32), doc="the notification's event id")
    vaccination_id: Mapped[str | None] = mapped_column(ForeignKey("imm_vaccination.id"))
    vaccinated_at: Mapped[dt.datetime | None] = mapped_column()


class Reminder(IdMixin, TimestampMixin, Base):
    """A reminder sent for one due childhood dose (one per child, series and dose: never sent twice)."""

    __tablename__ = "imm_reminder"
    __table_args__ = (UniqueConstraint("person_id", "series", "dose_number"),)
    person_id: Mapped[str] = mapped_column(ForeignKey("person.id"), index=True)
    patient_record_id: Mapped[str | None] = mapped_column(ForeignKey("patient_record.id"))
    series: Mapped[str] = mapped_column(String(16))
    vaccine_code: Mapped[str] = mapped_column(String(16))
    dose_number: Mapped[int] = mapped_column()
    due_date: Mapped[dt.date] = mapped_column()
    sent_at: Mapped[dt.datetime] = mapped_column()
    contact: Mapped[str] = mapped_column(String(8), doc="own | guardian")
    notification_ref: Mapped[str] = mapped_column(String(32), doc="the notification's event id")
