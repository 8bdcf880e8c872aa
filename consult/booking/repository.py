"""Schedule, slot and booking rows, read and written inside a unit of work."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from consult.accounts.repository import lock_user as lock_user
from consult.booking.policy import BookingStatus, BusyTimes, PlannedSlot, SlotKind, WeeklyHours
from consult.booking.schemas import BookingOut, DoctorOut, ScheduleOut, SlotOut
from consult.clock import as_utc
from consult.schemas import PersonOut, SpecialtyOut
from consult.storage import tables as t
from consult.storage.uow import UnitOfWork

_doctor = t.users.alias("doctor")
_patient = t.users.alias("patient")

_SLOT_COLUMNS = (
    t.slots.c.id.label("slot_id"),
    t.slots.c.doctor_id,
    t.slots.c.specialty_code,
    t.slots.c.kind,
    t.slots.c.starts_at,
    t.slots.c.ends_at,
    t.slots.c.withdrawn_at,
    _doctor.c.name.label("doctor_name"),
    t.specialties.c.name.label("specialty_name"),
    t.specialties.c.referral_required,
)

_SLOT = (
    sa.select(*_SLOT_COLUMNS)
    .join(_doctor, _doctor.c.id == t.slots.c.doctor_id)
    .join(t.specialties, t.specialties.c.code == t.slots.c.specialty_code)
)

_BOOKING = (
    sa.select(
        t.bookings.c.id,
        t.bookings.c.status,
        t.bookings.c.patient_id,
        t.bookings.c.created_at,
        t.bookings.c.cancelled_at,
        t.bookings.c.referral_id,
        _patient.c.name.label("patient_name"),
        *_SLOT_COLUMNS,
    )
    .join(t.slots, t.slots.c.id == t.bookings.c.slot_id)
    .join(_patient, _patient.c.id == t.bookings.c.patient_id)
    .join(_doctor, _doctor.c.id == t.slots.c.doctor_id)
    .join(t.specialties, t.specialties.c.code == t.slots.c.specialty_code)
)

_active_on_slot = (
    sa.select(t.bookings.c.id)
    .where(t.bookings.c.slot_id == t.slots.c.id, t.bookings.c.status == BookingStatus.ACTIVE)
    .exists()
)


def slot_out(row: Any, covered: bool | None = None) -> SlotOut:
    return SlotOut(
        id=row.slot_id,
        specialty=SpecialtyOut(code=row.specialty_code, name=row.specialty_name, covered=covered),
        doctor=PersonOut(id=row.doctor_id, name=row.doctor_name),
        kind=SlotKind(row.kind),
        starts_at=as_utc(row.starts_at),
        ends_at=as_utc(row.ends_at),
        covered=covered,
        referral_required=row.referral_required,
    )


def booking_out(row: Any) -> BookingOut:
    return BookingOut(
        id=row.id,
        status=BookingStatus(row.status),
        slot=slot_out(row),
        patient=PersonOut(id=row.patient_id, name=row.patient_name),
        created_at=as_utc(row.created_at),
        cancelled_at=as_utc(row.cancelled_at) if row.cancelled_at else None,
        referral_id=row.referral_id,
    )


# --- slots ------------------------------------------------------------------------------------


async def free_slots(
    uow: UnitOfWork, specialty: str, after: datetime, kind: SlotKind | None, limit: int
) -> list[Any]:
    """Slots of ``specialty`` starting after ``after`` with no active booking, soonest first."""
    query = _SLOT.where(
        t.slots.c.specialty_code == specialty,
        t.slots.c.starts_at > after,
        t.slots.c.withdrawn_at.is_(None),
        ~_active_on_slot,
    )
    if kind is not None:
        query = query.where(t.slots.c.kind == str(kind))
    rows = await uow.conn.execute(query.order_by(t.slots.c.starts_at, t.slots.c.id).limit(limit))
    return list(rows)


async def load_slot(uow: UnitOfWork, slot_id: int) -> Any:
    return (await uow.conn.execute(_SLOT.where(t.slots.c.id == slot_id))).first()


async def load_slots(uow: UnitOfWork, slot_ids: list[int]) -> list[Any]:
    rows = await uow.conn.execute(
        _SLOT.where(t.slots.c.id.in_(slot_ids)).order_by(t.slots.c.starts_at)
    )
    return list(rows)


async def active_booking_of_slot(uow: UnitOfWork, slot_id: int) -> Any:
    """(id, patient_id) of the slot's active booking, or None."""
    rows = await uow.conn.execute(
        sa.select(t.bookings.c.id, t.bookings.c.patient_id).where(
            t.bookings.c.slot_id == slot_id, t.bookings.c.status == BookingStatus.ACTIVE
        )
    )
    return rows.first()


