"""Free slots (also those a referral books), bookings (book, list, cancel), the iCalendar
download, schedulers opening slots and managing doctors' weekly hours."""

from __future__ import annotations

from aiohttp import web

from consult.booking.schemas import (
    BookIn,
    BookingOut,
    BookingsOut,
    DoctorsOut,
    OpenSlotsIn,
    ReferralSlotQuery,
    ScheduleAddedOut,
    ScheduleIn,
    ScheduleRemovedOut,
    SchedulesOut,
    SlotQuery,
    SlotsOut,
)
from consult.domain import Actor
from consult.edges.validation import validate
from consult.http.routing import SERVICES, Api, int_param
from consult.schemas import EmptyIn

api = Api()
_ACCESS = ("not_authenticated", "invalid_id", "booking_not_found", "not_your_booking")


@api.route(
    "GET",
    "/api/slots",
    summary="The next free slots of a specialty, soonest first. Query: `specialty` (required), "
    "`kind` (stationary, phone, online), `limit` (1-50, default 5), `after` (ISO 8601 instant "
    "with offset; default now). For a patient each slot says whether their plan covers it.",
    response=SlotsOut,
    tag="booking",
    errors=("not_authenticated", "invalid_payload", "unknown_specialty"),
    query=SlotQuery,
)
async def free_slots(request: web.Request, actor: Actor) -> SlotsOut:
    query = validate(SlotQuery, dict(request.query))
    assert isinstance(query, SlotQuery)
    slots = await request.app[SERVICES].booking.free_slots(
        actor, query.specialty, limit=query.limit, kind=query.kind, after=query.after
    )
    return SlotsOut(slots=slots)


@api.route(
    "POST",
    "/api/slots",
    summary="A scheduler opens back-to-back slots for a doctor, outside their weekly schedule.",
    body=OpenSlotsIn,
    response=SlotsOut,
    status=201,
    tag="booking",
    errors=(
        "not_authenticated",
        "invalid_payload",
        "not_a_scheduler",
        "starts_in_past",
        "unknown_specialty",
        "doctor_not_found",
        "specialty_not_practised",
        "slot_overlap",
    ),
)
async def open_slots(request: web.Request, actor: Actor, body: OpenSlotsIn) -> SlotsOut:
    slots = await request.app[SERVICES].hours.open_slots(
        actor,
        body.doctor_id,
        body.specialty,
        body.kind,
        body.starts_at,
        count=body.count,
        slot_minutes=body.slot_minutes,
    )
    return SlotsOut(slots=slots)


@api.route(
    "POST",
    "/api/bookings",
    summary="Book a free slot (patients; basic accounts hold at most 10 active bookings).",
    body=BookIn,
    response=BookingOut,
    status=201,
    tag="booking",
    errors=(
        "not_authenticated",
        "invalid_payload",
        "not_a_patient",
        "slot_not_found",
        "slot_in_past",
        "not_covered",
        "slot_withdrawn",
        "slot_taken",
        "booking_overlap",
        "booking_limit",
        "referral_required",
        "referral_not_found",
        "referral_cancelled",
        "referral_used",
        "referral_other_target",
    ),
)
async def book(request: web.Request, actor: Actor, body: BookIn) -> BookingOut:
    return await request.app[SERVICES].booking.book(actor, body.slot_id, body.referral_id)


@api.route(
    "GET",
    "/api/referrals/{referral_id}/slots",
    summary="The next free slots the patient's referral can book (of the specialty it refers "
    "to), soonest first, in the shape of GET /api/slots. Query: `kind`, `limit` (1-50, default "
    "5), `after`. Book one with POST /api/bookings and this `referral_id`.",
    response=SlotsOut,
    tag="booking",
    errors=(
        "not_authenticated",
        "invalid_id",
        "invalid_payload",
        "not_a_patient",
        "referral_not_found",
        "referral_cancelled",
        "referral_used",
        "referral_not_bookable",
    ),
    query=ReferralSlotQuery,
)
async def referral_slots(request: web.Request, actor: Actor) -> SlotsOut:
    referral_id = int_param(request, "referral_id")
    query = validate(ReferralSlotQuery, dict(request.query))
    assert isinstance(query, ReferralSlotQuery)
    slots = await request.app[SERVICES].booking.referral_slots(
        actor, referral_id, limit=query.limit, kind=query.kind, after=query.after
    )
    return SlotsOut(slots=slots)


