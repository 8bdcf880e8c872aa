"""Booking rules that need no database: slot kinds, turning weekly schedules into slots,
overlap, and the basic account's booking limit."""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from consult.domain import Actor, Identity
from consult.errors import Conflict, Invalid, LimitReached

# A basic (unverified) account holds at most this many active bookings; verified: no limit.
BASIC_BOOKING_LIMIT = 10


class SlotKind(StrEnum):
    STATIONARY = "stationary"
    PHONE = "phone"
    ONLINE = "online"


class BookingStatus(StrEnum):
    ACTIVE = "active"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class WeeklyHours:
    """One row of a doctor's weekly schedule: on ``weekday`` (0 = Monday) from ``start_minute``
    to ``end_minute`` after local midnight in ``timezone``, slots of ``slot_minutes``."""

    doctor_id: int
    specialty: str
    kind: SlotKind
    weekday: int
    start_minute: int
    end_minute: int
    slot_minutes: int
    timezone: str = "UTC"
    # The ``schedules`` row, so that the slots it gives can be found when it is removed.
    schedule_id: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.weekday <= 6:
            raise Invalid("weekday must be 0 (Monday) to 6 (Sunday)", code="invalid_schedule")
        if not 0 <= self.start_minute < self.end_minute <= 24 * 60:
            raise Invalid("a schedule starts before it ends, within a day", code="invalid_schedule")
        if self.slot_minutes <= 0:
            raise Invalid("slot_minutes must be positive", code="invalid_schedule")
        try:  # an unknown zone fails here, not in the middle of generation
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise Invalid(
                f"unknown time zone {self.timezone!r} (an IANA name such as Europe/Warsaw)",
                code="invalid_schedule",
            ) from None

    def windows(self, now: datetime, days: int = 8) -> list[tuple[datetime, datetime]]:
        """The hours' UTC intervals on the ``days`` local days from ``now``'s (with
        ``days`` >= 8, every weekday's at least once)."""
        zone = ZoneInfo(self.timezone)
        today = now.astimezone(zone).date()
        spans = []
        for offset in range(days):
            day = today + timedelta(days=offset)
            if day.weekday() == self.weekday:
                start = datetime.combine(day, time(), tzinfo=zone) + timedelta(
                    minutes=self.start_minute
                )
                end = start + timedelta(minutes=self.end_minute - self.start_minute)
                spans.append((start.astimezone(UTC), end.astimezone(UTC)))
        return spans


def check_new_hours(hours: WeeklyHours) -> None:
    """What new hours must also meet (rows stored before these rules still load)."""
    if hours.end_minute - hours.start_minute < hours.slot_minutes:
        raise Invalid(
            f"not one {hours.slot_minutes}-minute slot fits between start and end",
            code="invalid_schedule",
        )


def overlapping_hours(
    new: WeeklyHours, existing: Iterable[WeeklyHours], now: datetime
) -> WeeklyHours | None:
    """The first of the doctor's ``existing`` hours that share some time with ``new`` (in
    the coming week, so hours in different time zones compare too), or None. A doctor
    cannot be in two places at once, whatever the specialty or kind."""
    mine = new.windows(now)
    for other in existing:
        if other.doctor_id != new.doctor_id:
            continue
        if any(s < e2 and s2 < e for s, e in mine for s2, e2 in other.windows(now)):
            return other
    return None


@dataclass(frozen=True, order=True)
class PlannedSlot:
    starts_at: datetime
    ends_at: datetime
    doctor_id: int
    specialty: str
    kind: SlotKind
    schedule_id: int | None = field(default=None, compare=False)


class BusyTimes:
    """Each doctor's booked-out intervals (their slots), for overlap checks."""

    def __init__(self, intervals: Iterable[tuple[int, datetime, datetime]] = ()) -> None:
        self._by_doctor: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
        for doctor_id, starts_at, ends_at in intervals:
            self._by_doctor[doctor_id].append((starts_at, ends_at))
        for spans in self._by_doctor.values():
            spans.sort()

    def overlaps(self, doctor_id: int, starts_at: datetime, ends_at: datetime) -> bool:
        spans = self._by_doctor.get(doctor_id, [])
        i = bisect.bisect_left(spans, (starts_at, ends_at))
        if i > 0 and spans[i - 1][1] > starts_at:
            return True
        return i < len(spans) and spans[i][0] < ends_at

    def add(self, doctor_id: int, starts_at: datetime, ends_at: datetime) -> None:
        bisect.insort(self._by_doctor[doctor_id], (starts_at, ends_at))


