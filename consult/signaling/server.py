"""The Socket.IO server, configured on purpose rather than by defaults."""

from __future__ import annotations

import socketio

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
        ping_interval=25,
        ping_timeout=20,
        logger=False,
        engineio_logger=False,
    )


def user_room(user_id: int) -> str:
    return f"user:{user_id}"
