"""The Socket.IO server, configured on purpose rather than by defaults."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import socketio

from consult.json_limits import SocketJson
from consult.settings import Settings


def create_sio(settings: Settings) -> socketio.AsyncServer:
    manager: socketio.AsyncManager | None = None
    if settings.redis_url:
        # Several processes: emits go through Redis pub/sub to whichever process holds the socket.
        manager = socketio.AsyncRedisManager(settings.redis_url, channel=settings.redis_channel)
    return socketio.AsyncServer(
        async_mode="aiohttp",
        client_manager=manager,
        # Same origin only (requests without an Origin header, e.g. API clients, pass).
        cors_allowed_origins=None,
        max_http_buffer_size=1_000_000,
        # Bounded nesting and numbers; a refused payload is answered malformed_json.
        json=SocketJson,
        ping_interval=25,
        ping_timeout=20,
        logger=False,
        engineio_logger=False,
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
