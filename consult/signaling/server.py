"""The Socket.IO server, configured on purpose rather than by defaults."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from functools import partial
from typing import Any

import socketio
from socketio import packet

from consult.edges.client_address import TrustedProxies
from consult.edges.draining import InFlight
from consult.json_limits import SocketJson
from consult.logs import TRANSPORT_LOGGER
from consult.settings import Settings
from consult.signaling.redis_bus import RedisBus
from consult.signaling.strict import StrictServer

log = logging.getLogger(__name__)

# The lifecycle names python-socketio dispatches itself (connect, disconnect) or a client sees
# (connect_error): a client event by one of these names would re-run the server's handlers.
RESERVED_EVENTS = frozenset({"connect", "disconnect", "connect_error"})


class ReservedEventName(str):
    """A client event bearing a lifecycle name: the namespace answers it as an unknown event
    (audited like any refusal), never as the lifecycle call it names."""

    __slots__ = ()


class ConsultServer(StrictServer):
    """The Socket.IO server, keeping client events that bear a lifecycle name from the
    server's handlers. python-socketio calls ``_trigger_event("connect", ...)`` for a real
    handshake and ``("disconnect", ...)`` for a real disconnect, but a client event by those
    names goes the same way; events come in through ``_handle_event`` alone, so such a name is
    marked there (checked against python-socketio 5.18's async_server.py).

    It also counts the events under way (``events``), each until its ack is sent: a process
    that drains answers them before it closes its sockets (consult/edges/draining.py)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.events = InFlight()

    async def _handle_event_internal(
        self,
        server: socketio.AsyncServer,
        sid: str,
        eio_sid: str,
        data: list[Any],
        namespace: str,
        id: int | None,
    ) -> None:
        # python-socketio runs each event in a task of its own: handled, then acked. Once the
        # process closes its sockets (a drain), an event is not started: it would be cut off,
        # and its client sends it again, unacknowledged, after reconnecting elsewhere.
        if self.events.track():
            await super()._handle_event_internal(server, sid, eio_sid, data, namespace, id)

    async def _handle_event(
        self, eio_sid: str, namespace: str | None, ack_id: int | None, data: list[Any]
    ) -> None:
        name = data[0] if data else None
        if isinstance(name, str):
            if name in RESERVED_EVENTS:
                data = [ReservedEventName(name), *data[1:]]
            await super()._handle_event(eio_sid, namespace, ack_id, data)
            return
        log.debug("refused a client event without a name: %r", name)
        if ack_id is not None:
            refusal = {
                "ok": False,
                "error": {"code": "unknown_event", "message": f"no event {name!r}"},
            }
            await self._send_packet(
                eio_sid,
                self.packet_class(
                    packet.ACK, namespace=namespace or "/", id=ack_id, data=[refusal]
                ),
            )


def create_sio(settings: Settings) -> ConsultServer:
    manager: socketio.AsyncManager | None = None
    if settings.redis_url:
        # Several processes: emits go through Redis pub/sub to whichever process holds the socket.
        manager = RedisBus(settings.redis_url, settings.redis_channel)
    from consult.signaling.namespace import handshake_address  # it imports this module

    return ConsultServer(
        # Malformed packets are logged as one line naming the client (the audit log's address).
        client_address=partial(
            handshake_address, trusted_proxies=TrustedProxies.parse(settings.trusted_proxies)
        ),
        async_mode="aiohttp",
        client_manager=manager,
        # Same origin only (requests without an Origin header, e.g. API clients, pass).
        cors_allowed_origins=None,
        max_http_buffer_size=1_000_000,
        # Bounded nesting and numbers; a refused payload is answered malformed_json.
        json=SocketJson,
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


async def close_every_socket(sio: socketio.AsyncServer, limit: float = 2.0) -> None:
    """Close every Engine.IO connection of this process at once (shutdown): the clients see the
    transport close, not a Socket.IO disconnect from the server, so browsers reconnect (to
    another process, or to this one's successor). Bounded: a client that does not read its
    last packets is not waited for past ``limit`` seconds."""
    # The sockets are taken now, not in engine.io's disconnect(): between a check and that
    # coroutine's first step the last client may leave, and it fails on an empty set.
    eio = sio.eio
    closing = [
        asyncio.create_task(socket.close(reason=eio.reason.SERVER_DISCONNECT))
        for socket in list(eio.sockets.values())
    ]
    if not closing:
        return
    done, pending = await asyncio.wait(closing, timeout=limit)
    eio.sockets = {}
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            log.warning("a socket failed to close at shutdown: %r", task.exception())
    if pending:
        for task in pending:
            task.cancel()
        log.warning("some sockets did not close within %s s at shutdown", limit)
