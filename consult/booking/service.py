"""Bookings: a patient finds free slots, books one, lists, reads, cancels and exports their
bookings (the slots come from the doctors' hours, ``hours.py``).

``check_*`` functions validate and authorise; the service methods mutate inside one unit of
work and audit every write. A slot is booked at most once because the database says so (a
partial unique index on active bookings); the basic account's limit holds under concurrency
because a patient's bookings are counted while their user row is locked.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from consult.accounts.checks import check_email_confirmed
from consult.accounts.repository import covered_specialties, specialty_name
from consult.audit import Audit
from consult.booking import ics, referrals
from consult.booking import referral_repository as referral_repo
from consult.booking import repository as repo
from consult.booking.policy import (
    BookingStatus,
    SlotKind,
    check_bookable,
    check_booking_limit,
    check_no_overlap,
)
from consult.booking.schemas import BookingOut, SlotOut
from consult.clock import Clock, as_utc
from consult.domain import Actor
from consult.errors import Conflict, Invalid, NotAllowed, NotFound
from consult.notify import messages
from consult.notify.outbox import enqueue
from consult.storage import tables as t
from consult.storage.uow import Database, UnitOfWork

log = logging.getLogger(__name__)

MAX_SLOT_LIST = 50
# How PostgreSQL and SQLite name the unique index of a referral's one active booking when a
# concurrent booking using it won.
_REFERRAL_INDEX = ("uq_bookings_one_active_per_referral", "bookings.referral_id")

LOCATIONS = {
    SlotKind.STATIONARY: "At the clinic (in person)",
    SlotKind.PHONE: "By phone: the doctor calls you",
    SlotKind.ONLINE: "Online: open consult at the appointed time",
}


def check_patient(actor: Actor) -> None:
    if not actor.is_patient:
        raise NotAllowed("only patients book visits", code="not_a_patient")


def check_slot_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_SLOT_LIST:
        raise Invalid(f"limit must be 1 to {MAX_SLOT_LIST}", code="invalid_payload")


class BookingService:
    """A patient's bookings of the free slots; a doctor reads those on their slots."""

    def __init__(self, db: Database, clock: Clock, audit: Audit) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit

    def _since(self, after: datetime | None) -> datetime:
        now = self._clock.now()
        # In UTC: SQLite keeps the wall-clock digits only, so every stored time is UTC.
        return max(now, after).astimezone(UTC) if after is not None else now

    async def free_slots(
        self,
        actor: Actor,
        specialty: str,
        limit: int = 5,
        kind: SlotKind | None = None,
        after: datetime | None = None,
    ) -> list[SlotOut]:
        """The next free slots of ``specialty``, soonest first; for a patient each says whether
        their plan covers it."""
        check_slot_limit(limit)
        since = self._since(after)
        async with self._db.uow() as uow:
            await specialty_name(uow, specialty)
            covered = (
                specialty in await covered_specialties(uow, actor.user_id)
                if actor.is_patient
                else None
            )
            rows = await repo.free_slots(uow, specialty, since, kind, limit)
        return [repo.slot_out(r, covered) for r in rows]

    async def referral_slots(
        self,
        actor: Actor,
        referral_id: int,
        limit: int = 5,
        kind: SlotKind | None = None,
        after: datetime | None = None,
    ) -> list[SlotOut]:
        """The next free slots the patient's ``referral_id`` can book (of the specialty it
        refers to), soonest first."""
        check_patient(actor)
        check_slot_limit(limit)
        since = self._since(after)
        async with self._db.uow() as uow:
            referral = await self._own_referral(uow, actor, referral_id, "referral.slots.read")
            specialty = await referral_repo.specialty(uow, referral.target)
            referrals.check_opens_bookings(referral, specialty is not None)
            covered = referral.target in await covered_specialties(uow, actor.user_id)
            rows = await repo.free_slots(uow, referral.target, since, kind, limit)
            await self._audit.write(
                uow,
                actor,
                "referral.slots.read",
                patient_id=actor.user_id,
                detail=f"referral {referral_id}",
            )
            await uow.commit()
        return [repo.slot_out(r, covered) for r in rows]

    async def _own_referral(
        self, uow: UnitOfWork, actor: Actor, referral_id: int, action: str, lock: bool = False
    ) -> referrals.ReferralState:
        """The patient's referral; someone else's is not found (and the attempt audited)."""
        found = await referral_repo.load_referral(uow, referral_id, lock=lock)
        if found is not None and found[0] != actor.user_id:
            self._audit.deny_after_rollback(uow, actor, action, patient_id=found[0])
        if found is None or found[0] != actor.user_id:
            raise NotFound(f"you have no referral {referral_id}", code="referral_not_found")
        return found[1]

    async def book(self, actor: Actor, slot_id: int, referral_id: int | None = None) -> BookingOut:
        check_patient(actor)
        now = self._clock.now()
        async with self._db.uow() as uow:
            # Held to the end: this patient's concurrent bookings are counted one at a time.
            await repo.lock_user(uow, actor.user_id)
            await check_email_confirmed(uow, actor, "booking a visit")
            slot = await self._bookable_slot(uow, actor, slot_id, now)
            taken = await repo.active_booking_of_slot(uow, slot_id)
            if taken is not None and taken.patient_id == actor.user_id:
                # A repeated request (a double click): the booking it made, not an error.
                return await self._existing(uow, taken.id)
            if taken is not None:
                raise Conflict("this slot has just been booked by someone else", code="slot_taken")
            await self._check_referral(uow, actor, slot, referral_id)
            mine = await repo.active_bookings(uow, actor.user_id, now)
            check_booking_limit(actor, len(mine))
            check_no_overlap(mine, as_utc(slot.starts_at), as_utc(slot.ends_at))
            booking_id = await self._insert(uow, slot_id, actor.user_id, now, referral_id)
            used = f" referral {referral_id}" if referral_id is not None else ""
            await self._audit.write(
                uow,
                actor,
                "booking.create",
                patient_id=actor.user_id,
                detail=f"booking {booking_id} slot {slot_id}{used}",
            )
            out = await repo.load_booking(uow, booking_id)
            assert out is not None
            await self._confirmation(uow, out, now)
            await uow.commit()
        log.info("booking %s: patient %s booked slot %s", booking_id, actor.user_id, slot_id)
        return out

    async def _confirmation(self, uow: UnitOfWork, out: BookingOut, now: datetime) -> None:
        """The booking's e-mail with its .ics, in the booking's transaction (the outbox)."""
        to = await messages.recipient(uow, out.patient.id)
        slot = out.slot
        when = f"{as_utc(slot.starts_at):%Y-%m-%d %H:%M} UTC"
        what = f"{slot.specialty.name}, {slot.doctor.name} ({LOCATIONS[slot.kind]})"
        text = ics.calendar(calendar_event(out), now)
        patient = out.patient.id
        mail = messages.booking_confirmed(patient, to.email, to.name, what, when, text, out.id)
        await enqueue(uow, mail, now)

    async def _bookable_slot(
        self, uow: UnitOfWork, actor: Actor, slot_id: int, now: datetime
    ) -> Any:
        slot = await repo.load_slot(uow, slot_id)
        if slot is None:
            raise NotFound(f"no slot {slot_id}", code="slot_not_found")
        check_bookable(as_utc(slot.starts_at), now)
        if slot.withdrawn_at is not None:
            raise Conflict("the doctor no longer works at this time", code="slot_withdrawn")
        if slot.specialty_code not in await covered_specialties(uow, actor.user_id):
            raise NotAllowed(f"your plan does not cover {slot.specialty_name}", code="not_covered")
        return slot

    async def _check_referral(
        self, uow: UnitOfWork, actor: Actor, slot: Any, referral_id: int | None
    ) -> None:
        """The booking may go ahead with ``referral_id`` (or without one)."""
        if referral_id is None:
            referrals.check_required(slot.referral_required, slot.specialty_name)
            return
        referral = await self._own_referral(uow, actor, referral_id, "booking.create", lock=True)
        referrals.check_for_slot(referral, slot.specialty_code, slot.specialty_name)

    async def _insert(
        self, uow: UnitOfWork, slot_id: int, patient_id: int, now: datetime, referral_id: int | None
    ) -> int:
        try:
            return await repo.insert_booking(uow, slot_id, patient_id, now, referral_id)
        except IntegrityError as exc:
            # A concurrent booking won: of the same slot, or (the other unique index) one using
            # the same referral.
            if any(marker in str(exc.orig) for marker in _REFERRAL_INDEX):
                raise Conflict(
                    f"referral {referral_id} is used by another booking", code="referral_used"
                ) from exc
            raise Conflict(
                "this slot has just been booked by someone else", code="slot_taken"
            ) from exc

    async def _existing(self, uow: UnitOfWork, booking_id: int) -> BookingOut:
        out = await repo.load_booking(uow, booking_id)
        assert out is not None
        return out

    async def my_bookings(self, actor: Actor) -> list[BookingOut]:
        """A patient's bookings (active and cancelled); a doctor's: those on their slots."""
        if actor.is_patient:
            where = t.bookings.c.patient_id == actor.user_id
        elif actor.is_doctor:
            where = t.slots.c.doctor_id == actor.user_id
        else:
            raise NotAllowed("only patients and doctors have bookings", code="not_a_patient")
        async with self._db.uow() as uow:
            found = await repo.list_bookings(uow, where)
            await self._audit.reads(uow, actor, "booking.read", (b.patient.id for b in found))
            await uow.commit()
        return found

    async def cancel(self, actor: Actor, booking_id: int) -> BookingOut:
        now = self._clock.now()
        async with self._db.uow() as uow:
            row = await repo.lock_booking(uow, booking_id)
            if row is None:
                raise NotFound(f"no booking {booking_id}", code="booking_not_found")
            if row.patient_id != actor.user_id:
                self._audit.deny_after_rollback(
                    uow, actor, "booking.cancel", patient_id=row.patient_id
                )
                raise NotAllowed("this is not your booking", code="not_your_booking")
            if row.status != BookingStatus.ACTIVE:
                raise Conflict("the booking is already cancelled", code="booking_cancelled")
            if as_utc(row.starts_at) <= now:
                raise Conflict("the visit has already started", code="slot_in_past")
            await repo.cancel_booking(uow, booking_id, now)
            await self._audit.write(
                uow,
                actor,
                "booking.cancel",
                patient_id=actor.user_id,
                detail=f"booking {booking_id} slot {row.slot_id}",
            )
            out = await repo.load_booking(uow, booking_id)
            await uow.commit()
        assert out is not None
        log.info("booking %s cancelled by patient %s", booking_id, actor.user_id)
        return out

    async def get(self, actor: Actor, booking_id: int) -> BookingOut:
        """A booking, for its patient or the doctor whose slot it is; denied (and audited)
        otherwise."""
        async with self._db.uow() as uow:
            out = await repo.load_booking(uow, booking_id)
            if out is None:
                raise NotFound(f"no booking {booking_id}", code="booking_not_found")
            if actor.user_id not in (out.patient.id, out.slot.doctor.id):
                self._audit.deny_after_rollback(
                    uow, actor, "booking.read", patient_id=out.patient.id
                )
                raise NotAllowed("this is not your booking", code="not_your_booking")
            await self._audit.write(
                uow,
                actor,
                "booking.read",
                patient_id=out.patient.id,
                detail=f"booking {booking_id}",
            )
            await uow.commit()
        return out

    async def ics(self, actor: Actor, booking_id: int) -> str:
        """The booking as an iCalendar file for the patient's calendar."""
        booking = await self.get(actor, booking_id)
        return ics.calendar(calendar_event(booking), self._clock.now())


def calendar_event(booking: BookingOut) -> ics.CalendarEvent:
    slot = booking.slot
    kind = {
        SlotKind.STATIONARY: "visit at the clinic",
        SlotKind.PHONE: "phone consultation",
        SlotKind.ONLINE: "online consultation",
    }[slot.kind]
    return ics.CalendarEvent(
        uid=f"booking-{booking.id}@consult",
        starts_at=slot.starts_at,
        ends_at=slot.ends_at,
        summary=f"{slot.specialty.name}: {slot.doctor.name}",
        location=LOCATIONS[slot.kind],
        description=(
            f"{slot.specialty.name} {kind} with {slot.doctor.name} "
            f"for {booking.patient.name}. Booking {booking.id}; cancel it in consult if you "
            "cannot come."
        ),
        cancelled=booking.status is BookingStatus.CANCELLED,
    )