def plan_slots(
    schedules: Iterable[WeeklyHours], now: datetime, days: int, busy: BusyTimes | None = None
) -> list[PlannedSlot]:
    """The slots ``schedules`` give on the ``days`` local days starting today, that start after
    ``now`` and overlap none of the doctor's slots in ``busy`` (nor each other; the first
    schedule wins). Wall-clock times that do not exist on a day (a DST gap) are skipped; times
    that exist twice take their first occurrence."""
    busy = busy or BusyTimes()
    planned: list[PlannedSlot] = []
    for hours in schedules:
        zone = ZoneInfo(hours.timezone)
        today = now.astimezone(zone).date()
        for offset in range(days):
            day = today + timedelta(days=offset)
            if day.weekday() != hours.weekday:
                continue
            for minute in range(
                hours.start_minute, hours.end_minute - hours.slot_minutes + 1, hours.slot_minutes
            ):
                starts_at = _local_to_utc(day, minute, zone)
                if starts_at is None or starts_at <= now:
                    continue
                ends_at = starts_at + timedelta(minutes=hours.slot_minutes)
                if busy.overlaps(hours.doctor_id, starts_at, ends_at):
                    continue
                busy.add(hours.doctor_id, starts_at, ends_at)
                planned.append(
                    PlannedSlot(
                        starts_at,
                        ends_at,
                        hours.doctor_id,
                        hours.specialty,
                        hours.kind,
                        hours.schedule_id,
                    )
                )
    planned.sort()
    return planned


def consecutive_slots(
    doctor_id: int,
    specialty: str,
    kind: SlotKind,
    starts_at: datetime,
    count: int,
    slot_minutes: int,
) -> list[PlannedSlot]:
    """``count`` back-to-back slots from ``starts_at`` (a scheduler opening extra hours)."""
    if not 1 <= count <= 48:
        raise Invalid("count must be 1 to 48", code="invalid_payload")
    if not 5 <= slot_minutes <= 240:
        raise Invalid("slot_minutes must be 5 to 240", code="invalid_payload")
    if starts_at.tzinfo is None:
        raise Invalid("starts_at needs a time zone", code="invalid_payload")
    first = starts_at.astimezone(UTC)
    if first.second or first.microsecond:
        raise Invalid("slots start on a whole minute", code="invalid_payload")
    length = timedelta(minutes=slot_minutes)
    return [
        PlannedSlot(first + i * length, first + (i + 1) * length, doctor_id, specialty, kind)
        for i in range(count)
    ]


def check_booking_limit(actor: Actor, active_bookings: int) -> None:
    if actor.identity is Identity.BASIC and active_bookings >= BASIC_BOOKING_LIMIT:
        raise LimitReached(
            f"a basic account holds at most {BASIC_BOOKING_LIMIT} active bookings; cancel one "
            "or confirm your identity for unlimited bookings",
            code="booking_limit",
            details={"limit": BASIC_BOOKING_LIMIT},
        )


def check_bookable(starts_at: datetime, now: datetime) -> None:
    if starts_at <= now:
        raise Conflict("this slot has already started", code="slot_in_past")


def check_no_overlap(
    mine: Iterable[tuple[datetime, datetime]], starts_at: datetime, ends_at: datetime
) -> None:
    if any(s < ends_at and starts_at < e for s, e in mine):
        raise Conflict("you already have a booking at that time", code="booking_overlap")


def _local_to_utc(day: date, minute: int, zone: ZoneInfo) -> datetime | None:
    local = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=zone)
    utc = local.astimezone(UTC)
    if utc.astimezone(zone).replace(tzinfo=None) != local.replace(tzinfo=None):
        return None  # the clocks skip this time on that day
    return utc
