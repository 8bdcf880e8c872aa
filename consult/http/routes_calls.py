"""Call recordings over HTTP: the file of a finished recording, for the consultation's
participants (the record lists them with their URL). Everything else about calls is Socket.IO."""

from __future__ import annotations

from aiohttp import web

from consult.attachments import attachment_headers
from consult.domain import Actor
from consult.http.routing import SERVICES, Api, int_param

api = Api()


@api.route(
    "GET",
    "/api/consultations/{consultation_id}/recordings/{recording_id}",
    summary="A call recording (WebM: VP8 video and Opus audio of both participants), as an "
    "attachment: for the consultation's patient and doctor only. A recording exists only when "
    "both consented during the call.",
    tag="calls",
    errors=(
        "not_authenticated",
        "invalid_id",
        "consultation_not_found",
        "not_participant",
        "recording_not_found",
        "recording_not_ready",
        "recording_file_missing",
    ),
)
async def recording(request: web.Request, actor: Actor) -> web.StreamResponse:
    cid = int_param(request, "consultation_id")
    rid = int_param(request, "recording_id")
    path, filename = await request.app[SERVICES].calls.recording_file(actor, cid, rid)
    return web.FileResponse(path, headers=attachment_headers(filename, "video/webm"))
