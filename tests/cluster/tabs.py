"""A user's page as the cluster sees it: one Socket.IO connection through HAProxy (WebSocket
transport only, as web/common/api.js connects) that comes back by itself when it drops.

socket.io-client, which the pages use, reconnects after any drop, after 1 s ± 50 %, doubling
up to 5 s. python-socketio's client does not reconnect when the server closes the connection
(a draining node does), so a tab keeps its own loop with socket.io-client's timing. After each
reconnect it runs its ``on_connect`` hooks, as the pages catch up (web/doctor/app.js ``sync``,
web/common/chat.js ``catchUp``).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import socketio

from tests.cluster.people import User

Hook = Callable[["Tab"], Awaitable[None]]
Handler = Callable[[Any], Awaitable[None] | None]


class Lost(Exception):
    """The connection dropped, or the server did not answer, before the ack came."""


class Tab:
    def __init__(self, base_url: str, user: User) -> None:
        self.base_url = base_url
        self.user = user
        self.sio: socketio.AsyncClient | None = None
        self.connected = asyncio.Event()
        self.handlers: dict[str, list[Handler]] = defaultdict(list)
        self.on_connect: list[Hook] = []
        self.drops: list[float] = []  # monotonic times the connection dropped
        self.returns: list[float] = []  # seconds from each drop to the connection back
        self.connects = 0
        self._closed = False
        self._loop: asyncio.Task[None] | None = None

    def on(self, event: str, handler: Handler) -> None:
        """Run ``handler`` for each ``event`` pushed, on this connection and the next ones."""
        new = event not in self.handlers
        self.handlers[event].append(handler)
        if new and self.sio is not None:
            self.sio.on(event, self._dispatcher(self.sio, event))

    async def open(self) -> Tab:
        """Connected once (raises if the first connect fails), then kept connected."""
        await self._connect()
        self._loop = asyncio.create_task(self._keep())
        return self

    async def call(self, event: str, data: Any, timeout: float = 10) -> Any:
        """The ack of ``event`` on the current connection; Lost if it drops first."""
        sio = self.sio
        if sio is None or not sio.connected:
            raise Lost(event)
        dropped = asyncio.ensure_future(self._dropped(sio))
        answer = asyncio.ensure_future(sio.call(event, data, timeout=timeout))
        try:
            done, _ = await asyncio.wait({dropped, answer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            dropped.cancel()
        if answer not in done or answer.exception() is not None:
            answer.cancel()
            raise Lost(event)
        return answer.result()

    async def close(self) -> None:
        self._closed = True
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        if self.sio is not None and self.sio.connected:
            with contextlib.suppress(Exception):
                await self.sio.disconnect()

    # --- internals ---------------------------------------------------------------------------

    async def _connect(self) -> None:
        sio = socketio.AsyncClient(reconnection=False)
        gone = asyncio.Event()
        for event in self.handlers:
            sio.on(event, self._dispatcher(sio, event))

        async def disconnected(*_: Any) -> None:
            gone.set()
            if sio is self.sio:
                self.connected.clear()
                self.drops.append(time.monotonic())

        sio.on("disconnect", disconnected)
        sio.gone = gone  # type: ignore[attr-defined]
        await sio.connect(
            self.base_url,
            auth={"token": self.user.token},
            transports=["websocket"],
            wait_timeout=10,
        )
        self.sio = sio
        self.connects += 1
        if self.drops and len(self.returns) < len(self.drops):
            self.returns.append(time.monotonic() - self.drops[-1])
        self.connected.set()
        for hook in self.on_connect:
            await hook(self)

    async def _keep(self) -> None:
        while not self._closed:
            sio = self.sio
            if sio is not None:
                await sio.gone.wait()  # type: ignore[attr-defined]
            attempt = 0
            while not self._closed:
                delay = min(1.0 * 2**attempt, 5.0)
                await asyncio.sleep(delay * random.uniform(0.5, 1.5))
                try:
                    await self._connect()
                    break
                except Exception:  # refused, or a node that died meanwhile: again, later
                    attempt += 1

    @staticmethod
    async def _dropped(sio: socketio.AsyncClient) -> None:
        await sio.gone.wait()  # type: ignore[attr-defined]

    def _dispatcher(self, sio: socketio.AsyncClient, event: str) -> Handler:
        """python-socketio keeps one handler per event: this one runs the tab's, for pushes
        of the current connection only."""

        async def run(data: Any = None) -> None:
            if sio is not self.sio:
                return
            for handler in list(self.handlers[event]):
                result = handler(data)
                if asyncio.iscoroutine(result):
                    await result

        return run


async def open_tabs(base_url: str, users: list[User], setup: Callable[[Tab], None]) -> list[Tab]:
    """A tab per user, ``setup`` run on each before it connects; 20 handshakes at a time."""
    gate = asyncio.Semaphore(20)

    async def one(user: User) -> Tab:
        tab = Tab(base_url, user)
        setup(tab)
        async with gate:
            return await tab.open()

    return list(await asyncio.gather(*(one(u) for u in users)))


def return_times(tabs: list[Tab], since: float) -> list[float]:
    """Seconds from ``since`` until each tab that dropped after it was connected again."""
    times = []
    for tab in tabs:
        dropped = [i for i, at in enumerate(tab.drops) if at >= since]
        if dropped:
            i = dropped[0]
            assert i < len(tab.returns), f"user {tab.user.id} is not connected again"
            times.append(tab.drops[i] - since + tab.returns[i])
    return times
