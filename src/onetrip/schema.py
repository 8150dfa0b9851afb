"""The whole schema: imports every model so Alembic (db/migrations/env.py) and create_all see every table.

It sits in the top layer beside app and cli because it imports every domain; nothing below may import it
(see the import contracts in pyproject.toml)."""

from onetrip.access.models import BreakGlass, CareRelationship, Consent  # noqa: F401
from onetrip.audit.models import AuditChainHead, AuditEvent  # noqa: F401
from onetrip.identity.models import (  # noqa: F401
    MatchModel,
    MatchReview,
    NotAMatch,
    PersonMerge,
)
from onetrip.interop.hl7v2.models import InboxMessage  # noqa: F401
from onetrip.outbox.models import OutboxEvent  # noqa: F401
from onetrip.persons.models import PatientRecord, Person  # noqa: F401
from onetrip.records.models import (  # noqa: F401
    DiagnosticReport,
    ImagingStudy,
    Observation,
    ServiceRequest,
)
from onetrip.registry.models import (  # noqa: F401
    Department,
    MedicalCommunity,
    Organization,
    Practitioner,
    SystemClient,
    User,
    UserSession,
)
from onetrip.rules.models import RuleValue  # noqa: F401
from onetrip.scheduling.models import (  # noqa: F401
    Appointment,
    Closure,
    ExamOrder,
    ExamType,
    Resource,
    Site,
    Slot,
    WeeklyTemplate,
)
from onetrip.versions.models import ResourceVersion  # noqa: F401

# isort: split
from onetrip.recognition.models import (  # noqa: F401
    RecognitionDecision,
    RecognitionInstitution,
    RecognitionItem,
    RecognitionReason,
)

# isort: split
from onetrip.records.models import ReportVersion  # noqa: F401 — issue 4 (rest): corrected-report history

# isort: split
from onetrip.analytics.models import (  # noqa: F401 — issue 8: visits, daily facts, report archive
    AnalyticsCatchment,
    AnalyticsContract,
    AnalyticsCursor,
    AnalyticsEnrolment,
    AnalyticsFact,
    AnalyticsFactMonth,
    AnalyticsFollowup,
    AnalyticsReferral,
    AnalyticsReport,
    Encounter,
)

# isort: split
from onetrip.notify.models import Attempt, Delivery, Feed, Subscription  # noqa: F401

# isort: split
from onetrip.referral.models import Referral, ReferralFollowUp  # noqa: F401

# isort: split
from onetrip.family.models import (  # noqa: F401
    Alert,
    Contract,
    DeliveryOrder,
    Device,
    Followup,
    LongPrescription,
    Reading,
    Registry,
    Team,
)

# isort: split
import onetrip.maternal_child.models  # noqa: F401, E402 — issue 21: pregnancy, child health, screening
from onetrip.immunization.models import (  # noqa: F401 — issue 20: schedule, vaccines, trace codes, vaccinations
    AefiReport,
    ColdChainAlarm,
    Fridge,
    Invitation,
    Programme,
    Reminder,
    ScheduleDose,
    TemperatureReading,
    Vaccination,
    VaccineLot,
    VaccinePackage,
    VaccineProduct,
)