@api.route(
    "GET",
    "/api/bookings",
    summary="The caller's bookings, active and cancelled, by start time (a doctor: the bookings "
    "of their slots).",
    response=BookingsOut,
    tag="booking",
    errors=("not_authenticated", "not_a_patient"),
)
async def my_bookings(request: web.Request, actor: Actor) -> BookingsOut:
    return BookingsOut(bookings=await request.app[SERVICES].booking.my_bookings(actor))


@api.route(
    "POST",
    "/api/bookings/{booking_id}/cancel",
    summary="Cancel one's own booking before it starts; the slot is free again.",
    body=EmptyIn,
    response=BookingOut,
    tag="booking",
    errors=(*_ACCESS, "invalid_payload", "booking_cancelled", "slot_in_past"),
)
async def cancel(request: web.Request, actor: Actor, body: EmptyIn) -> BookingOut:
    booking_id = int_param(request, "booking_id")
    return await request.app[SERVICES].booking.cancel(actor, booking_id)


@api.route(
    "GET",
    "/api/bookings/{booking_id}.ics",
    summary="The booking as an iCalendar (RFC 5545) file, `text/calendar`, for the patient's "
    "calendar. A cancelled booking gives STATUS:CANCELLED with the same UID.",
    tag="booking",
    errors=_ACCESS,
)
async def booking_ics(request: web.Request, actor: Actor) -> web.StreamResponse:
    booking_id = int_param(request, "booking_id")
    text = await request.app[SERVICES].booking.ics(actor, booking_id)
    return web.Response(
        text=text,
        content_type="text/calendar",
        charset="utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="booking-{booking_id}.ics"',
            "Cache-Control": "no-store",
        },
    )


_HOURS = "/api/doctors/{doctor_id}/schedule"


@api.route(
    "GET",
    "/api/doctors",
    summary="Every doctor with their specialties, by name (schedulers: whose hours to manage).",
    response=DoctorsOut,
    tag="booking",
    errors=("not_authenticated", "not_a_scheduler"),
)
async def doctors(request: web.Request, actor: Actor) -> DoctorsOut:
    return await request.app[SERVICES].hours.doctors(actor)


@api.route(
    "GET",
    _HOURS,
    summary="A doctor's weekly hours, by weekday and start (schedulers: any doctor; a doctor: "
    "their own).",
    response=SchedulesOut,
    tag="booking",
    errors=("not_authenticated", "invalid_id", "not_your_schedule", "doctor_not_found"),
)
async def doctor_schedule(request: web.Request, actor: Actor) -> SchedulesOut:
    doctor_id = int_param(request, "doctor_id")
    return await request.app[SERVICES].hours.schedule(actor, doctor_id)


@api.route(
    "POST",
    _HOURS,
    summary="A scheduler adds weekly hours for a doctor; their slots for the coming "
    "`CONSULT_SLOT_DAYS` days are generated at once. Hours overlapping the doctor's other "
    "hours (any specialty or kind) are refused.",
    body=ScheduleIn,
    response=ScheduleAddedOut,
    status=201,
    tag="booking",
    errors=(
        "not_authenticated",
        "invalid_id",
        "invalid_payload",
        "invalid_schedule",
        "not_a_scheduler",
        "unknown_specialty",
        "doctor_not_found",
        "specialty_not_practised",
        "schedule_overlap",
    ),
)
async def add_hours(request: web.Request, actor: Actor, body: ScheduleIn) -> ScheduleAddedOut:
    doctor_id = int_param(request, "doctor_id")
    return await request.app[SERVICES].hours.add_hours(
        actor,
        doctor_id,
        body.specialty,
        body.kind,
        body.weekday,
        body.start_minute,
        body.end_minute,
        body.slot_minutes,
        body.timezone,
    )


@api.route(
    "DELETE",
    _HOURS + "/{schedule_id}",
    summary="A scheduler removes weekly hours: their free future slots are deleted; slots "
    "already booked stay with their bookings but are not offered again.",
    response=ScheduleRemovedOut,
    tag="booking",
    errors=(
        "not_authenticated",
        "invalid_id",
        "not_a_scheduler",
        "doctor_not_found",
        "schedule_not_found",
    ),
)
async def remove_hours(request: web.Request, actor: Actor) -> ScheduleRemovedOut:
    doctor_id = int_param(request, "doctor_id")
    schedule_id = int_param(request, "schedule_id")
    return await request.app[SERVICES].hours.remove_hours(actor, doctor_id, schedule_id)
