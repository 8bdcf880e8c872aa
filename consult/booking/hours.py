"""Doctors' weekly working hours and the slots they give: read, add and remove hours, roll
their slots forward, and open extra slots outside them (a scheduler's work; patients book the
slots in ``service.py``).

``check_*`` functions authorise; the service methods mutate inside one unit of work and audit
every write. A doctor's hours and slots change one scheduler (or generator) at a time: each
writer locks the doctor's user row first.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from consult.accounts.repository import doctor_specialties, specialty_name
from consult.audit import Audit
from consult.booking import repository as repo
from consult.booking.policy import (
    SlotKind,
    WeeklyHours,
    check_new_hours,
    consecutive_slots,
    overlapping_hours,
    plan_slots,
)
from consult.booking.schemas import (
    DoctorsOut,
    ScheduleAddedOut,
    ScheduleChangedOut,
    ScheduleOut,
    ScheduleRemovedOut,
    SchedulesOut,
    SlotOut,
)
from consult.clock import Clock
from consult.domain import Actor, Role
from consult.errors import Conflict, Invalid, NotAllowed, NotFound
from consult.events import Push
from consult.schemas import PersonOut
from consult.storage import tables as t
from consult.storage.uow import Database, UnitOfWork

log = logging.getLogger(__name__)


def check_scheduler(actor: Actor) -> None:
    if actor.role is not Role.SCHEDULER:
        raise NotAllowed("only schedulers open slots", code="not_a_scheduler")


def check_schedule_reader(actor: Actor, doctor_id: int) -> None:
    if actor.role is not Role.SCHEDULER and actor.user_id != doctor_id:
        raise NotAllowed(
            "only schedulers and the doctor themselves see a doctor's hours",
            code="not_your_schedule",
        )


def check_schedule_writer(actor: Actor) -> None:
    if actor.role is not Role.SCHEDULER:
        raise NotAllowed("only schedulers change a doctor's hours", code="not_a_scheduler")


async def generate_slots(
    uow: UnitOfWork, now: datetime, days: int, doctor_id: int | None = None
) -> int:
    """Create the slots every schedule (of ``doctor_id``, or of everyone) gives for the next
    ``days`` days that do not exist yet (idempotent: run it at every start and then hourly,
    from any number of processes). Returns how many were planned."""
    if doctor_id is None:
        doctors = await repo.scheduled_doctors(uow)
    else:
        doctors = [doctor_id]
    if not doctors:
        return 0
    # A scheduler opening slots or changing hours waits, and vice versa; two processes
    # generating at once take turns, and the second finds the first's slots in busy_times
    # (ON CONFLICT DO NOTHING below is the last guard against a duplicate start).
    await repo.lock_users(uow, doctors)
    # Read under the locks: hours removed meanwhile give no slots.
    hours = await repo.schedules(uow, t.schedules.c.doctor_id.in_(doctors))
    if not hours:
        return 0
    busy = await repo.busy_times(uow, doctors, now, now + timedelta(days=days + 1))
    planned = plan_slots(hours, now, days, busy)
    await repo.insert_slots_if_new(uow, planned, now)
    return len(planned)


class HoursService:
    """A doctor's weekly hours and the slots they give, kept ``slot_days`` days ahead."""

    def __init__(self, db: Database, clock: Clock, audit: Audit, slot_days: int = 14) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._slot_days = slot_days

    async def generate_slots(self, days: int | None = None) -> int:
        """Roll the slots forward: the periodic task calls this (``CONSULT_SLOT_DAYS``)."""
        days = self._slot_days if days is None else days
        now = self._clock.now()
        async with self._db.reader() as uow:
            doctors = await repo.scheduled_doctors(uow)
        created = 0
        for doctor_id in doctors:
            # One transaction per doctor, and the loop free between them: on SQLite every
            # other write waits for the transaction in progress, now one doctor's, not all's.
            async with self._db.uow() as uow:
                created += await generate_slots(uow, now, days, doctor_id)
                await uow.commit()
            await asyncio.sleep(0)
        log.info("generated %d slots for the next %d days", created, days)
        return created

    async def open_slots(
        self,
        actor: Actor,
        doctor_id: int,
        specialty: str,
        kind: SlotKind,
        starts_at: datetime,
        count: int = 1,
        slot_minutes: int = 20,
    ) -> list[SlotOut]:
        """A scheduler opens ``count`` back-to-back slots for a doctor outside their schedule."""
        check_scheduler(actor)
        planned = consecutive_slots(doctor_id, specialty, kind, starts_at, count, slot_minutes)
        now = self._clock.now()
        if planned[0].starts_at <= now:
            raise Invalid("slots can only be opened in the future", code="starts_in_past")
        async with self._db.uow() as uow:
            await specialty_name(uow, specialty)
            await _check_doctor(uow, doctor_id)
            await _check_practises(uow, doctor_id, specialty)
            await repo.lock_user(uow, doctor_id)  # one scheduler at a time per doctor
            busy = await repo.busy_times(
                uow, [doctor_id], planned[0].starts_at, planned[-1].ends_at
            )
            if any(busy.overlaps(doctor_id, s.starts_at, s.ends_at) for s in planned):
                raise Conflict("the doctor already has a slot in that time", code="slot_overlap")
            try:
                ids = await repo.insert_slots(uow, planned, now)
            except IntegrityError as exc:  # another process opened the same start meanwhile
                raise Conflict(
                    "the doctor already has a slot in that time", code="slot_overlap"
                ) from exc
            await self._audit.write(
                uow,
                actor,
                "slot.open",
                detail=f"doctor {doctor_id} {specialty} {kind} slots {ids[0]}-{ids[-1]}",
            )
            rows = await repo.load_slots(uow, ids)
            await uow.commit()
        log.info("scheduler %s opened %d slots for doctor %s", actor.user_id, count, doctor_id)
        return [repo.slot_out(r) for r in rows]

    async def doctors(self, actor: Actor) -> DoctorsOut:
        """Every doctor and their specialties, by name: whose hours a scheduler manages."""
        check_schedule_writer(actor)
        async with self._db.uow() as uow:
            return DoctorsOut(doctors=await repo.doctors(uow))

    async def schedule(self, actor: Actor, doctor_id: int) -> SchedulesOut:
        """A doctor's weekly hours, by weekday and start."""
        check_schedule_reader(actor, doctor_id)
        async with self._db.uow() as uow:
            name = await _check_doctor(uow, doctor_id)
            hours = await repo.doctor_schedule(uow, doctor_id)
        return SchedulesOut(doctor=PersonOut(id=doctor_id, name=name), hours=hours)

    async def add_hours(
        self,
        actor: Actor,
        doctor_id: int,
        specialty: str,
        kind: SlotKind,
        weekday: int,
        start_minute: int,
        end_minute: int,
        slot_minutes: int,
        timezone: str = "UTC",
    ) -> ScheduleAddedOut:
        """A scheduler adds weekly hours; their slots for the coming days exist at once."""
        check_schedule_writer(actor)
        hours = WeeklyHours(
            doctor_id, specialty, kind, weekday, start_minute, end_minute, slot_minutes, timezone
        )
        check_new_hours(hours)
        now = self._clock.now()
        async with self._db.uow() as uow:
            await specialty_name(uow, specialty)
            await _check_doctor(uow, doctor_id)
            await _check_practises(uow, doctor_id, specialty)
            # Held to the commit: two schedulers adding hours for one doctor take turns, so
            # the overlap check below sees the other's hours.
            await repo.lock_user(uow, doctor_id)
            existing = await repo.schedules(uow, t.schedules.c.doctor_id == doctor_id)
            clash = overlapping_hours(hours, existing, now)
            if clash is not None:
                raise Conflict(
                    f"these hours overlap the doctor's hours {clash.schedule_id} "
                    f"({_hours_text(clash)})",
                    code="schedule_overlap",
                    details={"schedule_id": clash.schedule_id},
                )
            schedule_id = await repo.insert_schedule(uow, hours)
            created = (
                await generate_slots(uow, now, self._slot_days, doctor_id)
                if self._slot_days > 0
                else 0
            )
            await self._audit.write(
                uow,
                actor,
                "schedule.add",
                detail=f"doctor {doctor_id} hours {schedule_id}: {_hours_text(hours)}, "
                f"{created} slots",
            )
            added = repo.schedule_out(await repo.load_schedule(uow, schedule_id))
            uow.collect(_hours_changed(doctor_id, "added", added))
            await uow.commit()
        log.info("scheduler %s added hours %s for doctor %s", actor.user_id, schedule_id, doctor_id)
        return ScheduleAddedOut(hours=added, slots_created=created)

    async def remove_hours(
        self, actor: Actor, doctor_id: int, schedule_id: int
    ) -> ScheduleRemovedOut:
        """A scheduler removes weekly hours: their free future slots go; booked ones stay
        with their bookings, and are not offered again."""
        check_schedule_writer(actor)
        now = self._clock.now()
        async with self._db.uow() as uow:
            await _check_doctor(uow, doctor_id)
            await repo.lock_user(uow, doctor_id)  # no generation adds slots to them meanwhile
            row = await repo.load_schedule(uow, schedule_id)
            if row is None or row.doctor_id != doctor_id:
                raise NotFound(
                    f"doctor {doctor_id} has no hours {schedule_id}", code="schedule_not_found"
                )
            removed, kept = await repo.remove_schedule(uow, schedule_id, now)
            await self._audit.write(
                uow,
                actor,
                "schedule.remove",
                detail=f"doctor {doctor_id} hours {schedule_id}: "
                f"{_hours_text(repo.weekly_hours(row))}, {removed} free slots removed, "
                f"{kept} booked kept",
            )
            uow.collect(_hours_changed(doctor_id, "removed", repo.schedule_out(row)))
            await uow.commit()
        log.info(
            "scheduler %s removed hours %s of doctor %s", actor.user_id, schedule_id, doctor_id
        )
        return ScheduleRemovedOut(id=schedule_id, slots_removed=removed, slots_kept=kept)


