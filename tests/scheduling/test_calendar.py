"""Holiday calendar (real 2026 dates from chinese-calendar): no slots on a public holiday, slots on an
adjusted working Saturday or Sunday; reserved places spread by R2.4; closures block slots."""

from __future__ import annotations

import datetime as dt

import pytest

from onetrip.kit.clock import local_date, local_datetime
from onetrip.kit.principal import cli_principal
from onetrip.scheduling import repository as repo
from onetrip.scheduling import service, tasks
from onetrip.scheduling.calendar import is_adjusted_working_day, is_public_holiday, template_weekday


@pytest.mark.parametrize("day,expected", [
    (dt.date(2026, 10, 1), None),  # National Day
    (dt.date(2026, 2, 17), None),  # Spring Festival
    (dt.date(2026, 2, 14), 0),  # Saturday worked for Spring Festival (调休上班) → Monday's template
    (dt.date(2026, 9, 20), 0),  # Sunday worked for National Day
    (dt.date(2026, 3, 7), 5),  # an ordinary Saturday keeps its own (usually empty) template
    (dt.date(2026, 3, 9), 0),  # an ordinary Monday
])
def test_template_weekday(day, expected):
    assert template_weekday(day) == expected


def test_calendar_facts():
    assert is_public_holiday(dt.date(2026, 5, 1)) and not is_public_holiday(dt.date(2026, 5, 9))
    assert is_adjusted_working_day(dt.date(2026, 5, 9)) and not is_adjusted_working_day(dt.date(2026, 5, 16))


def test_reserved_places_spread():
    assert [tasks.reserved_places(1, i, 0.2) for i in range(10)] == [0, 0, 0, 0, 1, 0, 0, 0, 0, 1]
    assert tasks.reserved_places(10, 0, 0.2) == 2 and tasks.reserved_places(5, 0, 0) == 0


def test_generation_around_national_day(db, world):
    """Mon–Fri templates over 2026-09-14 … 2026-10-18: none on 1–7 October (holiday), slots on Sunday
    20 September and Saturday 10 October (adjusted working days), none on ordinary weekends."""
    op = cli_principal()
    with db.session() as s:
        service.seed_catalogue(s)
        r = service.create_resource(s, op, organization_id=world.org_a, code="DR-CAL", name="DR 1", kind="device",
                                    modality="DX", exam_codes=["DR_CHEST"])
        for wd in range(5):
            service.add_template(s, op, r.id, weekday=wd, start_time="08:00", end_time="12:00", slot_minutes=10,
                                 capacity=2, reserved_share=0.2)
        n = tasks.generate_slots(s, start=dt.date(2026, 9, 14), days=35, resource_ids=[r.id])
        again = tasks.generate_slots(s, start=dt.date(2026, 9, 14), days=35, resource_ids=[r.id])
        slots = repo.slots(s, resource_ids=[r.id], limit=100_000)
        s.commit()
    days = {local_date(x.start) for x in slots}
    assert again == 0 and n == len(slots) == len(days) * 24
    assert not any(dt.date(2026, 10, d) in days for d in range(1, 8))
    assert dt.date(2026, 9, 20) in days and dt.date(2026, 10, 10) in days
    assert dt.date(2026, 9, 19) not in days and dt.date(2026, 10, 17) not in days
    first = min(slots, key=lambda x: x.start)
    assert first.start == local_datetime(dt.date(2026, 9, 14), "08:00")
    assert sum(x.reserved for x in slots if local_date(x.start) == dt.date(2026, 9, 14)) == int(48 * 0.2)  # floor: never more than the share


def test_closure_blocks_and_skips(db, world):
    op = cli_principal()
    with db.session() as s:
        r = service.create_resource(s, op, organization_id=world.org_a, code="MR-CL", name="MR 1", kind="device",
                                    modality="MR", exam_codes=["MR_HEAD"])
        for wd in range(5):
            service.add_template(s, op, r.id, weekday=wd, start_time="08:00", end_time="09:00", slot_minutes=30)
        tasks.generate_slots(s, start=dt.date(2026, 11, 30), days=5, resource_ids=[r.id])
        service.add_closure(s, op, organization_id=world.org_a, resource_id=r.id, starts_on=dt.date(2026, 12, 1),
                            ends_on=dt.date(2026, 12, 1), reason="维护 / maintenance")
        tasks.generate_slots(s, start=dt.date(2026, 12, 7), days=1, resource_ids=[r.id])
        service.add_closure(s, op, organization_id=world.org_a, starts_on=dt.date(2026, 12, 8),
                            ends_on=dt.date(2026, 12, 8))
        assert tasks.generate_slots(s, start=dt.date(2026, 12, 8), days=1, resource_ids=[r.id]) == 0
        slots = repo.slots(s, resource_ids=[r.id])
        s.commit()
    blocked = {local_date(x.start) for x in slots if x.blocked}
    assert blocked == {dt.date(2026, 12, 1)}
