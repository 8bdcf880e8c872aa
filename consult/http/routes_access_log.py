"""The patient's access history over HTTP: who saw their data, when, what, from which client."""

from __future__ import annotations

from aiohttp import web

from consult.domain import Actor
from consult.http.routing import SERVICES, Api, query_flag, query_int
from consult.records.schemas import ACCESS_MAX_PAGE, ACCESS_PAGE, AccessLogOut, AccessLogQuery
from consult.schemas import MAX_ID

api = Api()


@api.route(
    "GET",
    "/api/patients/me/access-log",
    summary="Who saw the caller's data: every allowed read of their record, consultations, "
    "transcripts, documents, recordings, issued documents and printouts, bookings, follow-ups, "
    'renewal requests and ratings, by whom (a doctor by name, "scheduler", "you"), when, '
    "what, and from which kind of client (page, api, socket). Newest first: at most `limit` "
    f"entries (default {ACCESS_PAGE}, at most {ACCESS_MAX_PAGE}) older than entry `cursor`; "
    "`next` is the `cursor` of the next page (null on the last); `others=true` leaves out the "
    "caller's own reads. Patients only. Audited as access_log.read, which the history does not "
    "list.",
    response=AccessLogOut,
    tag="records",
    errors=(
        "not_authenticated",
        "not_a_patient",
        "invalid_cursor",
        "invalid_limit",
        "invalid_others",
    ),
    query=AccessLogQuery,
)
async def my_access_log(request: web.Request, actor: Actor) -> AccessLogOut:
    cursor = query_int(request, "cursor", 0, 1, MAX_ID, "an entry's id", code="invalid_cursor")
    limit = query_int(
        request, "limit", ACCESS_PAGE, 1, ACCESS_MAX_PAGE, "a count", code="invalid_limit"
    )
    others = query_flag(request, "others", code="invalid_others")
    return await request.app[SERVICES].access_log.of_patient(
        actor, cursor=cursor or None, limit=limit, others=others
    )