async def _check_doctor(uow: UnitOfWork, doctor_id: int) -> str:
    """The doctor's name; 404 when the id is nobody's or not a doctor's."""
    row = (
        await uow.conn.execute(
            sa.select(t.users.c.role, t.users.c.name).where(t.users.c.id == doctor_id)
        )
    ).first()
    if row is None or row.role != Role.DOCTOR:
        raise NotFound(f"no doctor {doctor_id}", code="doctor_not_found")
    return str(row.name)


async def _check_practises(uow: UnitOfWork, doctor_id: int, specialty: str) -> None:
    if specialty not in await doctor_specialties(uow, doctor_id):
        raise Invalid(
            f"doctor {doctor_id} does not practise {specialty}", code="specialty_not_practised"
        )


def _hours_changed(doctor_id: int, change: Literal["added", "removed"], hours: ScheduleOut) -> Push:
    """``schedule:changed``, to the doctor alone (every tab): their console shows their hours."""
    out = ScheduleChangedOut(doctor_id=doctor_id, change=change, hours=hours)
    return Push((doctor_id,), "schedule:changed", out.model_dump(mode="json"))


_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _hours_text(hours: WeeklyHours) -> str:
    def clock(minute: int) -> str:
        return f"{minute // 60:02d}:{minute % 60:02d}"

    return (
        f"{_WEEKDAYS[hours.weekday]} {clock(hours.start_minute)}-{clock(hours.end_minute)} "
        f"{hours.timezone}, {hours.specialty} {hours.kind}, {hours.slot_minutes} min"
    )
