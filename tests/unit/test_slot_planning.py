"""Weekly schedules into slots (time zones, DST, idempotence), overlap, the booking limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consult.booking.policy import (
    BASIC_BOOKING_LIMIT,
    BusyTimes,
    SlotKind,
    WeeklyHours,
    check_booking_limit,
    check_new_hours,
    check_no_overlap,
    consecutive_slots,
    overlapping_hours,
    plan_slots,
)
from consult.domain import Actor, Identity, Role
from consult.errors import Conflict, Invalid, LimitReached

WARSAW = "Europe/Warsaw"
MONDAY = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)  # 07:00 in Warsaw


def hours(**changes: object) -> WeeklyHours:
    values: dict[str, object] = {
        "doctor_id": 1,
        "specialty": "cardiology",
        "kind": SlotKind.STATIONARY,
        "weekday": 0,
        "start_minute": 8 * 60,
        "end_minute": 12 * 60,
        "slot_minutes": 20,
        "timezone": WARSAW,
    }
    values.update(changes)
    return WeeklyHours(**values)  # type: ignore[arg-type]


def test_a_morning_gives_back_to_back_slots_in_utc():
    slots = plan_slots([hours()], MONDAY, days=1)
    assert len(slots) == 12
    assert slots[0].starts_at == datetime(2026, 1, 5, 7, 0, tzinfo=UTC)  # 08:00 CET
    assert slots[-1].ends_at == datetime(2026, 1, 5, 11, 0, tzinfo=UTC)  # 12:00 CET
    assert all(a.ends_at == b.starts_at for a, b in zip(slots, slots[1:], strict=False))


def test_only_the_schedules_weekday_and_only_the_future():
    slots = plan_slots([hours(weekday=2)], MONDAY, days=14)  # Wednesdays
    assert {s.starts_at.date() for s in slots} == {
        datetime(2026, 1, 7).date(),
        datetime(2026, 1, 14).date(),
    }
    # At 09:30 local on Monday, the 08:00 to 09:20 slots are gone.
    late = plan_slots([hours()], MONDAY + timedelta(hours=2, minutes=30), days=1)
    assert late[0].starts_at == datetime(2026, 1, 5, 8, 40, tzinfo=UTC)  # 09:40 local


def test_summer_time_moves_the_utc_start():
    summer = datetime(2026, 7, 6, 4, 0, tzinfo=UTC)  # a Monday, 06:00 CEST
    assert plan_slots([hours()], summer, days=1)[0].starts_at == datetime(
        2026, 7, 6, 6, 0, tzinfo=UTC
    )


def test_a_time_the_clocks_skip_gives_no_slot():
    # Europe/Warsaw springs forward at 02:00 on Sunday 29 March 2026: 02:00-02:59 do not exist.
    night = hours(weekday=6, start_minute=60, end_minute=4 * 60, slot_minutes=30)
    slots = plan_slots([night], datetime(2026, 3, 28, 12, 0, tzinfo=UTC), days=2)
    local = [s.starts_at.astimezone(ZoneInfo(WARSAW)).strftime("%H:%M") for s in slots]
    assert local == ["01:00", "01:30", "03:00", "03:30"]
    assert all(s.ends_at - s.starts_at == timedelta(minutes=30) for s in slots)


def test_a_time_that_happens_twice_gives_one_slot():
    # Back to 02:00 at 03:00 on Sunday 25 October 2026: 02:00-02:59 happen twice.
    night = hours(weekday=6, start_minute=2 * 60, end_minute=3 * 60, slot_minutes=30)
    slots = plan_slots([night], datetime(2026, 10, 24, 12, 0, tzinfo=UTC), days=2)
    assert [s.starts_at for s in slots] == [
        datetime(2026, 10, 25, 0, 0, tzinfo=UTC),
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
    ]


def test_planning_again_over_existing_slots_adds_nothing():
    schedule = [hours(), hours(weekday=3, kind=SlotKind.PHONE)]
    first = plan_slots(schedule, MONDAY, days=14)
    busy = BusyTimes((s.doctor_id, s.starts_at, s.ends_at) for s in first)
    assert plan_slots(schedule, MONDAY, days=14, busy=busy) == []
    # A longer horizon adds only the new days.
    more = plan_slots(schedule, MONDAY, days=21, busy=busy)
    assert len(more) == len(first) // 2 and min(s.starts_at for s in more) > first[-1].starts_at


def test_overlapping_schedules_of_one_doctor_do_not_double_book_them():
    twenty = hours()
    thirty = hours(kind=SlotKind.ONLINE, slot_minutes=30, start_minute=10 * 60, end_minute=13 * 60)
    slots = plan_slots([twenty, thirty], MONDAY, days=1)
    ordered = sorted((s.starts_at, s.ends_at) for s in slots)
    assert all(a[1] <= b[0] for a, b in zip(ordered, ordered[1:], strict=False))
    assert [s.kind for s in slots].count(SlotKind.ONLINE) == 2  # 12:00-12:30, 12:30-13:00
    # Another doctor's slots are not in the way.
    other = plan_slots([twenty, hours(doctor_id=2)], MONDAY, days=1)
    assert len(other) == 24


@given(
    st.lists(
        st.tuples(
            st.integers(0, 6),
            st.integers(0, 23 * 60),
            st.integers(15, 240),
            st.sampled_from([10, 15, 20, 30, 45]),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_a_doctors_slots_never_overlap(rows):
    schedule = [
        hours(weekday=day, start_minute=start, end_minute=min(start + length, 1440), slot_minutes=m)
        for day, start, length, m in rows
    ]
    slots = plan_slots(schedule, MONDAY, days=8)
    ordered = sorted((s.starts_at, s.ends_at) for s in slots)
    assert all(a[1] <= b[0] for a, b in zip(ordered, ordered[1:], strict=False))
    assert all(s.starts_at > MONDAY for s in slots)


def test_busy_times_see_every_kind_of_overlap():
    t0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    busy = BusyTimes([(1, t0, t0 + timedelta(minutes=20))])
    minute = timedelta(minutes=1)
    assert busy.overlaps(1, t0, t0 + 20 * minute)
    assert busy.overlaps(1, t0 - 10 * minute, t0 + minute)
    assert busy.overlaps(1, t0 + 19 * minute, t0 + 40 * minute)
    assert busy.overlaps(1, t0 + 5 * minute, t0 + 6 * minute)
    assert busy.overlaps(1, t0 - minute, t0 + 60 * minute)
    assert not busy.overlaps(1, t0 + 20 * minute, t0 + 40 * minute)
    assert not busy.overlaps(1, t0 - 20 * minute, t0)
    assert not busy.overlaps(2, t0, t0 + 20 * minute)


def test_bad_schedules_are_refused():
    for changes in (
        {"weekday": 7},
        {"start_minute": 600, "end_minute": 600},
        {"end_minute": 1441},
        {"slot_minutes": 0},
    ):
        with pytest.raises(Invalid):
            hours(**changes)
    # A zone nobody knows, or a path, is a clear 400 rather than a crash mid-request.
    for zone in ("Mars/Olympus", "../../etc/passwd", ""):
        with pytest.raises(Invalid, match="unknown time zone") as refused:
            hours(timezone=zone)
        assert refused.value.code == "invalid_schedule"


def test_new_hours_must_fit_one_slot():
    check_new_hours(hours(start_minute=600, end_minute=620, slot_minutes=20))
    with pytest.raises(Invalid, match="not one 30-minute slot fits") as refused:
        check_new_hours(hours(start_minute=600, end_minute=620, slot_minutes=30))
    assert refused.value.code == "invalid_schedule"


def test_hours_of_one_doctor_that_share_time_overlap_whatever_the_kind():
    morning = hours(schedule_id=7)  # Monday 08:00-12:00 Warsaw
    assert overlapping_hours(hours(start_minute=11 * 60, end_minute=13 * 60), [morning], MONDAY)
    found = overlapping_hours(hours(kind=SlotKind.PHONE, start_minute=9 * 60), [morning], MONDAY)
    assert found is morning and found.schedule_id == 7
    # Back to back, another weekday, or another doctor: no overlap.
    for other in (
        hours(start_minute=12 * 60, end_minute=14 * 60),
        hours(start_minute=6 * 60, end_minute=8 * 60),
        hours(weekday=1),
        hours(doctor_id=2),
    ):
        assert overlapping_hours(other, [morning], MONDAY) is None, other


def test_hours_in_another_time_zone_compare_by_the_instant():
    morning = hours()  # 08:00-12:00 Warsaw = 07:00-11:00 UTC in January
    assert overlapping_hours(hours(timezone="UTC", start_minute=10 * 60), [morning], MONDAY)
    assert (
        overlapping_hours(
            hours(timezone="UTC", start_minute=11 * 60, end_minute=12 * 60), [morning], MONDAY
        )
        is None
    )
    # Late Sunday in New York is early Monday in Warsaw.
    sunday_ny = hours(timezone="America/New_York", weekday=6, start_minute=22 * 60, end_minute=1440)
    assert overlapping_hours(sunday_ny, [hours(start_minute=4 * 60, end_minute=7 * 60)], MONDAY)


def test_planned_slots_carry_their_hours():
    slots = plan_slots([hours(schedule_id=3), hours(weekday=1, schedule_id=4)], MONDAY, days=2)
    assert {s.schedule_id for s in slots if s.starts_at.weekday() == 0} == {3}
    assert {s.schedule_id for s in slots if s.starts_at.weekday() == 1} == {4}


def test_consecutive_slots_for_a_scheduler():
    start = datetime(2026, 1, 5, 15, 0, tzinfo=ZoneInfo(WARSAW))
    slots = consecutive_slots(3, "cardiology", SlotKind.PHONE, start, 3, 15)
    assert [s.starts_at for s in slots] == [
        datetime(2026, 1, 5, 14, 0, tzinfo=UTC),
        datetime(2026, 1, 5, 14, 15, tzinfo=UTC),
        datetime(2026, 1, 5, 14, 30, tzinfo=UTC),
    ]
    assert slots[0].starts_at.tzinfo is UTC
    with pytest.raises(Invalid):
        consecutive_slots(3, "cardiology", SlotKind.PHONE, start.replace(second=30), 1, 15)
    with pytest.raises(Invalid):
        consecutive_slots(3, "cardiology", SlotKind.PHONE, start, 0, 15)


def test_the_limit_applies_to_basic_accounts_only():
    basic = Actor(1, Role.PATIENT, Identity.BASIC, "B")
    verified = Actor(2, Role.PATIENT, Identity.VERIFIED, "V")
    check_booking_limit(basic, BASIC_BOOKING_LIMIT - 1)
    with pytest.raises(LimitReached) as refused:
        check_booking_limit(basic, BASIC_BOOKING_LIMIT)
    assert refused.value.code == "booking_limit"
    check_booking_limit(verified, 1000)


def test_a_patient_cannot_be_in_two_places_at_once():
    t0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    mine = [(t0, t0 + timedelta(minutes=20))]
    check_no_overlap(mine, t0 + timedelta(minutes=20), t0 + timedelta(minutes=40))
    with pytest.raises(Conflict) as refused:
        check_no_overlap(mine, t0 + timedelta(minutes=10), t0 + timedelta(minutes=30))
    assert refused.value.code == "booking_overlap"