async def busy_times(
    uow: UnitOfWork, doctor_ids: list[int], since: datetime, until: datetime
) -> BusyTimes:
    """The doctors' slots that overlap ``[since, until)``. A withdrawn slot without an active
    booking takes no time: nobody comes, and it is never offered again."""
    rows = await uow.conn.execute(
        sa.select(t.slots.c.doctor_id, t.slots.c.starts_at, t.slots.c.ends_at).where(
            t.slots.c.doctor_id.in_(doctor_ids),
            t.slots.c.ends_at > since,
            t.slots.c.starts_at < until,
            sa.or_(t.slots.c.withdrawn_at.is_(None), _active_on_slot),
        )
    )
    return BusyTimes((r.doctor_id, as_utc(r.starts_at), as_utc(r.ends_at)) for r in rows)


async def scheduled_doctors(uow: UnitOfWork) -> list[int]:
    rows = await uow.conn.execute(
        sa.select(t.schedules.c.doctor_id).distinct().order_by(t.schedules.c.doctor_id)
    )
    return list(rows.scalars())


async def schedules(uow: UnitOfWork, *where: Any) -> list[WeeklyHours]:
    rows = await uow.conn.execute(sa.select(t.schedules).where(*where).order_by(t.schedules.c.id))
    return [weekly_hours(r) for r in rows]


def weekly_hours(row: Any) -> WeeklyHours:
    return WeeklyHours(
        doctor_id=row.doctor_id,
        specialty=row.specialty_code,
        kind=SlotKind(row.kind),
        weekday=row.weekday,
        start_minute=row.start_minute,
        end_minute=row.end_minute,
        slot_minutes=row.slot_minutes,
        timezone=row.timezone,
        schedule_id=row.id,
    )


_SCHEDULE = (
    sa.select(
        t.schedules,
        _doctor.c.name.label("doctor_name"),
        t.specialties.c.name.label("specialty_name"),
    )
    .join(_doctor, _doctor.c.id == t.schedules.c.doctor_id)
    .join(t.specialties, t.specialties.c.code == t.schedules.c.specialty_code)
)


def schedule_out(row: Any) -> ScheduleOut:
    return ScheduleOut(
        id=row.id,
        doctor=PersonOut(id=row.doctor_id, name=row.doctor_name),
        specialty=SpecialtyOut(code=row.specialty_code, name=row.specialty_name),
        kind=SlotKind(row.kind),
        weekday=row.weekday,
        start_minute=row.start_minute,
        end_minute=row.end_minute,
        slot_minutes=row.slot_minutes,
        timezone=row.timezone,
    )


async def doctors(uow: UnitOfWork) -> list[DoctorOut]:
    rows = await uow.conn.execute(
        sa.select(
            t.users.c.id,
            t.users.c.name,
            t.specialties.c.code,
            t.specialties.c.name.label("specialty_name"),
        )
        .outerjoin(t.doctor_specialties, t.doctor_specialties.c.doctor_id == t.users.c.id)
        .outerjoin(t.specialties, t.specialties.c.code == t.doctor_specialties.c.specialty_code)
        .where(t.users.c.role == "doctor")
        .order_by(t.users.c.name, t.users.c.id, t.specialties.c.name)
    )
    found: dict[int, DoctorOut] = {}
    for r in rows:
        doctor = found.setdefault(r.id, DoctorOut(id=r.id, name=r.name, specialties=[]))
        if r.code is not None:
            doctor.specialties.append(SpecialtyOut(code=r.code, name=r.specialty_name))
    return list(found.values())


async def doctor_schedule(uow: UnitOfWork, doctor_id: int) -> list[ScheduleOut]:
    rows = await uow.conn.execute(
        _SCHEDULE.where(t.schedules.c.doctor_id == doctor_id).order_by(
            t.schedules.c.weekday, t.schedules.c.start_minute, t.schedules.c.id
        )
    )
    return [schedule_out(r) for r in rows]


async def load_schedule(uow: UnitOfWork, schedule_id: int) -> Any:
    return (await uow.conn.execute(_SCHEDULE.where(t.schedules.c.id == schedule_id))).first()


async def insert_schedule(uow: UnitOfWork, hours: WeeklyHours) -> int:
    statement = (
        t.schedules.insert()
        .values(
            doctor_id=hours.doctor_id,
            specialty_code=hours.specialty,
            kind=str(hours.kind),
            weekday=hours.weekday,
            start_minute=hours.start_minute,
            end_minute=hours.end_minute,
            slot_minutes=hours.slot_minutes,
            timezone=hours.timezone,
        )
        .returning(t.schedules.c.id)
    )
    return int((await uow.conn.execute(statement)).scalar_one())


async def remove_schedule(uow: UnitOfWork, schedule_id: int, now: datetime) -> tuple[int, int]:
    """Delete the schedule and its future slots nobody ever booked; its future slots with
    bookings stay, withdrawn (the booking is kept, the slot never offered again). Returns
    (slots deleted, slots kept)."""
    mine = t.slots.c.schedule_id == schedule_id
    future = t.slots.c.starts_at > now
    ever_booked = sa.select(t.bookings.c.id).where(t.bookings.c.slot_id == t.slots.c.id).exists()
    deleted = await uow.conn.execute(t.slots.delete().where(mine, future, ~ever_booked))
    kept = await uow.conn.execute(t.slots.update().where(mine, future).values(withdrawn_at=now))
    # Past slots keep their history; none points at a schedule that no longer exists (SQLite
    # may hand the id out again).
    await uow.conn.execute(t.slots.update().where(mine).values(schedule_id=None))
    await uow.conn.execute(t.schedules.delete().where(t.schedules.c.id == schedule_id))
    return deleted.rowcount, kept.rowcount


