"""Socket.IO and Engine.IO that refuse malformed packets quietly.

python-socketio decodes a packet inside its Engine.IO message handler, and python-engineio
decodes a WebSocket frame outside any ``try``: a malformed packet was logged with a ~3 KB
traceback each time (100 packets of 8 bytes: 326 KB of log; issue 11, item 6), or ended the
request as an unhandled error. Here a malformed packet is one rate-limited line of
``consult.bad_input`` naming the client (consult/logs.py), and the connection is closed, as the
reference Socket.IO server does on a parse error: a well-behaved client never sends one, and a
client that reconnects pays a handshake for each.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import engineio
import socketio
from engineio import packet as eio_packet
from engineio.async_drivers import aiohttp as eio_aiohttp

from consult.logs import BAD_INPUT, CLIENT, describe

Environ = dict[str, Any]
_WEBSOCKET = "consult.websocket"


class MalformedPacket(ValueError):
    pass


class StrictPacket(socketio.packet.Packet):  # type: ignore[misc]
    """Any failure to decode (bad JSON, JSON nested too deep, bad attachment count) is one
    exception type, told apart from the server's own errors."""

    def decode(self, encoded_packet: Any) -> int:
        try:
            return int(super().decode(encoded_packet))
        except Exception as exc:
            raise MalformedPacket(describe(exc)) from None


def engineio_problem(data: str) -> Exception | None:
    """Why a text frame is not an Engine.IO packet this server can read, or None."""
    if not data:
        return MalformedPacket("empty packet")
    if data[0] == "b":  # base64 binary: decoding it is the check
        try:
            eio_packet.Packet(encoded_packet=data)
        except Exception as exc:
            return MalformedPacket(describe(exc))
        return None
    if not "0" <= data[0] < str(len(eio_packet.packet_names)):
        return MalformedPacket(f"unknown packet type {data[0]!r}")
    return None


class StrictWebSocket(eio_aiohttp.WebSocket):  # type: ignore[misc]
    """Checks each text frame before python-engineio decodes it; a malformed one ends the
    connection (``wait`` answering None is how the client's close is told)."""

    async def __call__(self, environ: Environ) -> Any:
        environ[_WEBSOCKET] = self  # so that a Socket.IO-level refusal can close it too
        return await super().__call__(environ)

    async def wait(self) -> Any:
        data = await super().wait()
        if isinstance(data, str) and (problem := engineio_problem(data)) is not None:
            address = self.server.client_address(self.environ)
            BAD_INPUT.note(address, "malformed Engine.IO packet", str(problem))
            return None
        return data


class StrictEngineIO(engineio.AsyncServer):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The aiohttp driver's table (async_mode="aiohttp"), shared by every server of the
        # process: a copy of our own.
        self._async = {**eio_aiohttp._async, "websocket": StrictWebSocket}
        self.client_address: Callable[[Environ], str | None] = _peer

    async def handle_request(self, request: Any) -> Any:
        """Who is asking, for what python-engineio logs while it answers (consult/logs.py)."""
        token = CLIENT.set(self.client_address({"aiohttp.request": request}))
        try:
            return await super().handle_request(request)
        finally:
            CLIENT.reset(token)


class StrictServer(socketio.AsyncServer):  # type: ignore[misc]
    def __init__(self, client_address: Callable[[Environ], str | None], **kwargs: Any) -> None:
        super().__init__(serializer=StrictPacket, **kwargs)
        self.client_address = client_address
        self.eio.client_address = client_address

    def _engineio_server_class(self) -> type[engineio.AsyncServer]:
        return StrictEngineIO

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        environ = self.environ.get(eio_sid)
        if environ is None:
            return  # what was still on its way from a connection closed for a malformed packet
        try:
            await super()._handle_eio_message(eio_sid, data)
        except ValueError as exc:  # MalformedPacket, or a packet python-socketio refuses
            detail = str(exc) if isinstance(exc, MalformedPacket) else describe(exc)
            BAD_INPUT.note(self.client_address(environ), "malformed Socket.IO packet", detail)
            await self.eio.disconnect(eio_sid)
            # Engine.IO's close packet asks the client to go; a hostile one would stay until the
            # ping timeout, so the WebSocket itself is closed (long-polling ends with the packet).
            websocket = environ.get(_WEBSOCKET)
            if websocket is not None:
                await websocket.close()


def _peer(environ: Environ) -> str | None:
    request = environ.get("aiohttp.request")
    return request.remote if request is not None else None
