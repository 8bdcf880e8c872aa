"""The ``/`` namespace: every client event is a thin adapter over a service call.

The connection is authenticated once, at connect (``auth={"token": ...}`` or the session
cookie). Each user's sockets join the room ``user:<id>``; notifications go to those rooms, so
they reach every tab and, through the Redis manager, every process.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial
from http.cookies import SimpleCookie
from typing import Any

import socketio

from consult.accounts.service import token_hash
from consult.bundle import Services
from consult.domain import Actor, Client, Identity, Role
from consult.edges.client_address import FORWARDED_FOR, TrustedProxies
from consult.edges.session_cookie import SESSION_COOKIE
from consult.errors import ConsultError, NotFound, Unavailable
from consult.schemas import (
    OfferAnswerIn,
    PresenceIn,
    ReadIn,
    ResumeIn,
    SendMessageIn,
    TypingIn,
)
from consult.signaling.acks import ack, audit_refusals
from consult.signaling.calls import call_events
from consult.signaling.payloads import refuse_unparsed
from consult.signaling.payloads import validate_payload as _validate
from consult.signaling.scheduler_push import SCHEDULERS_ROOM
from consult.signaling.server import ReservedEventName, user_room
from consult.signaling.sessions import TOKEN_HASH
from consult.usage_limits import UsageLimits

log = logging.getLogger(__name__)

EventHandler = Callable[[Actor, Any], Awaitable[Any]]


class ConsultNamespace(socketio.AsyncNamespace):
    def __init__(self, services: Services, trusted_proxies: TrustedProxies) -> None:
        super().__init__("/")
        # Set at shutdown: the process closes all its connections at once (lifecycle.py), not
        # one disconnect at a time.
        self.closing = False
        self.services = services
        self.trusted_proxies = trusted_proxies
        self.limits = UsageLimits(services.settings, services.counters)
        self.unrecorded_disconnects: dict[str, Actor] = {}  # sid -> its user (on_disconnect)
        self.events: dict[str, EventHandler] = {
            "presence:online": self.presence_online,
            "presence:offline": self.presence_offline,
            "presence:away": self.presence_away,
            "queue:ticket": self.queue_ticket,
            "queue:accept": self.queue_accept,
            "queue:decline": self.queue_decline,
            "chat:send": self.chat_send,
            "chat:resume": self.chat_resume,
            "chat:read": self.chat_read,
            "chat:typing": self.chat_typing,
            **call_events(services.calls),
        }

    async def trigger_event(self, event: str, *args: Any) -> Any:
        # Client events named "connect" or "disconnect" arrive marked (server.ConsultServer):
        # only python-socketio's own lifecycle calls reach on_connect and on_disconnect.
        reserved = isinstance(event, ReservedEventName)
        if event == "connect" and not reserved:
            sid, environ = args[0], args[1]
            return await self.on_connect(sid, environ, args[2] if len(args) > 2 else None)
        if event == "disconnect" and not reserved:
            return await self.on_disconnect(args[0])
        sid, payload = args[0], (args[1] if len(args) > 1 else None)
        handler = None if reserved else self.events.get(event)
        if handler is None:
            # Refused and audited like any refusal, within one rate limit for all unknown names.
            name = str(event)[:64]
            return await ack(self._dispatch(name, partial(_unknown, name), sid, payload, _UNKNOWN))
        return await ack(self._dispatch(event, handler, sid, payload, event))

    async def _dispatch(
        self, event: str, handler: EventHandler, sid: str, payload: Any, limit: str
    ) -> Any:
        actor = await self._actor(sid)
        audit = self.services.audit
        limited = self._limited(limit, handler, actor, payload)
        return await audit_refusals(audit, actor, event, payload, limited)

    async def _limited(self, limit: str, handler: EventHandler, actor: Actor, payload: Any) -> Any:
        refuse_unparsed(payload)
        await self.limits.event(limit, actor.user_id)  # per user (consult/usage_limits.py)
        return await handler(actor, payload)

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        if not token:
            cookie = SimpleCookie(environ.get("HTTP_COOKIE", ""))
            token = cookie[SESSION_COOKIE].value if SESSION_COOKIE in cookie else None
        ip = handshake_address(environ, self.trusted_proxies)
        try:
            actor = await self.services.accounts.authenticate(token, ip, Client.SOCKET)
        except ConsultError as exc:
            raise socketio.exceptions.ConnectionRefusedError(exc.message, exc.to_dict()) from None
        await self.save_session(
            sid,
            {
                TOKEN_HASH: token_hash(str(token)),  # authenticated: a token was given
                "user_id": actor.user_id,
                "role": str(actor.role),
                "identity": str(actor.identity),
                "name": actor.name,
                "ip": ip,
            },
        )
        await self.enter_room(sid, user_room(actor.user_id))
        if actor.role is Role.SCHEDULER:  # the live dashboard (scheduler:overview)
            await self.enter_room(sid, SCHEDULERS_ROOM)
        try:
            await self.services.presence.connected(actor, sid)
        except Unavailable as exc:  # not recorded: the client connects again later
            raise socketio.exceptions.ConnectionRefusedError(exc.message, exc.to_dict()) from None
        log.info("socket %s connected for user %s", sid, actor.user_id)

    async def on_disconnect(self, sid: str) -> None:
        if self.closing:  # shutdown: the process releases all its connections at once
            return
        try:
            actor = await self._actor(sid)
        except KeyError:  # refused at connect: no session
            return
        # The grace starts if this was the user's last connection in any live process.
        try:
            await self.services.presence.disconnected(actor, sid)
        except Unavailable:
            # Recorded once the database is back (the heartbeat's turn): a connection left
            # recorded would count the user as connected, a doctor as there, for good.
            self.unrecorded_disconnects[sid] = actor

    async def release_unrecorded(self) -> None:
        """Record the disconnects that met a database outage."""
        while self.unrecorded_disconnects:
            sid, actor = next(iter(self.unrecorded_disconnects.items()))
            await self.services.presence.disconnected(actor, sid)
            del self.unrecorded_disconnects[sid]

    async def _actor(self, sid: str) -> Actor:
        s = await self.get_session(sid)
        return Actor(
            s["user_id"],
            Role(s["role"]),
            Identity(s["identity"]),
            s["name"],
            s["ip"],
            Client.SOCKET,
        )

    # --- events -----------------------------------------------------------------------------

    async def presence_online(self, actor: Actor, payload: Any) -> Any:
        return await self.services.presence.go_online(actor, _validate(PresenceIn, payload))

    async def presence_offline(self, actor: Actor, payload: Any) -> Any:
        return await self.services.presence.go_offline(actor)

    async def presence_away(self, actor: Actor, payload: Any) -> Any:
        return await self.services.presence.go_away(actor)

    async def queue_ticket(self, actor: Actor, payload: Any) -> Any:
        return await self.services.tickets.ticket(actor)

    async def queue_accept(self, actor: Actor, payload: Any) -> Any:
        body = _validate(OfferAnswerIn, payload)
        return await self.services.consultations.accept(actor, body.consultation_id)

    async def queue_decline(self, actor: Actor, payload: Any) -> Any:
        body = _validate(OfferAnswerIn, payload)
        return await self.services.consultations.decline(actor, body.consultation_id)

    async def chat_send(self, actor: Actor, payload: Any) -> Any:
        body = _validate(SendMessageIn, payload)
        return await self.services.chat.post(actor, body.consultation_id, body.client_id, body.body)

    async def chat_resume(self, actor: Actor, payload: Any) -> Any:
        body = _validate(ResumeIn, payload)
        return await self.services.chat.resume(
            actor, body.consultation_id, body.after_seq, body.limit
        )

    async def chat_read(self, actor: Actor, payload: Any) -> Any:
        body = _validate(ReadIn, payload)
        return await self.services.chat.mark_read(actor, body.consultation_id, body.seq)

    async def chat_typing(self, actor: Actor, payload: Any) -> Any:
        body = _validate(TypingIn, payload)
        return await self.services.chat.typing(actor, body.consultation_id, body.typing)


# The rate-limit bucket that every undeclared event name shares.
_UNKNOWN = "(unknown event)"


async def _unknown(name: str, actor: Actor, payload: Any) -> Any:
    raise NotFound(f"no event {name!r}", code="unknown_event")


def handshake_address(environ: dict[str, Any], trusted_proxies: TrustedProxies) -> str | None:
    """The client's address at the Socket.IO handshake, by the HTTP routes' rule. Engine.IO's
    aiohttp driver hands over the aiohttp request as ``aiohttp.request``; its ``REMOTE_ADDR``
    is always ``127.0.0.1``, so it is read only when no request is there (another driver)."""
    request = environ.get("aiohttp.request")
    if request is not None:
        return trusted_proxies.client(request.remote, request.headers.getall(FORWARDED_FOR, ()))
    return trusted_proxies.client(
        environ.get("REMOTE_ADDR"), [environ.get("HTTP_X_FORWARDED_FOR", "")]
    )
