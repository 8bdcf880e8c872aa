"""The composition root: Settings -> services -> aiohttp app with Socket.IO attached.

This is the only place that picks backends (SQLite or PostgreSQL by URL; the in-memory or
Redis Socket.IO manager) and wires the edges to the feature services.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import socketio
from aiohttp import web

from consult.bundle import Services
from consult.clock import Clock, SystemClock
from consult.demo import seed_demo
from consult.edges.client_address import TrustedProxies
from consult.edges.draining import Drain
from consult.events import EventBus
from consult.http import (
    routes_access_log,
    routes_accounts,
    routes_archive,
    routes_booking,
    routes_calls,
    routes_consultations,
    routes_documents,
    routes_fhir,
    routes_followups,
    routes_identity,
    routes_outcome,
    routes_printouts,
    routes_ratings,
    routes_renewals,
    routes_results,
    routes_scheduler,
    routes_signup,
    routes_system,
    routes_timeline,
)
from consult.http.errors import error_middleware
from consult.http.metrics import METRICS, Metrics, loop_lag_lifetime
from consult.http.openapi import build_openapi
from consult.http.pages import install_pages
from consult.http.routes_system import OPENAPI
from consult.http.routing import SERVICES, TRUSTED_PROXIES, USAGE_LIMITS
from consult.http.same_origin import PUBLIC_ORIGINS, parse_public_origins
from consult.logs import tame_libraries
from consult.notify.worker import OutboxWorker
from consult.outcome import icd10
from consult.outcome.catalogue_store import REFRESH_INTERVAL
from consult.settings import Settings
from consult.signaling.calls import CallPush
from consult.signaling.fanout import QueueFanout
from consult.signaling.lifecycle import ProcessLifecycle
from consult.signaling.namespace import ConsultNamespace
from consult.signaling.notifier import Notifier
from consult.signaling.ratings_push import RatingsPush
from consult.signaling.scheduler_push import SchedulerPush
from consult.signaling.server import create_sio
from consult.signaling.sessions import SessionGuard
from consult.storage.engine import create_engine
from consult.storage.migrate import upgrade_async
from consult.storage.outage import RepeatedFailures
from consult.storage.uow import Database
from consult.usage_limits import UsageLimits
from consult.watchdog import watchdog_lifetime

log = logging.getLogger(__name__)

APIS = (
    routes_system.api,
    routes_accounts.api,
    routes_signup.api,
    routes_identity.api,
    routes_consultations.api,
    routes_booking.api,
    routes_scheduler.api,
    routes_documents.api,
    routes_followups.api,
    routes_calls.api,
    routes_outcome.api,
    routes_renewals.api,
    routes_printouts.api,
    routes_fhir.api,
    routes_access_log.api,
    routes_archive.api,
    routes_ratings.api,
    routes_results.api,
    routes_timeline.api,
)


def create_app(settings: Settings, *, clock: Clock | None = None) -> web.Application:
    # Whose X-Forwarded-For is believed, for HTTP and Socket.IO alike (a mistake stops start-up).
    trusted_proxies = TrustedProxies.parse(settings.trusted_proxies)
    tame_libraries()  # bad input logs one line, not a traceback (also in tests' servers)
    app = web.Application(
        middlewares=[security_headers, error_middleware], client_max_size=1_000_000
    )
    db = Database(
        create_engine(settings.database_url), EventBus(), slow_statement=settings.slow_statement
    )
    services = Services.build(settings, clock or SystemClock(), db)
    app[SERVICES] = services
    app[TRUSTED_PROXIES] = trusted_proxies
    app[PUBLIC_ORIGINS] = parse_public_origins(settings.public_origin)  # a mistake stops start-up
    app[USAGE_LIMITS] = UsageLimits(settings, services.counters)

    sio = create_sio(settings)
    namespace = ConsultNamespace(services, trusted_proxies)
    sio.register_namespace(namespace)
    sio.attach(app)
    Drain().install(app)  # SIGTERM: /healthz says draining (consult/serving.py:stop)
    fanout = QueueFanout(sio, services.tickets, delay=0.05)
    app[FANOUT] = fanout
    app[SIO] = sio
    services.bus.subscribe(Notifier(sio, fanout))
    # Sockets end with their session: at once on a logout here, or at the next check.
    guard = SessionGuard(sio, services.accounts)
    app[SESSION_GUARD] = guard
    services.bus.subscribe(guard)
    # The schedulers' live dashboard: at most four overviews a second.
    scheduler_push = SchedulerPush(
        sio, services.dashboard, interval=0.25, local_audience=not settings.redis_url
    )
    app[SCHEDULER_PUSH] = scheduler_push
    services.bus.subscribe(scheduler_push)
    # Their ratings figures, when a rating is given or changed.
    ratings_push = RatingsPush(sio, services.ratings, local_audience=not settings.redis_url)
    app[RATINGS_PUSH] = ratings_push
    services.bus.subscribe(ratings_push)
    # Calls: a consultation that ends ends its call; media state and quality pushed to pages.
    services.bus.subscribe(services.calls.on_event)
    services.bus.subscribe(services.outbox.on_event)  # a committed notification: sent at once
    app[CALL_PUSH] = CallPush(sio, services.calls, interval=2.0)
    app[METRICS] = Metrics(db.statements)  # /metrics: a Prometheus registry of this app's own

    for api in APIS:
        api.install(app)
    app[OPENAPI] = build_openapi([r for api in APIS for r in api.routes])
    install_pages(app, settings.web_dir)
    app.cleanup_ctx.append(watchdog_lifetime)  # first in, last out: it watches the others too
    app.cleanup_ctx.append(_database_lifetime)
    app.cleanup_ctx.append(loop_lag_lifetime)  # consult_loop_lag_seconds on /metrics
    # Heartbeats; on SIGTERM the sockets close first, so shutdown does not wait for clients.
    ProcessLifecycle(sio, namespace, services.processes, settings).install(app)
    app.cleanup_ctx.append(_background_tasks)
    app.cleanup_ctx.append(_calls_lifetime)
    return app


FANOUT = web.AppKey("fanout", QueueFanout)
SIO = web.AppKey("sio", socketio.AsyncServer)
SCHEDULER_PUSH = web.AppKey("scheduler_push", SchedulerPush)
SESSION_GUARD = web.AppKey("session_guard", SessionGuard)
RATINGS_PUSH = web.AppKey("ratings_push", RatingsPush)
# Seconds between slot generations (a day's new slots appear within the hour after midnight).
SLOT_INTERVAL = 3600.0
CALL_PUSH = web.AppKey("call_push", CallPush)


async def _background_tasks(app: web.Application) -> AsyncIterator[None]:
    """The server's periodic work: run out offers, leases and tickets (the sweeper); end
    sockets whose session has ended; take up a products catalogue imported meanwhile; generate
    the coming days' slots. An interval of 0 (``slot_days`` 0) turns that task off (tests)."""
    services = app[SERVICES]
    settings = services.settings
    tasks = [
        asyncio.create_task(_every(interval, work, what))
        for interval, work, what in (
            (settings.sweep_interval, services.sweeper.sweep, "queue sweep"),
            (settings.session_check_interval, app[SESSION_GUARD].check, "session check"),
            # `consult import-products`, run beside the servers, reaches them this way.
            (REFRESH_INTERVAL, services.outcome.catalogue.refresh, "catalogue refresh"),
        )
        if interval > 0
    ]
    if settings.outbox_interval > 0:  # the outbox: at start-up, then as notifications come
        tasks.append(asyncio.create_task(_deliver(services.outbox, settings.outbox_interval)))
    if settings.slot_days > 0:  # at start-up, then hourly: the slots keep rolling forward
        roll = services.hours.generate_slots
        tasks.append(asyncio.create_task(_every(SLOT_INTERVAL, roll, "slot generation", True)))
    yield
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await app[FANOUT].close()
    await app[SCHEDULER_PUSH].close()
    await app[RATINGS_PUSH].close()


