"""This server process's life as the other processes see it: registered at start, a heartbeat
while it runs, and on shutdown (SIGTERM) every socket closed at once and every connection it
held counted as closed, so that clients reconnect elsewhere and the grace periods start now
(``consult/presence/processes.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from consult.presence.processes import Processes
from consult.settings import Settings
from consult.signaling.namespace import ConsultNamespace
from consult.signaling.server import ConsultServer, close_every_socket

log = logging.getLogger(__name__)

# How long closed sockets get to finish their closing handshake at shutdown before their
# connections are cut: engine.io waits for the client's close frame and ignores cancellation.
CLOSING_HANDSHAKE = 1.0


class ProcessLifecycle:
    def __init__(
        self,
        sio: ConsultServer,
        namespace: ConsultNamespace,
        processes: Processes,
        settings: Settings,
    ) -> None:
        self._sio = sio
        self._namespace = namespace
        self._processes = processes
        self._interval = settings.heartbeat_interval
        self._events_timeout = settings.shutdown_timeout
        self._heartbeat: asyncio.Task[None] | None = None
        # Engine.IO requests being served (websockets, long polls): cut if they linger.
        self._engine_io: dict[int, web.BaseRequest] = {}

    def install(self, app: web.Application) -> None:
        """Hook into the app: after the database is ready (call after its cleanup context is
        added), and first thing on shutdown."""
        app.cleanup_ctx.append(self._running)
        app.on_shutdown.append(self._shutdown)
        app.middlewares.append(self._track_engine_io)

    @web.middleware
    async def _track_engine_io(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        if not request.path.startswith("/socket.io/"):
            return await handler(request)
        self._engine_io[id(request)] = request
        try:
            return await handler(request)
        finally:
            self._engine_io.pop(id(request), None)

    async def _running(self, app: web.Application) -> AsyncIterator[None]:
        await self._processes.register()
        if self._interval > 0:
            self._heartbeat = asyncio.create_task(self._beat())
        yield
        await self._stop_heartbeat()

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                if not await self._processes.beat():
                    # Counted dead while it was frozen: its connections were closed. The
                    # clients reconnect, which records them again.
                    await close_every_socket(self._sio)
            except Exception:
                log.exception("heartbeat failed; retrying")

    async def _stop_heartbeat(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None

    async def _shutdown(self, app: web.Application) -> None:
        """SIGTERM: close every socket now (they would otherwise hold the shutdown for the ping
        interval and timeout), then count this process's connections closed in one go. The
        events under way are acked first; one that comes meanwhile is not started (it would
        lose its socket half-way): its client sends it again after reconnecting."""
        self._namespace.closing = True
        self._sio.events.close()
        left = await self._sio.events.settle(self._events_timeout)
        if left:
            log.warning("closing the sockets with %d Socket.IO events still under way", left)
        await close_every_socket(self._sio)
        await self._stop_heartbeat()
        await self._cut_lingering()
        try:
            await self._processes.stop()
        except Exception:  # the other processes will count this one dead after dead_after
            log.exception("could not release this process's connections at shutdown")
        await self._sio.shutdown()

    async def _cut_lingering(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CLOSING_HANDSHAKE
        while self._engine_io and loop.time() < deadline:
            await asyncio.sleep(0.02)
        for request in list(self._engine_io.values()):
            if request.transport is not None:
                request.transport.close()