def _slot_values(slot: PlannedSlot, now: datetime) -> dict[str, Any]:
    return {
        "doctor_id": slot.doctor_id,
        "specialty_code": slot.specialty,
        "kind": str(slot.kind),
        "starts_at": slot.starts_at,
        "ends_at": slot.ends_at,
        "created_at": now,
        "schedule_id": slot.schedule_id,
    }


async def insert_slots_if_new(uow: UnitOfWork, planned: list[PlannedSlot], now: datetime) -> None:
    """One executemany; a slot another process inserted meanwhile (same doctor and start) is
    skipped, not an error. A withdrawn slot (hours removed, then added again) at the same
    start comes back to these hours, if it is the same slot: its cancelled bookings must not
    change time or kind."""
    if not planned:
        return
    dialect_insert = postgresql.insert if uow.dialect == "postgresql" else sqlite.insert
    insert = dialect_insert(t.slots)
    statement = insert.on_conflict_do_update(
        index_elements=[t.slots.c.doctor_id, t.slots.c.starts_at],
        set_={"withdrawn_at": None, "schedule_id": insert.excluded.schedule_id},
        where=sa.and_(
            t.slots.c.withdrawn_at.is_not(None),
            t.slots.c.ends_at == insert.excluded.ends_at,
            t.slots.c.specialty_code == insert.excluded.specialty_code,
            t.slots.c.kind == insert.excluded.kind,
        ),
    )
    await uow.conn.execute(statement, [_slot_values(s, now) for s in planned])


async def insert_slots(uow: UnitOfWork, planned: list[PlannedSlot], now: datetime) -> list[int]:
    rows = await uow.conn.execute(
        t.slots.insert().returning(t.slots.c.id, sort_by_parameter_order=True),
        [_slot_values(s, now) for s in planned],
    )
    return [r.id for r in rows]


# --- bookings ---------------------------------------------------------------------------------


async def lock_users(uow: UnitOfWork, user_ids: list[int]) -> None:
    """Several users' rows, in id order (so two lockers never wait for each other in a cycle)."""
    await uow.conn.execute(
        sa.select(t.users.c.id)
        .where(t.users.c.id.in_(user_ids))
        .order_by(t.users.c.id)
        .with_for_update(key_share=True)
    )


async def lock_booking(uow: UnitOfWork, booking_id: int) -> Any:
    return (
        await uow.conn.execute(
            sa.select(t.bookings, t.slots.c.doctor_id, t.slots.c.starts_at)
            .join(t.slots, t.slots.c.id == t.bookings.c.slot_id)
            .where(t.bookings.c.id == booking_id)
            .with_for_update(of=t.bookings)
        )
    ).first()


async def active_bookings(
    uow: UnitOfWork, patient_id: int, now: datetime
) -> list[tuple[datetime, datetime]]:
    """The patient's active bookings that are not over yet, as (start, end)."""
    rows = await uow.conn.execute(
        sa.select(t.slots.c.starts_at, t.slots.c.ends_at)
        .join(t.bookings, t.bookings.c.slot_id == t.slots.c.id)
        .where(
            t.bookings.c.patient_id == patient_id,
            t.bookings.c.status == BookingStatus.ACTIVE,
            t.slots.c.ends_at > now,
        )
    )
    return [(as_utc(r.starts_at), as_utc(r.ends_at)) for r in rows]


async def insert_booking(
    uow: UnitOfWork, slot_id: int, patient_id: int, now: datetime, referral_id: int | None = None
) -> int:
    statement = (
        t.bookings.insert()
        .values(
            slot_id=slot_id,
            patient_id=patient_id,
            status=BookingStatus.ACTIVE,
            created_at=now,
            referral_id=referral_id,
        )
        .returning(t.bookings.c.id)
    )
    return int((await uow.conn.execute(statement)).scalar_one())


async def cancel_booking(uow: UnitOfWork, booking_id: int, now: datetime) -> None:
    await uow.conn.execute(
        t.bookings.update()
        .where(t.bookings.c.id == booking_id, t.bookings.c.status == BookingStatus.ACTIVE)
        .values(status=BookingStatus.CANCELLED, cancelled_at=now)
    )


async def load_booking(uow: UnitOfWork, booking_id: int) -> BookingOut | None:
    row = (await uow.conn.execute(_BOOKING.where(t.bookings.c.id == booking_id))).first()
    return booking_out(row) if row else None


async def list_bookings(uow: UnitOfWork, *where: Any) -> list[BookingOut]:
    rows = await uow.conn.execute(
        _BOOKING.where(*where).order_by(t.slots.c.starts_at, t.bookings.c.id)
    )
    return [booking_out(r) for r in rows]
