"""Ratings over HTTP: the patient rates a finished consultation, a past booked visit and the
service (PUT: given once, changed within 7 days); their own ratings; the schedulers' figures;
a doctor's own figures and comments."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

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
from consult.ratings.service import RatingService

api = Api()

_RATE = ("not_authenticated", "invalid_id", "invalid_payload", "not_a_patient", "rating_locked")
_PUT = (
    " Given once per visit: a second PUT is a change, allowed for 7 days after the first rating "
    "(then 409 rating_locked); a PUT that says what is stored changes nothing (200). 201 when "
    "given, 200 when changed or repeated. The schedulers' figures move live (ratings:summary)."
)


@dataclass(frozen=True)
class _Rated:
    """What a PUT rates: a finished consultation or a booked visit, by the path's id."""

    param: str
    errors: tuple[str, ...]
    rate: Callable[
        [RatingService, Actor, int, RatingKind, RatingIn], Awaitable[tuple[RatingOut, bool]]
    ]


_CONSULTATION = _Rated(
    "consultation_id",
    (*_RATE, "consultation_not_found", "not_participant", "consultation_not_finished"),
    RatingService.rate_consultation,
)
_BOOKING = _Rated(
    "booking_id",
    (*_RATE, "booking_not_found", "not_your_booking", "booking_cancelled", "visit_not_over"),
    RatingService.rate_booking,
)


def _rate_route(name: str, path: str, summary: str, rated: _Rated, kind: RatingKind) -> None:
    async def handler(request: web.Request, actor: Actor, body: RatingIn) -> web.Response:
        rated_id = int_param(request, rated.param)
        out, fresh = await rated.rate(request.app[SERVICES].ratings, actor, rated_id, kind, body)
        return web.json_response(out.model_dump(mode="json"), status=201 if fresh else 200)

    handler.__name__ = name  # OpenAPI's operationId
    api.route(
        "PUT",
        path,
        summary=summary + _PUT,
        body=RatingIn,
        response=RatingOut,
        status=201,
        also=(200,),
        tag="ratings",
        errors=rated.errors,
    )(handler)


_rate_route(
    "rate_consultation",
    "/api/consultations/{consultation_id}/rating",
    "The patient rates their finished consultation (score 1-5, optional comment of up "
    "to 1,000 characters).",
    _CONSULTATION,
    RatingKind.CONSULTATION,
)
_rate_route(
    "rate_consultation_service",
    "/api/consultations/{consultation_id}/service-rating",
    "The patient rates the service as a whole, for a finished consultation.",
    _CONSULTATION,
    RatingKind.SERVICE,
)
_rate_route(
    "rate_booking",
    "/api/bookings/{booking_id}/rating",
    "The patient rates the booking process of a booked visit, once its slot is over "
    "(not a cancelled one).",
    _BOOKING,
    RatingKind.BOOKING,
)
_rate_route(
    "rate_booking_service",
    "/api/bookings/{booking_id}/service-rating",
    "The patient rates the service as a whole, for a booked visit whose slot is over.",
    _BOOKING,
    RatingKind.SERVICE,
)


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
