"""The visit's outcome over HTTP: the catalogues' search, the doctor's draft, "Issue and end"
(once, under an Idempotency-Key), the issued documents, cancelling one, the patient's PESEL."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from consult.domain import Actor
from consult.edges.validation import validate
from consult.errors import Invalid, NotFound
from consult.http.routing import SERVICES, Api, int_param
from consult.outcome import icd10
from consult.outcome.issued import (
    DraftOut,
    IssuedOut,
    OutcomeOut,
    PackageOut,
    ReferralOut,
    SickLeaveOut,
)
from consult.outcome.lookup import (
    CancelIn,
    DiagnosesOut,
    DiagnosisFoundOut,
    PeselIn,
    PeselOut,
    ProductOut,
    ProductsOut,
    SearchQuery,
)
from consult.outcome.schemas import OutcomeDraft
from consult.outcome.service import check_idempotency_key
from consult.queue.service import check_doctor

api = Api()

IDEMPOTENCY_KEY = "Idempotency-Key"
_CONSULTING = (
    "not_authenticated",
    "invalid_id",
    "not_a_doctor",
    "consultation_not_found",
    "not_participant",
    "not_the_doctor",
)
_DRAFT_RULES = (
    "pesel_required",
    "product_unknown",
    "pack_size_unknown",
    "dispense_from_before_issue",
    "long_term_not_allowed",
    "validity_out_of_range",
    "therapy_days_required",
    "therapy_too_long",
    "icd10_unknown",
    "sick_leave_period_reversed",
    "sick_leave_backdated_too_far",
    "sick_leave_backdating_reason_required",
    "sick_leave_too_long",
    "nip_invalid_format",
    "nip_bad_checksum",
)


def _search(request: web.Request) -> SearchQuery:
    try:
        query = validate(SearchQuery, dict(request.query))
    except Invalid as exc:
        raise Invalid(exc.message, code="invalid_query", details=exc.details) from None
    assert isinstance(query, SearchQuery)
    return query


@api.route(
    "GET",
    "/api/products",
    summary="Doctors: the medicinal products whose name, substance, strength or form hold "
    "every typed word, best first (`q`, `limit` default 20, at most 50).",
    response=ProductsOut,
    tag="outcome",
    errors=("not_authenticated", "not_a_doctor", "invalid_query"),
    query=SearchQuery,
)
async def products(request: web.Request, actor: Actor) -> ProductsOut:
    check_doctor(actor)
    query = _search(request)
    catalogue = await request.app[SERVICES].outcome.catalogue.get()
    return ProductsOut(products=[ProductOut.of(p) for p in catalogue.search(query.q, query.limit)])


@api.route(
    "GET",
    "/api/products/{product_id}",
    summary="Doctors: one catalogue product, as the search gives it (the console shows a saved "
    "draft's products with it).",
    response=ProductOut,
    tag="outcome",
    errors=("not_authenticated", "not_a_doctor", "invalid_id", "product_not_found"),
)
async def product(request: web.Request, actor: Actor) -> ProductOut:
    check_doctor(actor)
    product_id = int_param(request, "product_id")
    catalogue = await request.app[SERVICES].outcome.catalogue.get()
    found = catalogue.get(product_id)
    if found is None:
        raise NotFound("no such product in the catalogue", code="product_not_found")
    return ProductOut.of(found)


@api.route(
    "GET",
    "/api/icd10",
    summary="Doctors: ICD-10 categories and subcategories by code prefix (`J06`, `j069`) or by "
    "the words of their titles, best first (`q`, `limit` default 20, at most 50).",
    response=DiagnosesOut,
    tag="outcome",
    errors=("not_authenticated", "not_a_doctor", "invalid_query"),
    query=SearchQuery,
)
async def diagnoses(request: web.Request, actor: Actor) -> DiagnosesOut:
    check_doctor(actor)
    query = _search(request)
    found = icd10.search(query.q, query.limit)
    return DiagnosesOut(diagnoses=[DiagnosisFoundOut(code=d.code, title=d.title) for d in found])


@api.route(
    "GET",
    "/api/consultations/{consultation_id}/outcome/draft",
    summary="The consulting doctor's saved Outcome draft (empty, version 0, if none) with its "
    "warnings.",
    response=DraftOut,
    tag="outcome",
    errors=_CONSULTING,
)
async def get_draft(request: web.Request, actor: Actor) -> DraftOut:
    cid = int_param(request, "consultation_id")
    return await request.app[SERVICES].outcome.draft(actor, cid)


@api.route(
    "PUT",
    "/api/consultations/{consultation_id}/outcome/draft",
    summary="Save the Outcome draft as the doctor types (the last save wins; shape checked, "
    "the catalogue and ICD-10 rules wait for Issue and end). Answers the new version and the "
    "warnings (an active prescription of the same substance).",
    body=OutcomeDraft,
    response=DraftOut,
    tag="outcome",
    errors=(*_CONSULTING, "invalid_payload", "consultation_ended"),
)
async def put_draft(request: web.Request, actor: Actor, body: OutcomeDraft) -> DraftOut:
    cid = int_param(request, "consultation_id")
    return await request.app[SERVICES].outcome.save_draft(actor, cid, body)


@api.route(
    "POST",
    "/api/consultations/{consultation_id}/outcome",
    summary="Issue and end: store the recommendation, one package of up to 5 e-prescriptions, "
    "referrals and sick leave, and end the consultation, in one transaction. Once: a repeat "
    "with the same Idempotency-Key and body answers the stored outcome (201 again); the same "
    "key with another body is refused (422 idempotency_key_reused). Tells the patient and the "
    "doctor (outcome:issued).",
    body=OutcomeDraft,
    response=OutcomeOut,
    status=201,
    tag="outcome",
    errors=(
        *_CONSULTING,
        "idempotency_key_required",
        "invalid_idempotency_key",
        "idempotency_key_reused",
        "invalid_payload",
        "consultation_ended",
        *_DRAFT_RULES,
    ),
    headers=(
        (IDEMPOTENCY_KEY, "A fresh random value per outcome (a UUID): a retry sends it again."),
    ),
)
async def issue(request: web.Request, actor: Actor, body: OutcomeDraft) -> web.Response:
    cid = int_param(request, "consultation_id")
    key = check_idempotency_key(request.headers.get(IDEMPOTENCY_KEY))
    out, fresh = await request.app[SERVICES].outcome.issue_and_end(actor, cid, body, key)
    headers = {} if fresh else {"Idempotent-Replayed": "true"}
    return web.json_response(out.model_dump(mode="json"), status=201, headers=headers)


@api.route(
    "GET",
    "/api/consultations/{consultation_id}/outcome",
    summary="The outcome issued at the end of the consultation: for its patient and any doctor "
    "who accepted it.",
    response=OutcomeOut,
    tag="outcome",
    errors=(
        "not_authenticated",
        "invalid_id",
        "consultation_not_found",
        "not_participant",
        "outcome_not_found",
    ),
)
async def get_outcome(request: web.Request, actor: Actor) -> OutcomeOut:
    cid = int_param(request, "consultation_id")
    return await request.app[SERVICES].outcome.outcome(actor, cid)


async def _issued(request: web.Request, actor: Actor, patient_id: int) -> IssuedOut:
    return await request.app[SERVICES].issued.of_patient(actor, patient_id)


@api.route(
    "GET",
    "/api/patients/me/issued",
    summary="The caller's packages of e-prescriptions (each prescription with its status), "
    "referrals and sick leave, newest first.",
    response=IssuedOut,
    tag="outcome",
    errors=("not_authenticated", "patient_not_found"),
)
async def my_documents(request: web.Request, actor: Actor) -> IssuedOut:
    return await _issued(request, actor, actor.user_id)


@api.route(
    "GET",
    "/api/patients/{patient_id}/issued",
    summary="A patient's issued documents, for a doctor who has consulted them (or the patient).",
    response=IssuedOut,
    tag="outcome",
    errors=("not_authenticated", "invalid_id", "patient_not_found"),
)
async def patient_documents(request: web.Request, actor: Actor) -> IssuedOut:
    return await _issued(request, actor, int_param(request, "patient_id"))


@api.route(
    "GET",
    "/api/patients/me/pesel",
    summary="The caller's PESEL on file (null if none).",
    response=PeselOut,
    tag="outcome",
    errors=("not_authenticated",),
)
async def my_pesel(request: web.Request, actor: Actor) -> PeselOut:
    return PeselOut(pesel=await request.app[SERVICES].issued.pesel(actor))


@api.route(
    "PUT",
    "/api/patients/me/pesel",
    summary="A patient puts their PESEL in their profile: 11 digits, checksum and date of "
    "birth validated. An e-prescription or sick leave needs it. A verified patient's PESEL "
    "(checked with their identity) cannot be changed here: 409 pesel_verified.",
    body=PeselIn,
    response=PeselOut,
    tag="outcome",
    errors=(
        "not_authenticated",
        "invalid_payload",
        "not_a_patient",
        "pesel_invalid_length",
        "pesel_not_digits",
        "pesel_bad_checksum",
        "pesel_bad_date",
        "pesel_verified",
    ),
)
async def put_pesel(request: web.Request, actor: Actor, body: PeselIn) -> PeselOut:
    return PeselOut(pesel=await request.app[SERVICES].issued.set_pesel(actor, body.pesel))


def _cancel_route(path: str, kind: str, response: type, missing: str) -> None:
    async def cancel(request: web.Request, actor: Actor, body: CancelIn) -> Any:
        document_id = int_param(request, "document_id")
        return await request.app[SERVICES].issued.cancel(actor, kind, document_id, body.reason)

    cancel.__name__ = f"cancel_{kind}"
    api.route(
        "POST",
        path,
        summary=f"The issuing doctor cancels the {kind.replace('_', ' ')} with a reason; it "
        "stays in the record as cancelled. Tells the patient (outcome:cancelled).",
        body=CancelIn,
        response=response,
        tag="outcome",
        errors=(
            "not_authenticated",
            "invalid_id",
            "invalid_payload",
            "not_a_doctor",
            missing,
            "not_the_issuing_doctor",
            "already_cancelled",
        ),
    )(cancel)


_cancel_route(
    "/api/prescriptions/{document_id}/cancel", "prescription", PackageOut, "prescription_not_found"
)
_cancel_route("/api/referrals/{document_id}/cancel", "referral", ReferralOut, "referral_not_found")
_cancel_route(
    "/api/sick-leaves/{document_id}/cancel", "sick_leave", SickLeaveOut, "sick_leave_not_found"
)
