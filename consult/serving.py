"""Serving the app over TCP, with bounds on slow and numerous clients (issue 11, item 7).

A client that sent its headers or its body a byte at a time held a connection, and a handler
waiting for it, for as long as it liked; one address could open connections without end.

- **Headers**: a connection that has not sent a whole request's headers within
  ``header_timeout`` seconds of opening, or of its previous response, is closed. This is
  aiohttp's keep-alive timer, which closes a connection still waiting for a request; it is also
  how long an idle keep-alive connection stays open.
- **Bodies**: the body must arrive within ``body_timeout`` seconds of the headers, plus one
  second for every ``body_min_rate`` bytes received. When it has not, reading it fails with
  408 ``request_timeout``, and the connection is closed after the answer.
- **Connections per address**: at most ``max_connections_per_address`` open connections from
  one TCP peer address; beyond it, a connection is answered 429 ``too_many_connections`` and
  closed at once. Trusted proxies (``trusted_proxies``) are not capped: their connections carry
  many clients, and the proxy is the place to limit them.

``consult serve`` runs :func:`run`; tests start the same thing with :func:`start`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import signal
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware
from aiohttp.web_protocol import RequestHandler

from consult.edges.client_address import TrustedProxies
from consult.edges.draining import DRAIN, Drain
from consult.errors import ConsultError, LimitReached
from consult.logs import BAD_INPUT
from consult.settings import Settings

log = logging.getLogger(__name__)

_CHECK_EVERY = 1.0  # seconds between looks at a body still arriving


class RequestTooSlow(ConsultError):
    status = 408
    default_code = "request_timeout"


def body_deadline(timeout: float, min_rate: int) -> Middleware:
    """A middleware (the outermost): a body that arrives too slowly fails to read."""

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if not request.body_exists or request.content.is_eof():
            return await handler(request)
        watch = _BodyWatch(request, timeout, min_rate)
        try:
            response = await handler(request)
        finally:
            watch.stop()
        if watch.expired:
            response.force_close()  # the rest of the body is not waited for
        return response

    return middleware


class _BodyWatch:
    """Looks at a request's body every second until it has arrived or is too late."""

    def __init__(self, request: web.Request, timeout: float, min_rate: int) -> None:
        self._request = request
        self._timeout = timeout
        self._min_rate = min_rate
        self._loop = asyncio.get_running_loop()
        self._started = self._loop.time()
        self.expired = False
        self._handle = self._loop.call_later(min(_CHECK_EVERY, timeout), self._check)

    def stop(self) -> None:
        self._handle.cancel()

    def _check(self) -> None:
        body = self._request.content
        if body.is_eof():
            return
        allowed = self._timeout + body.total_bytes / self._min_rate
        if self._loop.time() - self._started < allowed:
            self._handle = self._loop.call_later(_CHECK_EVERY, self._check)
            return
        self.expired = True
        BAD_INPUT.note(self._request.remote, "request body too slow", f"{body.total_bytes} bytes")
        body.set_exception(
            RequestTooSlow(f"the request body did not arrive within {self._timeout:g} s")
        )


class ConnectionCap:
    """A protocol factory around aiohttp's: counts each peer address's open connections."""

    def __init__(self, server: web.Server, limit: int, trusted: TrustedProxies) -> None:
        self.server = server
        self.limit = limit
        self._trusted = trusted
        self.open: Counter[str] = Counter()

    def __call__(self) -> asyncio.Protocol:
        return _Capped(self, self.server())

    def admit(self, host: str) -> bool:
        if self.limit <= 0 or self.open[host] < self.limit or _trusted(self._trusted, host):
            self.open[host] += 1
            return True
        return False

    def release(self, host: str) -> None:
        self.open[host] -= 1
        if self.open[host] <= 0:
            del self.open[host]


_REFUSAL_BODY = json.dumps(
    {
        "error": LimitReached(
            "too many connections from this address", code="too_many_connections"
        ).to_dict()
    }
).encode()
REFUSAL = (
    b"HTTP/1.1 429 Too Many Requests\r\n"
    b"Content-Type: application/json; charset=utf-8\r\n"
    b"Retry-After: 5\r\n"
    b"Connection: close\r\n"
    b"Content-Length: " + str(len(_REFUSAL_BODY)).encode() + b"\r\n\r\n" + _REFUSAL_BODY
)


