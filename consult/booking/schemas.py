"""Payload models of the booking routes (in and out)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, Field

from consult.booking.policy import BookingStatus, SlotKind
from consult.schemas import Id, In, Out, PersonOut, SpecialtyCode, SpecialtyOut


class SlotQuery(In):
    """The query string of ``GET /api/slots``."""

    specialty: SpecialtyCode
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
    referral_required: bool = Field(
        default=False,
        description="Booked only with the patient's unused referral to this specialty "
        "(`referral_id` in POST /api/bookings; GET /api/referrals/{referral_id}/slots).",
    )


class SlotsOut(Out):
    slots: list[SlotOut]


class OpenSlotsIn(In):
    doctor_id: Id
    specialty: SpecialtyCode
    kind: SlotKind
    starts_at: AwareDatetime = Field(description="Start of the first slot, on a whole minute.")
    count: int = Field(default=1, ge=1, le=48, description="Back-to-back slots to open.")
    slot_minutes: int = Field(default=20, ge=5, le=240)


class ReferralSlotQuery(In):
    """The query string of ``GET /api/referrals/{referral_id}/slots``."""

    kind: SlotKind | None = None
    limit: int = Field(default=5, ge=1, le=50)
    after: AwareDatetime | None = Field(
        default=None, description="Only slots starting after this instant (default: now)."
    )


class BookIn(In):
    slot_id: Id
    referral_id: Id | None = Field(
        default=None,
        description="The patient's referral the booking uses (required when the slot's "
        "specialty has referral_required).",
    )


class BookingOut(Out):
    id: int
    status: BookingStatus
    slot: SlotOut
    patient: PersonOut
    created_at: datetime
    cancelled_at: datetime | None
    referral_id: int | None = Field(
        description="The referral the booking uses (freed when the booking is cancelled)."
    )


class BookingsOut(Out):
    bookings: list[BookingOut]


class ScheduleIn(In):
    """One row of weekly hours; minutes count from local midnight in ``timezone``."""

    specialty: SpecialtyCode
    kind: SlotKind
    weekday: int = Field(ge=0, le=6, description="0 = Monday … 6 = Sunday.")
    start_minute: int = Field(ge=0, le=1439, description="e.g. 480 for 08:00.")
    end_minute: int = Field(ge=1, le=1440, description="e.g. 720 for 12:00; 1440 = midnight.")
    slot_minutes: int = Field(default=20, ge=5, le=240)
    timezone: str = Field(
        default="UTC",
        min_length=1,
        max_length=64,
        description="The clinic's IANA time zone (e.g. Europe/Warsaw): the hours follow its "
        "wall clock, daylight saving time included.",
    )


class ScheduleOut(Out):
    id: int
    doctor: PersonOut
    specialty: SpecialtyOut
    kind: SlotKind
    weekday: int
    start_minute: int
    end_minute: int
    slot_minutes: int
    timezone: str


class SchedulesOut(Out):
    doctor: PersonOut
    hours: list[ScheduleOut]


class ScheduleAddedOut(Out):
    hours: ScheduleOut
    slots_created: int = Field(description="Slots generated at once for the coming days.")


class ScheduleRemovedOut(Out):
    id: int
    slots_removed: int = Field(description="Free future slots of these hours, deleted.")
    slots_kept: int = Field(
        description="Future slots of these hours that have bookings: the bookings stand, the "
        "slots are no longer offered."
    )


class ScheduleChangedOut(Out):
    """The ``schedule:changed`` event, to the doctor whose weekly hours a scheduler changed."""

    doctor_id: int
    change: Literal["added", "removed"]
    hours: ScheduleOut = Field(description="The hours added, or the hours as they were removed.")


class DoctorOut(Out):
    id: int
    name: str
    specialties: list[SpecialtyOut]


class DoctorsOut(Out):
    doctors: list[DoctorOut]
