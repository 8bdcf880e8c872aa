""" "Ask the doctor" over HTTP: ask after a finished consultation, the doctor's inbox, answer."""

from __future__ import annotations

from aiohttp import web

from consult.domain import Actor
from consult.followups.schemas import AnswerIn, AskIn, FollowUpOut, FollowUpsOut, FollowUpsQuery
from consult.http.routing import SERVICES, Api, int_param, query_flag

api = Api()


@api.route(
    "POST",
    "/api/consultations/{consultation_id}/follow-ups",
    summary="The patient asks the doctor of a finished consultation a follow-up question (up to "
    "2,000 characters), within CONSULT_FOLLOW_UP_DAYS (14) days of its end. It lands in the "
    "doctor's inbox (follow-up:asked). A repeat with the same client_id (a double click, a "
    "retry) stores nothing and gets the stored question, again with 201.",
    body=AskIn,
    response=FollowUpOut,
    status=201,
    tag="follow-ups",
    errors=(
        "not_authenticated",
        "invalid_id",
        "invalid_payload",
        "not_a_patient",
        "identity_not_verified",
        "consultation_not_found",
        "not_participant",
        "consultation_not_finished",
        "not_the_consulting_doctor",
        "follow_up_window_closed",
    ),
)
async def ask(request: web.Request, actor: Actor, body: AskIn) -> FollowUpOut:
    cid = int_param(request, "consultation_id")
    return await request.app[SERVICES].follow_ups.ask(actor, cid, body)


@api.route(
    "GET",
    "/api/follow-ups",
    summary="A doctor's inbox: unanswered follow-up questions to them, oldest first "
    "(`?answered=true`: those answered). A patient: their own questions and answers.",
    response=FollowUpsOut,
    tag="follow-ups",
    errors=("not_authenticated", "invalid_answered", "not_allowed"),
    query=FollowUpsQuery,
)
async def follow_ups(request: web.Request, actor: Actor) -> FollowUpsOut:
    answered = query_flag(request, "answered", code="invalid_answered")
    found = await request.app[SERVICES].follow_ups.list_for(actor, answered=answered)
    return FollowUpsOut(follow_ups=found)


@api.route(
    "POST",
    "/api/follow-ups/{follow_up_id}/answer",
    summary="The doctor answers a follow-up question, once (up to 4,000 characters). The answer "
    "reaches the patient live (follow-up:answered) and stays in their record. A repeat with the "
    "same client_id gets the stored follow-up (200); another answer gets 409.",
    body=AnswerIn,
    response=FollowUpOut,
    tag="follow-ups",
    errors=(
        "not_authenticated",
        "invalid_id",
        "invalid_payload",
        "not_a_doctor",
        "follow_up_not_found",
        "not_your_follow_up",
        "follow_up_already_answered",
    ),
)
async def answer(request: web.Request, actor: Actor, body: AnswerIn) -> FollowUpOut:
    fid = int_param(request, "follow_up_id")
    return await request.app[SERVICES].follow_ups.answer(actor, fid, body)