class _Capped(asyncio.Protocol):
    """aiohttp's protocol for one connection, admitted or refused by the cap."""

    def __init__(self, cap: ConnectionCap, inner: RequestHandler) -> None:
        self._cap = cap
        self._inner = inner
        self._host: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        host = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        if not self._cap.admit(host):
            BAD_INPUT.note(host, "too many connections", f"{self._cap.limit} open")
            assert isinstance(transport, asyncio.Transport)
            transport.write(REFUSAL)
            transport.close()
            return
        self._host = host
        self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._host is None:
            return
        self._cap.release(self._host)
        self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._host is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self._host is not None:
            self._inner.eof_received()
        return None

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


class CappedRunner(web.AppRunner):
    """Its sites accept connections through the cap."""

    def __init__(self, app: web.Application, cap: int, trusted: TrustedProxies, **kw: Any):
        super().__init__(app, **kw)
        self._limit = cap
        self._trusted = trusted
        self._cap: ConnectionCap | None = None

    @property
    def server(self) -> Any:  # the sites' protocol factory
        server = super().server
        if server is None:
            return None
        if self._cap is None or self._cap.server is not server:
            self._cap = ConnectionCap(server, self._limit, self._trusted)
        return self._cap


async def start(
    app: web.Application, settings: Settings, *, host: str, port: int, handle_signals: bool
) -> tuple[web.AppRunner, web.TCPSite]:
    """Set the app up and listen; the caller cleans the runner up."""
    app.middlewares.insert(0, body_deadline(settings.body_timeout, settings.body_min_rate))
    runner = CappedRunner(
        app,
        settings.max_connections_per_address,
        TrustedProxies.parse(settings.trusted_proxies),
        handle_signals=handle_signals,
        keepalive_timeout=settings.header_timeout,
        # SIGTERM (stop(), below): what is left of the requests in flight when the app has
        # closed its sockets gets this long, a request whose body is still coming among them
        # (aiohttp stops reading at shutdown), then the process exits with 0.
        shutdown_timeout=settings.shutdown_timeout,
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner, site


def run(app: web.Application, settings: Settings) -> None:
    """``web.run_app`` with the bounds above: until SIGINT or SIGTERM, then :func:`stop`. Shaped
    like run_app: the signal's GracefulExit leaves ``run_forever``, and only then does the
    shutdown run, on a loop still running, so requests in flight finish (``asyncio.run`` would
    cancel them)."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    runner: web.AppRunner | None = None
    site: web.TCPSite | None = None
    try:
        runner, site = loop.run_until_complete(
            start(app, settings, host=settings.host, port=settings.port, handle_signals=True)
        )
        loop.run_forever()
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        if runner is not None and site is not None:
            loop.run_until_complete(stop(runner, site, app[DRAIN], settings))
        elif runner is not None:
            loop.run_until_complete(runner.cleanup())
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        asyncio.set_event_loop(None)
        loop.close()


async def stop(runner: web.AppRunner, site: web.TCPSite, drain: Drain, settings: Settings) -> None:
    """SIGTERM (or SIGINT): drain, then shut down, losing no request or event under way.

    1. For ``drain_delay`` seconds everything is served as before, but /healthz answers 503
       ``draining``: the load balancer stops sending new connections here meanwhile.
    2. The listening socket closes; the HTTP requests under way get up to ``shutdown_timeout``
       seconds to be answered (their pushes reach the sockets still open).
    3. Then the app's shutdown (consult/signaling/lifecycle.py) acks the Socket.IO events
       under way, closes every socket (its clients reconnect, through the balancer, to another
       process) and the process exits.

    A second signal during step 1 ends it at once."""
    loop = asyncio.get_running_loop()
    drain.begin()
    if settings.drain_delay > 0:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, drain.hurry)
        log.info(
            "draining: /healthz answers 503 for %g s, then this process stops", settings.drain_delay
        )
        await drain.wait(settings.drain_delay)
    await site.stop()
    left = await drain.requests.settle(settings.shutdown_timeout)
    if left:
        log.warning("closing the sockets with %d HTTP requests still under way", left)
    await runner.cleanup()


def _trusted(trusted: TrustedProxies, host: str) -> bool:
    try:
        return trusted.trusts(ipaddress.ip_address(host))
    except ValueError:
        return False
