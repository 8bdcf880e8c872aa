"""Becoming verified: the patient's request, the scheduler's queue and decision."""

from __future__ import annotations

from aiohttp import web

from consult.domain import Actor
from consult.http.routing import SERVICES, Api, int_param
from consult.identity.schemas import (
    ConfirmIn,
    PendingRequestsOut,
    RejectIn,
    VerificationIn,
    VerificationOut,
)

api = Api()

_PESEL = ("pesel_invalid_length", "pesel_not_digits", "pesel_bad_checksum", "pesel_bad_date")
_DECIDE = (
    "not_authenticated",
    "invalid_payload",
    "invalid_id",
    "not_a_scheduler",
    "request_not_found",
    "request_decided",
)


@api.route(
    "POST",
    "/api/me/identity",
    summary="A basic patient asks to be verified, giving their PESEL (checksum and date of "
    "birth validated); a scheduler confirms after seeing an identity document. Needs a "
    "confirmed e-mail.",
    body=VerificationIn,
    response=VerificationOut,
    status=202,
    errors=(
        "not_authenticated",
        "invalid_payload",
        "not_a_patient",
        "email_not_confirmed",
        "already_verified",
        "verification_pending",
    )
    + _PESEL,
    tag="identity",
)
async def request_verification(
    request: web.Request, actor: Actor, body: VerificationIn
) -> VerificationOut:
    return await request.app[SERVICES].identity.begin(actor, body.pesel)


@api.route(
    "GET",
    "/api/me/identity",
    summary="The patient's identity level and latest verification request.",
    response=VerificationOut,
    errors=("not_authenticated", "not_a_patient"),
    tag="identity",
)
async def verification_status(request: web.Request, actor: Actor) -> VerificationOut:
    return await request.app[SERVICES].identity.status(actor)


@api.route(
    "GET",
    "/api/identity/requests",
    summary="Schedulers: the pending verification requests, oldest first, each with the "
    "date of birth its PESEL encodes (audited as a read of each patient's data).",
    response=PendingRequestsOut,
    errors=("not_authenticated", "not_a_scheduler"),
    tag="identity",
)
async def pending(request: web.Request, actor: Actor) -> PendingRequestsOut:
    return PendingRequestsOut(requests=await request.app[SERVICES].identity.pending(actor))


@api.route(
    "POST",
    "/api/identity/requests/{request_id}/confirm",
    summary="Schedulers: the identity document was checked; the account becomes verified "
    "with the request's PESEL (audited with what was checked).",
    body=ConfirmIn,
    status=204,
    errors=_DECIDE,
    tag="identity",
)
async def confirm(request: web.Request, actor: Actor, body: ConfirmIn) -> None:
    request_id = int_param(request, "request_id")
    await request.app[SERVICES].identity.decide(actor, request_id, confirm=True, note=body.document)


@api.route(
    "POST",
    "/api/identity/requests/{request_id}/reject",
    summary="Schedulers: refuse the request with a reason the patient sees.",
    body=RejectIn,
    status=204,
    errors=_DECIDE,
    tag="identity",
)
async def reject(request: web.Request, actor: Actor, body: RejectIn) -> None:
    request_id = int_param(request, "request_id")
    await request.app[SERVICES].identity.decide(actor, request_id, confirm=False, note=body.reason)
