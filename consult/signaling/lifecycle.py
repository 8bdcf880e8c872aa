"""This server process's life as the other processes see it: registered at start, a heartbeat
while it runs, and on shutdown (SIGTERM) every socket closed at once and every connection it
held counted as closed, so that clients reconnect elsewhere and the grace periods start now
(``consult/queue/processes.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import socketio
from aiohttp import web

from consult.queue.processes import Processes
from consult.signaling.namespace import ConsultNamespace
from consult.signaling.server import close_every_socket

log = logging.getLogger(__name__)


class ProcessLifecycle:
    def __init__(
        self,
        sio: socketio.AsyncServer,
        namespace: ConsultNamespace,
        processes: Processes,
        heartbeat_interval: float,
    ) -> None:
        self._sio = sio
        self._namespace = namespace
        self._processes = processes
        self._interval = heartbeat_interval
        self._heartbeat: asyncio.Task[None] | None = None

    def install(self, app: web.Application) -> None:
        """Hook into the app: after the database is ready (call after its cleanup context is
        added), and first thing on shutdown."""
        app.cleanup_ctx.append(self._running)
        app.on_shutdown.append(self._shutdown)

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
        interval and timeout), then count this process's connections closed in one go."""
        self._namespace.closing = True
        await self._stop_heartbeat()
        await close_every_socket(self._sio)
        try:
            await self._processes.stop()
        except Exception:  # the other processes will count this one dead after dead_after
            log.exception("could not release this process's connections at shutdown")
        await self._sio.shutdown()
