"""Ratings over HTTP: the patient rates a finished consultation, a past booked visit and the
service (PUT: given once, changed within 7 days); their own ratings; the schedulers' figures;
a doctor's own figures and comments."""

from __future__ import annotations

from aiohttp import web

from consult.domain import Actor
from consult.http.routing import SERVICES, Api, int_param
from consult.ratings.policy import RatingKind
from consult.ratings.schemas import (
    DoctorRatingsOut,
    RatingIn,
    RatingOut,
    RatingsOut,
    RatingsSummaryOut,
)

api = Api()

_RATE = ("not_authenticated", "invalid_id", "invalid_payload", "not_a_patient", "rating_locked")
_CONSULTATION = (*_RATE, "consultation_not_found", "not_participant", "consultation_not_finished")
_BOOKING = (*_RATE, "booking_not_found", "not_your_booking", "booking_cancelled", "visit_not_over")
_PUT = (
    " Given once per visit: a second PUT is a change, allowed for 7 days after the first rating "
    "(then 409 rating_locked); a PUT that says what is stored changes nothing (200). 201 when "
    "given, 200 when changed or repeated. The schedulers' figures move live (ratings:summary)."
)


def _answer(result: tuple[RatingOut, bool]) -> web.Response:
    out, fresh = result
    return web.json_response(out.model_dump(mode="json"), status=201 if fresh else 200)


async def _rate_consultation(
    request: web.Request, actor: Actor, body: RatingIn, kind: RatingKind
) -> web.Response:
    cid = int_param(request, "consultation_id")
    return _answer(await request.app[SERVICES].ratings.rate_consultation(actor, cid, kind, body))


async def _rate_booking(
    request: web.Request, actor: Actor, body: RatingIn, kind: RatingKind
) -> web.Response:
    bid = int_param(request, "booking_id")
    return _answer(await request.app[SERVICES].ratings.rate_booking(actor, bid, kind, body))


@api.route(
    "PUT",
    "/api/consultations/{consultation_id}/rating",
    summary="The patient rates their finished consultation (score 1-5, optional comment of up "
    "to 1,000 characters)." + _PUT,
    body=RatingIn,
    response=RatingOut,
    status=201,
    also=(200,),
    tag="ratings",
    errors=_CONSULTATION,
)
async def rate_consultation(request: web.Request, actor: Actor, body: RatingIn) -> web.Response:
    return await _rate_consultation(request, actor, body, RatingKind.CONSULTATION)


@api.route(
    "PUT",
    "/api/consultations/{consultation_id}/service-rating",
    summary="The patient rates the service as a whole, for a finished consultation." + _PUT,
    body=RatingIn,
    response=RatingOut,
    status=201,
    also=(200,),
    tag="ratings",
    errors=_CONSULTATION,
)
async def rate_consultation_service(
    request: web.Request, actor: Actor, body: RatingIn
) -> web.Response:
    return await _rate_consultation(request, actor, body, RatingKind.SERVICE)


@api.route(
    "PUT",
    "/api/bookings/{booking_id}/rating",
    summary="The patient rates the booking process of a booked visit, once its slot is over "
    "(not a cancelled one)." + _PUT,
    body=RatingIn,
    response=RatingOut,
    status=201,
    also=(200,),
    tag="ratings",
    errors=_BOOKING,
)
async def rate_booking(request: web.Request, actor: Actor, body: RatingIn) -> web.Response:
    return await _rate_booking(request, actor, body, RatingKind.BOOKING)


@api.route(
    "PUT",
    "/api/bookings/{booking_id}/service-rating",
    summary="The patient rates the service as a whole, for a booked visit whose slot is over."
    + _PUT,
    body=RatingIn,
    response=RatingOut,
    status=201,
    also=(200,),
    tag="ratings",
    errors=_BOOKING,
)
async def rate_booking_service(request: web.Request, actor: Actor, body: RatingIn) -> web.Response:
    return await _rate_booking(request, actor, body, RatingKind.SERVICE)


@api.route(
    "GET",
    "/api/patients/me/ratings",
    summary="The patient's own ratings, newest first, each with until when it may change. "
    "Audited as rating.read.",
    response=RatingsOut,
    tag="ratings",
    errors=("not_authenticated", "not_a_patient"),
)
async def my_ratings(request: web.Request, actor: Actor) -> RatingsOut:
    return RatingsOut(ratings=await request.app[SERVICES].ratings.of_patient(actor))


@api.route(
    "GET",
    "/api/scheduler/ratings",
    summary="The ratings of the last 30 days: count, average and distribution (1-5) of each "
    "kind, overall, per specialty and per doctor. The same object is pushed live to "
    "schedulers' sockets as `ratings:summary` when a rating is given or changed.",
    response=RatingsSummaryOut,
    tag="ratings",
    errors=("not_authenticated", "not_a_scheduler"),
)
async def summary(request: web.Request, actor: Actor) -> RatingsSummaryOut:
    return await request.app[SERVICES].ratings.summary_for(actor)


@api.route(
    "GET",
    "/api/doctors/me/ratings",
    summary="A doctor's own ratings of the last 30 days (each kind's count, average and "
    "distribution) and the comments given with them, newest first, naming no patient. "
    "Audited as rating.read, one entry per patient whose comment is shown.",
    response=DoctorRatingsOut,
    tag="ratings",
    errors=("not_authenticated", "not_a_doctor"),
)
async def doctor_ratings(request: web.Request, actor: Actor) -> DoctorRatingsOut:
    return await request.app[SERVICES].ratings.of_doctor(actor)
