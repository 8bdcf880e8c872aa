"""Start, read and end consultations; the transcript; recommendations; the patient record."""

from __future__ import annotations

from aiohttp import web

from consult.domain import Actor
from consult.errors import Invalid, NotFound
from consult.http.routing import SERVICES, Api, int_param
from consult.queue.schemas import TicketOut
from consult.schemas import (
    MAX_ID,
    ConsultationOut,
    ConsultationsOut,
    EmptyIn,
    MessagesOut,
    MessagesQuery,
    RecommendationIn,
    RecommendationOut,
    RecordOut,
    StartConsultationIn,
)

api = Api()
_ACCESS = ("not_authenticated", "consultation_not_found", "not_participant")
_OFFER_ERRORS = (
    "not_authenticated",
    "invalid_id",
    "not_a_doctor",
    "consultation_not_found",
    "no_such_offer",
)


@api.route(
    "POST",
    "/api/consultations",
    summary="Join the walk-in queue for an online consultation (verified patients). The answer "
    "is a ticket: place, wait estimate range, what happens next, and alternative slots when no "
    "doctor is online or the wait is long. A free doctor is offered the ticket at once "
    "(status offered, place 0); the consultation is active when they accept.",
    body=StartConsultationIn,
    response=TicketOut,
    status=201,
    tag="consultations",
    errors=(
        "not_authenticated",
        "invalid_payload",
        "not_a_patient",
        "identity_not_verified",
        "unknown_specialty",
        "not_covered",
        "already_in_consultation",
        "unknown_doctor",
    ),
)
async def start(request: web.Request, actor: Actor, body: StartConsultationIn) -> TicketOut:
    return await request.app[SERVICES].tickets.join(actor, body)


@api.route(
    "GET",
    "/api/queue/ticket",
    summary="The patient's current queue ticket, with place, estimate and doctors' state.",
    response=TicketOut,
    tag="queue",
    errors=("not_authenticated", "no_ticket"),
)
async def ticket(request: web.Request, actor: Actor) -> TicketOut:
    current = await request.app[SERVICES].tickets.ticket(actor)
    if current is None:
        raise NotFound("you are not waiting in a queue", code="no_ticket")
    return current


@api.route(
    "POST",
    "/api/consultations/{consultation_id}/accept",
    summary="The offered doctor accepts: the consultation becomes active for both sides.",
    body=EmptyIn,
    response=ConsultationOut,
    tag="queue",
    errors=_OFFER_ERRORS,
)
async def accept(request: web.Request, actor: Actor, body: EmptyIn) -> ConsultationOut:
    cid = int_param(request, "consultation_id")
    return await request.app[SERVICES].consultations.accept(actor, cid)


@api.route(
    "POST",
    "/api/consultations/{consultation_id}/decline",
    summary="The offered doctor declines: the ticket keeps its place and goes to another doctor.",
    body=EmptyIn,
    response=ConsultationOut,
    tag="queue",
    errors=_OFFER_ERRORS,
)
async def decline(request: web.Request, actor: Actor, body: EmptyIn) -> ConsultationOut:
    cid = int_param(request, "consultation_id")
    return await request.app[SERVICES].consultations.decline(actor, cid)


@api.route(
    "GET",
    "/api/consultations/open",
    summary="The caller's waiting or active consultations.",
    response=ConsultationsOut,
    tag="consultations",
    errors=("not_authenticated",),
)
async def open_consultations(request: web.Request, actor: Actor) -> ConsultationsOut:
    return ConsultationsOut(consultations=await request.app[SERVICES].consultations.open_for(actor))


@api.route(
    "GET",
    "/api/consultations/{consultation_id}",
    summary="One consultation the caller takes part in.",
    response=ConsultationOut,
    tag="consultations",
    errors=("invalid_id", *_ACCESS),
)
async def get_consultation(request: web.Request, actor: Actor) -> ConsultationOut:
    cid = int_param(request, "consultation_id")
    return await request.app[SERVICES].consultations.get(actor, cid)


@api.route(
    "POST",
    "/api/consultations/{consultation_id}/end",
    summary="End the consultation (either side). A waiting one is cancelled instead.",
    body=EmptyIn,
    response=ConsultationOut,
    tag="consultations",
    errors=("invalid_id", "invalid_payload", "consultation_ended", "no_such_offer", *_ACCESS),
)
async def end(request: web.Request, actor: Actor, body: EmptyIn) -> ConsultationOut:
    cid = int_param(request, "consultation_id")
    return await request.app[SERVICES].consultations.end(actor, cid)


@api.route(
    "GET",
    "/api/consultations/{consultation_id}/messages",
    summary="The transcript, in sequence order; `?after=N` gives only messages after seq N.",
    response=MessagesOut,
    tag="chat",
    errors=("invalid_id", "invalid_after", *_ACCESS),
    query=MessagesQuery,
)
async def messages(request: web.Request, actor: Actor) -> MessagesOut:
    cid = int_param(request, "consultation_id")
    raw = request.query.get("after", "0")
    # ASCII digits only (str.isdigit() took "²" and "١"), and within the seq column.
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 10 and int(raw) <= MAX_ID):
        raise Invalid(f"after must be a sequence number, 0 to {MAX_ID}", code="invalid_after")
    return MessagesOut(messages=await request.app[SERVICES].chat.transcript(actor, cid, int(raw)))


@api.route(
    "POST",
    "/api/consultations/{consultation_id}/recommendations",
    summary="The consulting doctor writes a recommendation into the patient's record.",
    body=RecommendationIn,
    response=RecommendationOut,
    status=201,
    tag="records",
    errors=("invalid_id", "invalid_payload", "not_the_doctor", "consultation_not_active", *_ACCESS),
)
async def recommend(
    request: web.Request, actor: Actor, body: RecommendationIn
) -> RecommendationOut:
    cid = int_param(request, "consultation_id")
    return await request.app[SERVICES].records.add_recommendation(actor, cid, body.text)


@api.route(
    "GET",
    "/api/patients/me/record",
    summary="The caller's own record: consultations with transcript and recommendations.",
    response=RecordOut,
    tag="records",
    errors=("not_authenticated", "patient_not_found"),
)
async def my_record(request: web.Request, actor: Actor) -> RecordOut:
    return await request.app[SERVICES].records.record(actor, actor.user_id)


@api.route(
    "GET",
    "/api/patients/{patient_id}/record",
    summary="A patient's record, for a doctor who has consulted them (or the patient).",
    response=RecordOut,
    tag="records",
    errors=("not_authenticated", "invalid_id", "patient_not_found", "not_your_patient"),
)
async def patient_record(request: web.Request, actor: Actor) -> RecordOut:
    pid = int_param(request, "patient_id")
    return await request.app[SERVICES].records.record(actor, pid)
