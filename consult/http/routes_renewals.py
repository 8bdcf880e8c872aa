"""Prescription renewals over HTTP: the patient asks, the doctor's inbox, approve or decline,
a scheduler's hand-over to another doctor of the specialty."""

from __future__ import annotations

from aiohttp import web

from consult.domain import Actor
from consult.edges.validation import validate
from consult.errors import Invalid
from consult.http.routing import SERVICES, Api, int_param
from consult.outcome.renewal_payloads import (
    ApproveIn,
    DeclineIn,
    ReassignIn,
    RenewalIn,
    RenewalOut,
    RenewalsOut,
    RenewalsQuery,
)

api = Api()

_DECIDING = (
    "not_authenticated",
    "invalid_id",
    "invalid_payload",
    "not_a_doctor",
    "renewal_not_found",
    "not_your_renewal",
    "renewal_decided",
)


@api.route(
    "POST",
    "/api/prescriptions/{prescription_id}/renewal",
    summary="The patient asks to renew a prescription of theirs: active, or expired less than "
    "120 days ago, of a product for long-term treatment (not an antibiotic, psychotropic or "
    "narcotic). The request waits for the doctor who issued it (renewal:requested). While one "
    "is open for that prescription, asking again answers it with 200: nothing new is stored "
    "and nobody is told again.",
    body=RenewalIn,
    response=RenewalOut,
    status=201,
    also=(200,),
    tag="renewals",
    errors=(
        "not_authenticated",
        "invalid_id",
        "invalid_payload",
        "not_a_patient",
        "prescription_not_found",
        "renewal_cancelled",
        "renewal_antibiotic",
        "renewal_psychotropic_narcotic",
        "renewal_not_long_term",
        "renewal_expired_too_long",
    ),
)
async def request_renewal(request: web.Request, actor: Actor, body: RenewalIn) -> web.Response:
    pid = int_param(request, "prescription_id")
    out, fresh = await request.app[SERVICES].renewals.request(actor, pid, body.note)
    return web.json_response(out.model_dump(mode="json"), status=201 if fresh else 200)


@api.route(
    "GET",
    "/api/renewals",
    summary="Renewal requests (`status`: `open`, the default, or `decided`): a doctor's, "
    "waiting for them (decided: decided by them), oldest first; a patient's own, newest "
    "first; for a scheduler, every one, oldest first.",
    response=RenewalsOut,
    tag="renewals",
    errors=("not_authenticated", "invalid_query"),
    query=RenewalsQuery,
)
async def renewals(request: web.Request, actor: Actor) -> RenewalsOut:
    try:
        query = validate(RenewalsQuery, dict(request.query))
    except Invalid as exc:
        raise Invalid(exc.message, code="invalid_query", details=exc.details) from None
    assert isinstance(query, RenewalsQuery)
    found = await request.app[SERVICES].renewals.list_for(actor, query.status)
    return RenewalsOut(renewals=found)


@api.route(
    "POST",
    "/api/renewals/{renewal_id}/approve",
    summary="The doctor the request waits for approves it: a new package (new key and access "
    "code, renewal_of the prescription) with the prescription issued again today, the "
    "original's dosage, packs and validity unless the body changes them (validity from the "
    "product's category; validity_days and therapy_days for long-term treatment). Tells the "
    "patient and the doctor (renewal:decided).",
    body=ApproveIn,
    response=RenewalOut,
    tag="renewals",
    errors=(
        *_DECIDING,
        "renewal_cancelled",
        "long_term_not_allowed",
        "validity_out_of_range",
        "therapy_days_required",
        "therapy_too_long",
    ),
)
async def approve(request: web.Request, actor: Actor, body: ApproveIn) -> RenewalOut:
    rid = int_param(request, "renewal_id")
    return await request.app[SERVICES].renewals.approve(actor, rid, body)


@api.route(
    "POST",
    "/api/renewals/{renewal_id}/decline",
    summary="The doctor the request waits for declines it with a reason (1-500 characters), "
    "shown to the patient. Tells the patient and the doctor (renewal:decided).",
    body=DeclineIn,
    response=RenewalOut,
    tag="renewals",
    errors=_DECIDING,
)
async def decline(request: web.Request, actor: Actor, body: DeclineIn) -> RenewalOut:
    rid = int_param(request, "renewal_id")
    return await request.app[SERVICES].renewals.decline(actor, rid, body.reason)


@api.route(
    "POST",
    "/api/renewals/{renewal_id}/reassign",
    summary="A scheduler hands an open request to another doctor practising the specialty of "
    "the consultation the prescription came from. Tells both doctors (renewal:reassigned).",
    body=ReassignIn,
    response=RenewalOut,
    tag="renewals",
    errors=(
        "not_authenticated",
        "invalid_id",
        "invalid_payload",
        "not_a_scheduler",
        "renewal_not_found",
        "doctor_not_found",
        "renewal_decided",
        "renewal_same_doctor",
        "doctor_not_in_specialty",
    ),
)
async def reassign(request: web.Request, actor: Actor, body: ReassignIn) -> RenewalOut:
    rid = int_param(request, "renewal_id")
    return await request.app[SERVICES].renewals.reassign(actor, rid, body.doctor_id)
