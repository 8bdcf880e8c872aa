"""The schedulers' dashboard over HTTP: the queues' figures, the actions on tickets and doctors,
and the same figures as Prometheus metrics at ``/metrics``."""

from __future__ import annotations

import ipaddress

from aiohttp import web

from consult.dashboard.schemas import DoctorAwayOut, MoveTicketIn, OverviewOut
from consult.domain import Actor
from consult.edges.client_address import FORWARDING_HEADERS
from consult.http import metrics
from consult.http.routing import REQUEST_ACTOR, SERVICES, Api, int_param, request_actor
from consult.schemas import ConsultationOut, EmptyIn

api = Api()
_SCHEDULER = ("not_authenticated", "not_a_scheduler")
_TICKET = (*_SCHEDULER, "invalid_id", "consultation_not_found", "not_queued")


@api.route(
    "GET",
    "/api/scheduler/queues",
    summary="Every specialty's queues (all forms and each form): patients waiting, longest and "
    "median wait, doctors online / busy / away, consultations in progress, breach flag, the "
    "last hour in 5-minute buckets, the waiting tickets and the doctors present. The same "
    "object is pushed live to schedulers' sockets as `scheduler:overview`.",
    response=OverviewOut,
    tag="scheduler",
    errors=_SCHEDULER,
)
async def queues(request: web.Request, actor: Actor) -> OverviewOut:
    return await request.app[SERVICES].dashboard.overview_for(actor)


@api.route(
    "POST",
    "/api/scheduler/tickets/{consultation_id}/move",
    summary="Move a waiting or offered ticket to another specialty's queue (same form). It keeps "
    "its place by time; a pending offer is withdrawn first. The new specialty must be covered by "
    "the patient's plan. Audited as scheduler.move.",
    body=MoveTicketIn,
    response=ConsultationOut,
    tag="scheduler",
    errors=(*_TICKET, "invalid_payload", "unknown_specialty", "same_queue", "not_covered"),
)
async def move(request: web.Request, actor: Actor, body: MoveTicketIn) -> ConsultationOut:
    cid = int_param(request, "consultation_id")
    return await request.app[SERVICES].dashboard.move(actor, cid, body.specialty)


@api.route(
    "POST",
    "/api/scheduler/tickets/{consultation_id}/drop",
    summary="Drop a stale waiting or offered ticket: it is cancelled and the patient told "
    "(`queue:dropped`). Audited as scheduler.drop.",
    body=EmptyIn,
    response=ConsultationOut,
    tag="scheduler",
    errors=(*_TICKET, "invalid_payload"),
)
async def drop(request: web.Request, actor: Actor, body: EmptyIn) -> ConsultationOut:
    cid = int_param(request, "consultation_id")
    return await request.app[SERVICES].dashboard.drop(actor, cid)


@api.route(
    "POST",
    "/api/scheduler/doctors/{doctor_id}/away",
    summary="Mark an online doctor away: no new patients; their unanswered offers go back to the "
    "queue; consultations in progress carry on. Audited as scheduler.doctor_away.",
    body=EmptyIn,
    response=DoctorAwayOut,
    tag="scheduler",
    errors=(*_SCHEDULER, "invalid_id", "invalid_payload", "doctor_not_found", "doctor_not_online"),
)
async def doctor_away(request: web.Request, actor: Actor, body: EmptyIn) -> DoctorAwayOut:
    doctor_id = int_param(request, "doctor_id")
    return await request.app[SERVICES].dashboard.doctor_away(actor, doctor_id)


@api.route(
    "GET",
    "/metrics",
    summary="The queues' figures, this process's calls, the ratings' averages of the last 30 "
    "days and its standard process metrics as "
    "Prometheus metrics (text format 0.0.4). Open to direct "
    "loopback requests (no X-Forwarded-For or Forwarded header); anyone else needs a "
    "scheduler's session.",
    auth=False,
    tag="scheduler",
    errors=_SCHEDULER,
)
async def prometheus(request: web.Request) -> web.StreamResponse:
    dashboard = request.app[SERVICES].dashboard
    if _direct_from_loopback(request):
        overview = await dashboard.overview()
    else:
        actor = await request_actor(request)
        # A route without the registry's authentication: named here, so that a refusal
        # (not_a_scheduler) is audited like every other route's (the error middleware).
        request[REQUEST_ACTOR] = actor
        overview = await dashboard.overview_for(actor)
    calls = await request.app[SERVICES].calls.registry.figures()
    ratings = await request.app[SERVICES].ratings.summary()  # figures only: not audited
    return web.Response(
        body=request.app[metrics.METRICS].render(overview, calls, ratings),
        headers={"Content-Type": metrics.CONTENT_TYPE, "Cache-Control": "no-store"},
    )


def _direct_from_loopback(request: web.Request) -> bool:
    """A scraper on this machine. Behind a reverse proxy on the same host every request comes
    from loopback, so a forwarded one is never taken for local (the proxy should also refuse
    /metrics, see docs/operations.md). This looks at the TCP peer and the headers' presence,
    never at the forwarded client address: a request relayed by a proxy, trusted
    (CONSULT_TRUSTED_PROXIES) or not, is not local, even when it forwards 127.0.0.1."""
    if any(header in request.headers for header in FORWARDING_HEADERS):
        return False
    try:
        return ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        return False
