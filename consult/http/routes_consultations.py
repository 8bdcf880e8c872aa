"""Start, read and end consultations; the transcript; recommendations; the patient record."""

from __future__ import annotations

from aiohttp import web

from consult.domain import Actor
from consult.errors import NotFound
from consult.http.routing import SERVICES, Api, int_param, query_int
from consult.queue.schemas import TicketOut
from consult.records.schemas import (
    RECORD_MAX_PAGE,
    RECORD_PAGE,
    RECORD_TRANSCRIPT_PAGE,
    RecommendationIn,
    RecommendationOut,
    RecordOut,
    RecordQuery,
)
from consult.schemas import (
    MAX_ID,
    MESSAGES_MAX_PAGE,
    MESSAGES_PAGE,
    ConsultationOut,
    ConsultationsOut,
    EmptyIn,
    MessagesOut,
    MessagesQuery,
    StartConsultationIn,
)

api = Api()
_ACCESS = ("not_authenticated", "consultation_not_found", "not_participant")
_RECORD_ACCESS = ("not_authenticated", "patient_not_found")
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
    summary="A page of the transcript, in sequence order: the messages after seq `after` "
    f"(default 0), at most `limit` of them (default {MESSAGES_PAGE}, at most {MESSAGES_MAX_PAGE}); "
    "`has_more` says whether more follow (ask again with after = the last seq given).",
    response=MessagesOut,
    tag="chat",
    errors=("invalid_id", "invalid_after", "invalid_limit", *_ACCESS),
    query=MessagesQuery,
)
async def messages(request: web.Request, actor: Actor) -> MessagesOut:
    cid = int_param(request, "consultation_id")
    after, limit = _transcript_page(request)
    return await request.app[SERVICES].chat.transcript(actor, cid, after, limit)


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


_RECORD_PAGE = (
    f"A page of the record, newest consultation first: at most `limit` entries (default "
    f"{RECORD_PAGE}, at most {RECORD_MAX_PAGE}) older than consultation `before`; `next` is the "
    f"`before` of the next page (null on the last). Each entry carries the first "
    f"{RECORD_TRANSCRIPT_PAGE} messages of its transcript and `transcript_has_more`."
)


@api.route(
    "GET",
    "/api/patients/me/record",
    summary="The caller's own record: consultations with transcript and recommendations. "
    + _RECORD_PAGE,
    response=RecordOut,
    tag="records",
    errors=("not_authenticated", "invalid_before", "invalid_limit", "patient_not_found"),
    query=RecordQuery,
)
async def my_record(request: web.Request, actor: Actor) -> RecordOut:
    before, limit = _record_page(request)
    return await request.app[SERVICES].records.record(
        actor, actor.user_id, before=before, limit=limit
    )


@api.route(
    "GET",
    "/api/patients/{patient_id}/record",
    summary="A patient's record, for a doctor who has consulted them (or the patient). "
    + _RECORD_PAGE,
    response=RecordOut,
    tag="records",
    errors=("invalid_id", "invalid_before", "invalid_limit", *_RECORD_ACCESS),
    query=RecordQuery,
)
async def patient_record(request: web.Request, actor: Actor) -> RecordOut:
    pid = int_param(request, "patient_id")
    before, limit = _record_page(request)
    return await request.app[SERVICES].records.record(actor, pid, before=before, limit=limit)


@api.route(
    "GET",
    "/api/patients/{patient_id}/record/{consultation_id}/messages",
    summary="A page of the transcript of one consultation in the record, for whoever may read "
    "the record; `after` and `limit` as for GET /api/consultations/{consultation_id}/messages.",
    response=MessagesOut,
    tag="records",
    errors=(
        "invalid_id",
        "invalid_after",
        "invalid_limit",
        *_RECORD_ACCESS,
        "consultation_not_found",
    ),
    query=MessagesQuery,
)
async def record_transcript(request: web.Request, actor: Actor) -> MessagesOut:
    pid = int_param(request, "patient_id")
    cid = int_param(request, "consultation_id")
    after, limit = _transcript_page(request)
    return await request.app[SERVICES].records.transcript(actor, pid, cid, after, limit)


def _transcript_page(request: web.Request) -> tuple[int, int]:
    after = query_int(request, "after", 0, 0, MAX_ID, "a sequence number", code="invalid_after")
    limit = query_int(
        request, "limit", MESSAGES_PAGE, 1, MESSAGES_MAX_PAGE, "a count", code="invalid_limit"
    )
    return after, limit


def _record_page(request: web.Request) -> tuple[int | None, int]:
    before = query_int(request, "before", 0, 1, MAX_ID, "a consultation id", code="invalid_before")
    limit = query_int(
        request, "limit", RECORD_PAGE, 1, RECORD_MAX_PAGE, "a count", code="invalid_limit"
    )
    return before or None, limit
