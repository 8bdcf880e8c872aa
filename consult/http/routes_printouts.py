"""The outcome's printouts over HTTP: a package of e-prescriptions, a referral or a sick leave
as its informational PDF, downloaded as an attachment like a medical document."""

from __future__ import annotations

from aiohttp import web

from consult.attachments import attachment_headers
from consult.domain import Actor
from consult.http.routing import SERVICES, Api, int_param
from consult.outcome.printing import CONTENT_TYPE, Printout

api = Api()

_WHO = (
    "for the patient it was issued to, or a doctor who accepted a consultation of theirs; "
    "anyone else gets the 404 of a {kind} that does not exist. A cancelled one says CANCELLED."
)


def _pdf(printout: Printout) -> web.Response:
    return web.Response(
        body=printout.content, headers=attachment_headers(printout.filename, CONTENT_TYPE)
    )


@api.route(
    "GET",
    "/api/packages/{package_id}/printout.pdf",
    summary="The informational printout of a package of e-prescriptions (PDF, as an "
    "attachment): the key as digits and a Code 128 barcode, the access code, every "
    "prescription; " + _WHO.format(kind="package"),
    tag="outcome",
    errors=("not_authenticated", "invalid_id", "package_not_found"),
)
async def package_printout(request: web.Request, actor: Actor) -> web.StreamResponse:
    package_id = int_param(request, "package_id")
    return _pdf(await request.app[SERVICES].printing.package(actor, package_id))


@api.route(
    "GET",
    "/api/referrals/{referral_id}/printout.pdf",
    summary="The informational printout of an e-referral (PDF, as an attachment): the key as "
    "digits and a Code 128 barcode, the access code; " + _WHO.format(kind="referral"),
    tag="outcome",
    errors=("not_authenticated", "invalid_id", "referral_not_found"),
)
async def referral_printout(request: web.Request, actor: Actor) -> web.StreamResponse:
    referral_id = int_param(request, "referral_id")
    return _pdf(await request.app[SERVICES].printing.referral(actor, referral_id))


@api.route(
    "GET",
    "/api/sick-leaves/{sick_leave_id}/printout.pdf",
    summary="The informational printout of a sick leave certificate, e-ZLA (PDF, as an "
    "attachment); " + _WHO.format(kind="sick leave"),
    tag="outcome",
    errors=("not_authenticated", "invalid_id", "sick_leave_not_found"),
)
async def sick_leave_printout(request: web.Request, actor: Actor) -> web.StreamResponse:
    sick_leave_id = int_param(request, "sick_leave_id")
    return _pdf(await request.app[SERVICES].printing.sick_leave(actor, sick_leave_id))
