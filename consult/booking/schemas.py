"""Payload models of the booking routes (in and out)."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, Field

from consult.booking.policy import BookingStatus, SlotKind
from consult.schemas import In, Out, PersonOut, SpecialtyOut


class SlotQuery(In):
    """The query string of ``GET /api/slots``."""

    specialty: str = Field(min_length=1, max_length=40)
    kind: SlotKind | None = None
    limit: int = Field(default=5, ge=1, le=50)
    after: AwareDatetime | None = Field(
        default=None, description="Only slots starting after this instant (default: now)."
    )


class SlotOut(Out):
    id: int
    specialty: SpecialtyOut
    doctor: PersonOut
    kind: SlotKind = Field(description="stationary (at the clinic), phone, or online.")
    starts_at: datetime
    ends_at: datetime
    covered: bool | None = Field(
        default=None,
        description="For patients: whether their plan covers the slot's specialty (only "
        "covered slots can be booked).",
    )


class SlotsOut(Out):
    slots: list[SlotOut]


class OpenSlotsIn(In):
    doctor_id: int
    specialty: str = Field(min_length=1, max_length=40)
    kind: SlotKind
    starts_at: AwareDatetime = Field(description="Start of the first slot, on a whole minute.")
    count: int = Field(default=1, ge=1, le=48, description="Back-to-back slots to open.")
    slot_minutes: int = Field(default=20, ge=5, le=240)


class BookIn(In):
    slot_id: int


class BookingOut(Out):
    id: int
    status: BookingStatus
    slot: SlotOut
    patient: PersonOut
    created_at: datetime
    cancelled_at: datetime | None


class BookingsOut(Out):
    bookings: list[BookingOut]