async def _every(
    interval: float, work: Callable[[], Awaitable[object]], what: str, at_once: bool = False
) -> None:
    failures = RepeatedFailures(what, log)  # a database outage is logged once, not every tick
    while True:
        if not at_once:
            await asyncio.sleep(interval)
        at_once = False
        try:
            await work()
        except Exception as exc:
            failures.failed(exc)
        else:
            failures.succeeded()


async def _deliver(worker: OutboxWorker, interval: float) -> None:
    failures = RepeatedFailures("outbox delivery", log)  # an outage logged once, as _every's
    while True:
        try:
            await worker.run_once()
        except Exception as exc:
            failures.failed(exc)
        else:
            failures.succeeded()
        await worker.wait(interval)


async def _calls_lifetime(app: web.Application) -> AsyncIterator[None]:
    """Other nodes' call requests are taken and this node's call leases kept, and the quality
    push runs, while the server does; shutdown finishes recordings, closes peers, releases the
    leases."""
    await app[SERVICES].calls.start()
    app[CALL_PUSH].start()
    yield
    await app[CALL_PUSH].close()
    await app[SERVICES].calls.close()


async def _database_lifetime(app: web.Application) -> AsyncIterator[None]:
    services = app[SERVICES]
    settings = services.settings
    if settings.migrate_on_start:
        await upgrade_async(settings.database_url)
    if settings.demo:
        await seed_demo(services.db, services.clock)
    await services.outcome.catalogue.get()
    # The ICD-10 index takes most of a second to build: off the loop, before the first search.
    await asyncio.to_thread(icd10.warm)
    services.db.start_checkpoints(
        interval=settings.sqlite_checkpoint_interval, max_wal_bytes=settings.sqlite_wal_max_bytes
    )
    yield
    await services.counters.close()
    await services.db.dispose()


@web.middleware
async def security_headers(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    # On every response: a static HTML file's type is only known once it is sent.
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; connect-src 'self'; img-src 'self' data: blob:; "
        "media-src 'self' blob:; object-src 'none'; frame-ancestors 'none'",
    )
    return response
