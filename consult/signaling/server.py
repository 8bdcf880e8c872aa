"""The Socket.IO server, configured on purpose rather than by defaults."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from functools import partial

import socketio

from consult.http.client_address import TrustedProxies
from consult.logs import TRANSPORT_LOGGER
from consult.settings import Settings
from consult.signaling.strict import StrictServer


def create_sio(settings: Settings) -> socketio.AsyncServer:
    manager: socketio.AsyncManager | None = None
    if settings.redis_url:
        # Several processes: emits go through Redis pub/sub to whichever process holds the socket.
        manager = socketio.AsyncRedisManager(settings.redis_url, channel=settings.redis_channel)
    from consult.signaling.namespace import handshake_address  # it imports this module

    return StrictServer(
        # Malformed packets are logged as one line naming the client (the audit log's address).
        client_address=partial(
            handshake_address, trusted_proxies=TrustedProxies.parse(settings.trusted_proxies)
        ),
        async_mode="aiohttp",
        client_manager=manager,
        # Same origin only (requests without an Origin header, e.g. API clients, pass).
        cors_allowed_origins=None,
        max_http_buffer_size=1_000_000,
        ping_interval=25,
        ping_timeout=20,
        # Our logger (consult/logs.py tames it): with False, each library added a stderr handler
        # of its own, and every error was printed twice.
        logger=logging.getLogger(TRANSPORT_LOGGER),
        engineio_logger=logging.getLogger(TRANSPORT_LOGGER),
    )


def user_room(user_id: int) -> str:
    return f"user:{user_id}"


async def sent(sio: socketio.AsyncServer, rooms: Iterable[str], limit: float = 10.0) -> None:
    """Wait until this process's sockets in ``rooms`` have written out what was emitted to them
    (their engine.io send queues are empty), or ``limit`` seconds. Reads engine.io's per-socket
    ``queue``: tests/integration/test_queue.py fails if a python-socketio upgrade drops it."""
    loop = asyncio.get_running_loop()
    sockets = [
        socket
        for room in rooms
        for _, eio_sid in sio.manager.get_participants("/", room)
        if (socket := sio.eio.sockets.get(eio_sid)) is not None
    ]
    deadline = loop.time() + limit
    while loop.time() < deadline:
        sockets = [s for s in sockets if s.queue.qsize() > 0]
        if not sockets:
            return
        await asyncio.sleep(0.005)
