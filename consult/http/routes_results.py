"""Laboratory and imaging results over HTTP: a sending system posts a FHIR Bundle with its
integration credential (answered in FHIR: a transaction-response Bundle, or an
OperationOutcome saying why nothing was stored); the patient and their doctors read the
results a page at a time, one value's history, and a report's PDF."""

from __future__ import annotations

import json
from typing import Any, Final

from aiohttp import web

from consult.attachments import attachment_headers
from consult.domain import Actor
from consult.edges.validation import validate
from consult.errors import ConsultError, Invalid, Unavailable
from consult.fhir.result_mapping import intake_response
from consult.fhir.schemas import FHIR_JSON
from consult.http.routing import SERVICES, Api, bearer_token, client_ip, int_param, query_int
from consult.http.same_origin import UnsupportedMediaType
from consult.json_limits import loads
from consult.results.issues import operation_outcome, outcome_of, refused
from consult.results.schemas import (
    RESULTS_MAX_PAGE,
    RESULTS_PAGE,
    IntakeBundleIn,
    IntakeResponseOut,
    OperationOutcomeOut,
    ResultHistoryOut,
    ResultHistoryQuery,
    ResultsOut,
    ResultsQuery,
)
from consult.results.service import MAX_BODY
from consult.schemas import MAX_ID

api = Api()

# The media types a FHIR client posts JSON as (FHIR's own, and plain JSON).
_TAKEN: Final = ("application/fhir+json", "application/json")
_CHUNK: Final = 256 * 1024
_READ = ("not_authenticated", "patient_not_found")


def _fhir(resource: dict[str, Any], status: int) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(resource, ensure_ascii=False, separators=(",", ":")),
        content_type=FHIR_JSON,
        charset="utf-8",
    )


def _outcome(error: ConsultError) -> web.Response:
    status, issues = outcome_of(error)
    response = _fhir(operation_outcome(issues), status)
    retry_after = error.details.get("retry_after")
    if isinstance(error, Unavailable) and isinstance(retry_after, int):  # the database's outage
        response.headers["Retry-After"] = str(retry_after)
    return response


async def _body(request: web.Request) -> bytes:
    """The body, refused (413) as soon as it is known to pass MAX_BODY; FHIR JSON only."""
    if request.content_type not in _TAKEN:
        raise UnsupportedMediaType(
            f"send the bundle as {_TAKEN[0]} (or {_TAKEN[1]}), not {request.content_type}"
        )
    too_large = refused(
        413, "too-costly", f"the body is over {MAX_BODY:,} bytes", code="report_too_large"
    )
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise too_large
    body = bytearray()
    while chunk := await request.content.read(_CHUNK):
        body += chunk
        if len(body) > MAX_BODY:
            raise too_large
    return bytes(body)


