"""A process's way out on SIGTERM behind a load balancer (``consult serve``; docs/operations.md,
"Stopping, restarting and crashes").

While it drains, the process still serves everything, but ``/healthz`` answers 503
``draining`` so that the balancer stops sending it new connections. Then it stops listening,
answers the HTTP requests and the Socket.IO events it has under way, and only then closes its
sockets, whose clients reconnect through the balancer to another process. What this module
keeps is the state behind that: the flag, and the requests and events in flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web


class InFlight:
    """The tasks doing one kind of work now: a request's task lasts until its answer is
    written, an event's until its ack is sent."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[object]] = set()
        self.closed = False

    def track(self) -> bool:
        """Count the current task until it ends; False once closed (the work is not to start)."""
        if self.closed:
            return False
        task = asyncio.current_task()
        if task is not None and task not in self._tasks:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return True

    def close(self) -> None:
        """No more work of this kind starts (``track`` answers False)."""
        self.closed = True

    def __len__(self) -> int:
        return len(self._tasks)

    async def settle(self, limit: float) -> int:
        """Wait up to ``limit`` seconds for the work under way now (not for work that starts
        meanwhile: under load there may never be none); how many were still running."""
        current = asyncio.current_task()
        pending = {task for task in self._tasks if task is not current}
        if not pending:
            return 0
        _, left = await asyncio.wait(pending, timeout=limit)
        return len(left)


class Drain:
    """The draining flag and the HTTP requests under way (the Socket.IO events are counted by
    consult/signaling/server.py). A second signal cuts the wait short."""

    def __init__(self) -> None:
        self.draining = False
        self.requests = InFlight()  # Socket.IO's own transport aside
        self._hurry = asyncio.Event()

    def install(self, app: web.Application) -> None:
        """Under ``DRAIN``, its middleware the outermost so far."""
        app[DRAIN] = self
        app.middlewares.insert(0, self.middleware)

    def begin(self) -> None:
        self.draining = True

    def hurry(self) -> None:
        self._hurry.set()

    async def wait(self, seconds: float) -> bool:
        """Serve on for ``seconds`` while the balancer takes the process out; False when a
        second signal ended it early."""
        try:
            await asyncio.wait_for(self._hurry.wait(), seconds)
        except TimeoutError:
            return True
        return False

    @web.middleware
    async def middleware(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        # A socket's Engine.IO request lasts as long as the socket: the sockets are closed at
        # shutdown, not waited for.
        if not request.path.startswith("/socket.io/"):
            self.requests.track()
        return await handler(request)


DRAIN = web.AppKey("drain", Drain)
