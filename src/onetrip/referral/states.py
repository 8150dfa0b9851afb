"""The referral lifecycle as pure code (issue 6 §1): no database, no clock — only the table of legal
transitions and the function that applies an action to a status.

    draft ──submit──▶ submitted ──accept──▶ accepted ──schedule──▶ scheduled ──arrive──▶ arrived ──complete──▶ completed
      │                 │  │  └──reject (reason)──▶ rejected             │                  ▲
      │                 │  └──expire (SLA, by the job)──▶ expired        └──────arrive──────┘ (walk-in)
      └──cancel──▶ cancelled ◀──cancel── submitted | accepted | scheduled

``reschedule`` keeps a scheduled referral scheduled (new appointment). Terminal states accept nothing.
FHIR: ServiceRequest.status and Task.status follow from the state (``fhir_status``).
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    draft = "draft"
    submitted = "submitted"
    accepted = "accepted"
    rejected = "rejected"
    scheduled = "scheduled"
    arrived = "arrived"
    completed = "completed"
    cancelled = "cancelled"
    expired = "expired"


class Action(StrEnum):
    submit = "submit"
    accept = "accept"
    reject = "reject"
    schedule = "schedule"
    reschedule = "reschedule"
    arrive = "arrive"
    complete = "complete"
    cancel = "cancel"
    expire = "expire"


S, A = Status, Action

TRANSITIONS: dict[tuple[Status, Action], Status] = {
    (S.draft, A.submit): S.submitted,
    (S.draft, A.cancel): S.cancelled,
    (S.submitted, A.accept): S.accepted,
    (S.submitted, A.reject): S.rejected,
    (S.submitted, A.cancel): S.cancelled,
    (S.submitted, A.expire): S.expired,
    (S.accepted, A.schedule): S.scheduled,
    (S.accepted, A.arrive): S.arrived,
    (S.accepted, A.cancel): S.cancelled,
    (S.scheduled, A.reschedule): S.scheduled,
    (S.scheduled, A.arrive): S.arrived,
    (S.scheduled, A.cancel): S.cancelled,
    (S.arrived, A.complete): S.completed,
}

TERMINAL = frozenset({S.rejected, S.completed, S.cancelled, S.expired})
OPEN = frozenset(Status) - TERMINAL

# Which side may take each action: the sender, the receiver, or the system job (expiry).
SENDER_ACTIONS = frozenset({A.submit, A.cancel})
RECEIVER_ACTIONS = frozenset({A.accept, A.reject, A.schedule, A.reschedule, A.arrive, A.complete})
SYSTEM_ACTIONS = frozenset({A.expire})
# The sender may also book the reserved slot while sending (号源下沉): schedule right after acceptance.
SENDER_MAY_ALSO = frozenset({A.schedule, A.reschedule})

# The event type written to the outbox for the state reached (CONTRACTS.md: referral.<state>).
EVENT_FOR = {s: f"referral.{s.value}" for s in Status}

# FHIR ServiceRequest.status / Task.status for each state.
FHIR_STATUS: dict[Status, tuple[str, str]] = {
    S.draft: ("draft", "draft"),
    S.submitted: ("active", "requested"),
    S.accepted: ("active", "accepted"),
    S.rejected: ("revoked", "rejected"),
    S.scheduled: ("active", "in-progress"),
    S.arrived: ("active", "in-progress"),
    S.completed: ("completed", "completed"),
    S.cancelled: ("revoked", "cancelled"),
    S.expired: ("revoked", "failed"),
}


class IllegalTransition(ValueError):
    def __init__(self, status: str, action: str) -> None:
        super().__init__(f"cannot {action} a referral that is {status}")
        self.status, self.action = status, action


def next_status(status: str, action: str) -> Status:
    """The status after ``action``, or IllegalTransition. The only way a referral changes state."""
    try:
        key = (Status(status), Action(action))
    except ValueError:
        raise IllegalTransition(status, action) from None
    if key not in TRANSITIONS:
        raise IllegalTransition(status, action)
    return TRANSITIONS[key]


def allowed_actions(status: str) -> list[Action]:
    return [a for (s, a) in TRANSITIONS if s == status]


def fhir_status(status: str) -> tuple[str, str]:
    """(ServiceRequest.status, Task.status)."""
    return FHIR_STATUS[Status(status)]


def status_for_fhir_task(task_status: str) -> Status | None:
    """The state a HIS means when it sets Task.status (accept / reject / complete through FHIR)."""
    return {"accepted": S.accepted, "rejected": S.rejected, "in-progress": S.arrived,
            "completed": S.completed, "cancelled": S.cancelled, "requested": S.submitted}.get(task_status)
