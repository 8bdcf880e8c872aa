"""The patient's record as FHIR R4 (application/fhir+json): the whole record as a Bundle, and
the MedicationRequest search as FHIR servers answer one (a searchset Bundle)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic_core import to_json

from consult.domain import Actor
from consult.edges.validation import validate
from consult.errors import Invalid
from consult.fhir.bundles import parse_statuses
from consult.fhir.schemas import FHIR_JSON, BundleOut, MedicationRequestQuery
from consult.http.routing import SERVICES, TRUSTED_PROXIES, Api, int_param
from consult.http.same_origin import PUBLIC_ORIGINS, client_origin

api = Api()

_ERRORS = ("not_authenticated", "invalid_id", "patient_not_found")


def _fhir(bundle: dict[str, Any]) -> web.Response:
    # pydantic's serializer (Rust) writes the same bytes as json.dumps(ensure_ascii=False,
    # compact) at a third of the time: a long record's bundle is megabytes (record_bench.py).
    return web.Response(body=to_json(bundle), content_type=FHIR_JSON, charset="utf-8")


def _origin(request: web.Request) -> str:
    return client_origin(request, request.app[PUBLIC_ORIGINS], request.app[TRUSTED_PROXIES])


async def _record(request: web.Request, actor: Actor, patient_id: int) -> web.Response:
    fhir = request.app[SERVICES].fhir
    return _fhir(await fhir.record(actor, patient_id, _origin(request)))


async def _search(request: web.Request, actor: Actor, patient_id: int) -> web.Response:
    if len(request.query.getall("status", ())) > 1:
        raise Invalid(
            "give status once, its codes separated by commas (status=active,completed)",
            code="invalid_query",
        )
    try:
        query = validate(MedicationRequestQuery, dict(request.query))
    except Invalid as exc:
        raise Invalid(exc.message, code="invalid_query", details=exc.details) from None
    assert isinstance(query, MedicationRequestQuery)
    statuses = parse_statuses(query.status)
    origin = _origin(request)
    fhir = request.app[SERVICES].fhir
    bundle = await fhir.medication_requests(
        actor, patient_id, statuses, origin, origin + request.path_qs
    )
    return _fhir(bundle)


@api.route(
    "GET",
    "/api/patients/me/fhir",
    summary="The caller's record as a FHIR R4 Bundle (collection): Patient, Practitioners, "
    "Encounters, MedicationRequests, ServiceRequests, sick leave (Observation), "
    "Communications, DocumentReferences.",
    response=BundleOut,
    media_type=FHIR_JSON,
    tag="fhir",
    errors=_ERRORS,
)
async def my_fhir(request: web.Request, actor: Actor) -> web.Response:
    return await _record(request, actor, actor.user_id)


@api.route(
    "GET",
    "/api/patients/me/fhir/MedicationRequest",
    summary="Search the caller's MedicationRequests by `status` (codes separated by commas): "
    "a FHIR searchset Bundle with the matches and the resources they refer to.",
    response=BundleOut,
    media_type=FHIR_JSON,
    tag="fhir",
    errors=(*_ERRORS, "invalid_query"),
    query=MedicationRequestQuery,
)
async def my_medication_requests(request: web.Request, actor: Actor) -> web.Response:
    return await _search(request, actor, actor.user_id)


@api.route(
    "GET",
    "/api/patients/{patient_id}/fhir",
    summary="A patient's record as a FHIR R4 Bundle, for a doctor who has consulted them (or "
    "the patient).",
    response=BundleOut,
    media_type=FHIR_JSON,
    tag="fhir",
    errors=_ERRORS,
)
async def patient_fhir(request: web.Request, actor: Actor) -> web.Response:
    return await _record(request, actor, int_param(request, "patient_id"))


@api.route(
    "GET",
    "/api/patients/{patient_id}/fhir/MedicationRequest",
    summary="Search a patient's MedicationRequests by `status`, for a doctor who has consulted "
    "them (or the patient).",
    response=BundleOut,
    media_type=FHIR_JSON,
    tag="fhir",
    errors=(*_ERRORS, "invalid_query"),
    query=MedicationRequestQuery,
)
async def patient_medication_requests(request: web.Request, actor: Actor) -> web.Response:
    return await _search(request, actor, int_param(request, "patient_id"))
