"""Download everything: the patient's record as one ZIP archive, streamed as it is made (no
Content-Length: chunked), as an attachment like a document."""

from __future__ import annotations

import logging

from aiohttp import web

from consult.attachments import attachment_headers
from consult.domain import Actor
from consult.http.routing import SERVICES, TRUSTED_PROXIES, Api
from consult.http.same_origin import PUBLIC_ORIGINS, client_origin

log = logging.getLogger(__name__)

api = Api()


@api.route(
    "GET",
    "/api/patients/me/archive",
    summary="The caller's whole record as one ZIP archive (patients only), streamed: the FHIR "
    "Bundle (fhir-bundle.json), every document, ready call recording and issued document's "
    "printout, and manifest.json naming each file. Audited as one read; rate-limited "
    "(CONSULT_ARCHIVE_PER_HOUR, CONSULT_ARCHIVE_BURST).",
    media_type="application/zip",
    tag="records",
    errors=("not_authenticated", "not_a_patient"),
)
async def my_archive(request: web.Request, actor: Actor) -> web.StreamResponse:
    origin = client_origin(request, request.app[PUBLIC_ORIGINS], request.app[TRUSTED_PROXIES])
    # Every refusal comes here, before the answer begins.
    archive = await request.app[SERVICES].archive.open(actor, origin)
    response = web.StreamResponse(
        headers=attachment_headers(archive.filename, archive.content_type)
    )
    await response.prepare(request)
    try:
        await archive.send(response.write)
    except ConnectionError:
        log.info("patient %s left before their archive was sent whole", actor.user_id)
        return response
    except Exception:
        # The status has gone: cutting the connection is how the client learns that the
        # archive is incomplete (a finished chunked body would look whole).
        log.exception("the archive of patient %s failed half-way", actor.user_id)
        if request.transport is not None:
            request.transport.close()
        return response
    await response.write_eof()
    return response
