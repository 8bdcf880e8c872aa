"""The patient's timeline: everything in the record, newest first, filtered by kind and date,
a page at a time (an opaque cursor)."""

from __future__ import annotations

from aiohttp import web

from consult.domain import Actor
from consult.http.routing import SERVICES, Api, int_param
from consult.timeline.filters import TimelineQuery, parse
from consult.timeline.registry import NAMES
from consult.timeline.schemas import TIMELINE_MAX_PAGE, TIMELINE_PAGE, TimelineOut

api = Api()

_ERRORS = (
    "not_authenticated",
    "invalid_query",
    "invalid_kind",
    "invalid_from",
    "invalid_to",
    "invalid_range",
    "invalid_cursor",
    "invalid_limit",
    "patient_not_found",
)
_PAGE = (
    f"Newest first: {', '.join(NAMES)}; `kind` (several, separated by commas), `from` and `to` "
    f"(a day, or a moment with its offset) filter it; at most `limit` items (default "
    f"{TIMELINE_PAGE}, at most {TIMELINE_MAX_PAGE}); `next` is the `cursor` of the next page "
    f"(null on the last). A real calendar day, `from` before `to` and a cursor a page gave "
    f"are checked beyond the patterns (400)."
)


async def _page(request: web.Request, actor: Actor, patient_id: int) -> TimelineOut:
    filters = parse(request.query.items())
    return await request.app[SERVICES].timeline.page(actor, patient_id, filters)


@api.route(
    "GET",
    "/api/patients/me/timeline",
    summary="The caller's timeline. " + _PAGE,
    response=TimelineOut,
    tag="records",
    errors=_ERRORS,
    query=TimelineQuery,
)
async def my_timeline(request: web.Request, actor: Actor) -> TimelineOut:
    return await _page(request, actor, actor.user_id)


@api.route(
    "GET",
    "/api/patients/{patient_id}/timeline",
    summary="A patient's timeline, for a doctor who has consulted them (or the patient; a "
    "doctor's leaves out ratings). " + _PAGE,
    response=TimelineOut,
    tag="records",
    errors=("invalid_id", *_ERRORS),
    query=TimelineQuery,
)
async def patient_timeline(request: web.Request, actor: Actor) -> TimelineOut:
    return await _page(request, actor, int_param(request, "patient_id"))