@api.route(
    "POST",
    "/api/integration/fhir",
    summary="A laboratory or imaging system delivers a result: a FHIR R4 Bundle (transaction "
    "or collection, as application/fhir+json) with one DiagnosticReport, the Observations it "
    "lists (values, units, reference ranges, interpretation) or a conclusion and its PDF "
    "(presentedForm data), the patient named by PESEL. Authenticated by an integration "
    "credential (Authorization: Bearer), never a session. 201 with a transaction-response "
    "Bundle; 200 when the same report was stored before (nothing changes) or a correction "
    "(status amended, corrected, ...) replaced it. Refusals are OperationOutcomes, nothing "
    "stored: 400 invalid_bundle (not FHIR), 422 invalid_report, unknown_patient or "
    "ambiguous_patient, 409 identifier_conflict, 413, 415, 401.",
    auth=False,
    status=201,
    also=(200,),
    media_type=FHIR_JSON,
    raw_body=IntakeBundleIn,
    response=IntakeResponseOut,
    error_body=OperationOutcomeOut,
    credential="integration",
    tag="results",
    errors=(
        "not_authenticated",
        "invalid_credential",
        "unsupported_media_type",
        "report_too_large",
        "invalid_bundle",
        "invalid_report",
        "unknown_patient",
        "ambiguous_patient",
        "identifier_conflict",
    ),
)
async def receive_result(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    try:
        sender = await services.results.credentials.authenticate(
            bearer_token(request), client_ip(request)
        )
    except ConsultError as exc:
        return _outcome(exc)
    try:
        body = await _body(request)
    except ConsultError as exc:
        await services.results.refused(sender, exc)
        return _outcome(exc)
    try:
        delivery = await services.results.receive(sender, body, loads)
    except ConsultError as exc:
        return _outcome(exc)
    return _fhir(intake_response(delivery), 201 if delivery.outcome == "created" else 200)


# --- reading ------------------------------------------------------------------------------------

_PAGE = (
    f"Newest first (when the sample was taken or the study made): at most `limit` results "
    f"(default {RESULTS_PAGE}, at most {RESULTS_MAX_PAGE}) older than result `before`; `next` "
    f"is the `before` of the next page (null on the last). Each with its observations (value, "
    f"unit, reference range, the laboratory's interpretation and the flag: high, low, "
    f"abnormal or normal, from the laboratory or computed from the range)."
)
_HISTORY = (
    "One value's history for a chart: the observations of the code `code` of the system "
    "`system` (LOINC: http://loinc.org), oldest first, with their ranges and flags."
)


def _page(request: web.Request) -> tuple[int | None, int]:
    before = query_int(request, "before", 0, 1, MAX_ID, "a result id", code="invalid_before")
    limit = query_int(
        request, "limit", RESULTS_PAGE, 1, RESULTS_MAX_PAGE, "a count", code="invalid_limit"
    )
    return before or None, limit


async def _history(request: web.Request, actor: Actor, patient_id: int) -> ResultHistoryOut:
    try:
        query = validate(ResultHistoryQuery, dict(request.query))
    except Invalid as exc:
        raise Invalid(exc.message, code="invalid_query", details=exc.details) from None
    assert isinstance(query, ResultHistoryQuery)
    return await request.app[SERVICES].results.history(actor, patient_id, query.system, query.code)


@api.route(
    "GET",
    "/api/patients/me/results",
    summary="The caller's laboratory and imaging results. " + _PAGE,
    response=ResultsOut,
    tag="results",
    errors=(*_READ, "invalid_before", "invalid_limit"),
    query=ResultsQuery,
)
async def my_results(request: web.Request, actor: Actor) -> ResultsOut:
    before, limit = _page(request)
    results = request.app[SERVICES].results
    return await results.page(actor, actor.user_id, before=before, limit=limit)


@api.route(
    "GET",
    "/api/patients/me/results/history",
    summary="The caller's own: " + _HISTORY,
    response=ResultHistoryOut,
    tag="results",
    errors=(*_READ, "invalid_query"),
    query=ResultHistoryQuery,
)
async def my_result_history(request: web.Request, actor: Actor) -> ResultHistoryOut:
    return await _history(request, actor, actor.user_id)


@api.route(
    "GET",
    "/api/patients/{patient_id}/results",
    summary="A patient's results, for a doctor who has consulted them (or the patient). " + _PAGE,
    response=ResultsOut,
    tag="results",
    errors=(*_READ, "invalid_id", "invalid_before", "invalid_limit"),
    query=ResultsQuery,
)
async def patient_results(request: web.Request, actor: Actor) -> ResultsOut:
    patient_id = int_param(request, "patient_id")
    before, limit = _page(request)
    results = request.app[SERVICES].results
    return await results.page(actor, patient_id, before=before, limit=limit)


@api.route(
    "GET",
    "/api/patients/{patient_id}/results/history",
    summary="For a doctor who has consulted the patient (or the patient): " + _HISTORY,
    response=ResultHistoryOut,
    tag="results",
    errors=(*_READ, "invalid_id", "invalid_query"),
    query=ResultHistoryQuery,
)
async def patient_result_history(request: web.Request, actor: Actor) -> ResultHistoryOut:
    return await _history(request, actor, int_param(request, "patient_id"))


@api.route(
    "GET",
    "/api/results/{result_id}/report.pdf",
    summary="A result's report as the sending system's PDF (an attachment), for the patient "
    "or a doctor who has consulted them; anyone else gets the 404 of a result that does not "
    "exist.",
    tag="results",
    errors=("not_authenticated", "invalid_id", "result_not_found", "no_report_pdf"),
)
async def result_pdf(request: web.Request, actor: Actor) -> web.StreamResponse:
    result_id = int_param(request, "result_id")
    path, filename = await request.app[SERVICES].results.report_pdf(actor, result_id)
    return web.FileResponse(path, headers=attachment_headers(filename, "application/pdf"))
