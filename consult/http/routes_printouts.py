"""The outcome's printouts over HTTP: a package of e-prescriptions, a referral or a sick leave
as its informational PDF, downloaded as an attachment like a medical document."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from aiohttp import web

from consult.attachments import attachment_headers
from consult.domain import Actor
from consult.http.routing import SERVICES, Api, int_param
from consult.outcome.printing import CONTENT_TYPE, Printing, Printout

api = Api()

_WHO = (
    "for the patient it was issued to, or a doctor who accepted a consultation of theirs; "
    "anyone else gets the 404 of a {kind} that does not exist. A cancelled one says CANCELLED."
)


def _printout_route(
    name: str,
    path: str,
    summary: str,
    missing: str,
    read: Callable[[Printing, Actor, int], Awaitable[Printout]],
) -> None:
    (param,) = re.findall(r"\{(\w+)\}", path)  # the document's id

    async def handler(request: web.Request, actor: Actor) -> web.StreamResponse:
        document_id = int_param(request, param)
        printout = await read(request.app[SERVICES].printing, actor, document_id)
        return web.Response(
            body=printout.content, headers=attachment_headers(printout.filename, CONTENT_TYPE)
        )

    handler.__name__ = name  # OpenAPI's operationId
    api.route(
        "GET",
        path,
        summary=summary,
        tag="outcome",
        errors=("not_authenticated", "invalid_id", missing),
    )(handler)


_printout_route(
    "package_printout",
    "/api/packages/{package_id}/printout.pdf",
    "The informational printout of a package of e-prescriptions (PDF, as an "
    "attachment): the key as digits and a Code 128 barcode, the access code, every "
    "prescription; " + _WHO.format(kind="package"),
    "package_not_found",
    Printing.package,
)
_printout_route(
    "referral_printout",
    "/api/referrals/{referral_id}/printout.pdf",
    "The informational printout of an e-referral (PDF, as an attachment): the key as "
    "digits and a Code 128 barcode, the access code; " + _WHO.format(kind="referral"),
    "referral_not_found",
    Printing.referral,
)
_printout_route(
    "sick_leave_printout",
    "/api/sick-leaves/{sick_leave_id}/printout.pdf",
    "The informational printout of a sick leave certificate, e-ZLA (PDF, as an "
    "attachment); " + _WHO.format(kind="sick leave"),
    "sick_leave_not_found",
    Printing.sick_leave,
)
