"""Jobs: generate slots from weekly templates (skipping public holidays, working adjusted weekend
days), release unused reserved places before the slot (R2.4), expire holds. The caller owns the
transaction (CLI ``onetrip scheduling ...`` or a scheduler)."""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict

from sqlalchemy.orm import Session

from onetrip.kit.clock import local_datetime, utcnow
from onetrip.outbox.service import record_event
from onetrip.scheduling import repository as repo
from onetrip.scheduling.calendar import template_weekday
from onetrip.scheduling.models import Slot, WeeklyTemplate
from onetrip.scheduling.service import _release, settings


def reserved_places(capacity: int, places_before: int, share: float) -> int:
    """R2.4: reserve ``share`` of a block's places, spread evenly — cumulatively, so one-place slots
    get every 5th slot reserved at 20% and a 10-place slot gets 2 places."""
    if share <= 0:
        return 0
    return min(capacity, math.floor((places_before + capacity) * share + 1e-9) - math.floor(places_before * share + 1e-9))


def _template_runs(t: WeeklyTemplate, day: dt.date) -> bool:
    return (t.valid_from is None or t.valid_from <= day) and (t.valid_to is None or day <= t.valid_to)


def generate_slots(session: Session, *, start: dt.date, days: int, organization_id: str | None = None,
                   resource_ids: list[str] | None = None) -> int:
    """Create the missing slots for ``days`` days from ``start`` (local dates). Idempotent: existing
    slots are kept. No slots on a public holiday or on a closure; adjusted working weekend days (调休)
    run Monday's template. Returns the number of slots created."""
    cfg = settings(session, start)
    default_share = float(cfg.get("reserved_share", 0.0))  # type: ignore[arg-type]
    default_purpose = str(cfg.get("reserved_purpose", "primary_care"))
    release_hours = float(cfg.get("reserved_release_hours", 24))  # type: ignore[arg-type]
    resources = [r for r in repo.resources(session, organization_id=organization_id)
                 if resource_ids is None or r.id in resource_ids]
    if not resources:
        return 0
    by_res: dict[str, list[WeeklyTemplate]] = defaultdict(list)
    for t in repo.templates_of(session, [r.id for r in resources]):
        by_res[t.resource_id].append(t)
    end = start + dt.timedelta(days=days - 1)
    closed: dict[str | None, list] = defaultdict(list)
    for c in repo.closures(session, list({r.organization_id for r in resources}), start, end):
        closed[c.resource_id or f"org:{c.organization_id}"].append(c)
    existing = repo.existing_slot_starts(session, [r.id for r in resources], local_datetime(start, "00:00"),
                                         local_datetime(end + dt.timedelta(days=1), "00:00"))
    created = 0
    for day in (start + dt.timedelta(days=i) for i in range(days)):
        weekday = template_weekday(day)
        if weekday is None:
            continue  # public holiday
        for r in resources:
            if any(c.starts_on <= day <= c.ends_on for c in closed[r.id] + closed[f"org:{r.organization_id}"]):
                continue
            for t in sorted(by_res[r.id], key=lambda t: t.start_time):
                if t.weekday != weekday or not _template_runs(t, day):
                    continue
                share = default_share if t.reserved_share is None else t.reserved_share
                purpose = t.reserved_purpose or default_purpose
                at, block_end = local_datetime(day, t.start_time), local_datetime(day, t.end_time)
                places_before = 0
                while at + dt.timedelta(minutes=t.slot_minutes) <= block_end:
                    reserved = reserved_places(t.capacity, places_before, share)
                    places_before += t.capacity
                    if (r.id, at) not in existing:
                        session.add(Slot(
                            resource_id=r.id, organization_id=r.organization_id, start=at,
                            end=at + dt.timedelta(minutes=t.slot_minutes), capacity=t.capacity, booked=0,
                            reserved=reserved, reserved_booked=0, reserved_purpose=purpose if reserved else None,
                            release_at=at - dt.timedelta(hours=release_hours) if reserved else None,
                        ))
                        existing.add((r.id, at))
                        created += 1
                    at += dt.timedelta(minutes=t.slot_minutes)
    session.flush()
    if created:
        record_event(session, "slots.generated", "Schedule", organization_id or "all",
                     {"start": start.isoformat(), "days": days, "created": created})
    return created


def release_reserved(session: Session, now: dt.datetime | None = None) -> int:
    """R2.4: reserved places still unused at their release time become general places. (Booking
    already treats them as released after ``release_at``; this makes the counters say so.)"""
    n = repo.release_reserved(session, now or utcnow())
    if n:
        record_event(session, "slots.reserved-released", "Slot", "batch", {"slots": n})
    return n


def expire_holds(session: Session, now: dt.datetime | None = None) -> int:
    """Holds (pending appointments) past their expiry give their place back."""
    held = repo.expired_holds(session, now or utcnow())
    for appt in held:
        _release(session, appt, "hold-expired")
        record_event(session, "appointment.hold-expired", "Appointment", appt.id, {}, person_id=appt.person_id)
    return len(held)
