"""A TCP proxy that a test can cut: a database outage for one server under test.

The PostgreSQL server on this machine is shared (other tests, other runs) and must never be
stopped. A server under test reaches it through this proxy instead, and the test cuts the
proxy to make the database unavailable to that server alone: cut, the proxy resets every
connection it carries (as a crashed server's connections end) and stops listening, so that a
new connection is refused, as when PostgreSQL is down; restored, it listens again on the same
port. It runs on a thread and an event loop of its own, so that it keeps forwarding while the
test's loop waits in blocking calls (a server's start-up, a subprocess).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class CutProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        with socket.socket() as probe:  # a port of its own, the same across cuts
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._carried: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()  # the carriers and their pipes
        self.connections = 0  # accepted since start, for the test's figures

    def start(self) -> CutProxy:
        self._thread.start()
        self._run(self._listen())
        return self

    def cut(self) -> None:
        """Refuse new connections and reset the ones carried."""
        self._run(self._cut())

    def restore(self) -> None:
        self._run(self._listen())

    def close(self) -> None:
        self._run(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def _run(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._carry, "127.0.0.1", self.port, reuse_address=True
        )

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._carried):
            writer.transport.abort()
        self._carried.clear()

    async def _close(self) -> None:
        await self._cut()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _carry(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        carrier = asyncio.current_task()
        assert carrier is not None
        self._tasks.add(carrier)
        self.connections += 1
        try:
            await self._forward(reader, writer)
        except asyncio.CancelledError:
            pass  # closed: the test is over
        finally:
            self._tasks.discard(carrier)

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            writer.transport.abort()
            return
        self._carried.update((writer, up_writer))
        pipes = [
            asyncio.create_task(self._pipe(reader, up_writer)),
            asyncio.create_task(self._pipe(up_reader, writer)),
        ]
        self._tasks.update(pipes)
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pipes:
                task.cancel()
                self._tasks.discard(task)
            for end in (writer, up_writer):
                self._carried.discard(end)
                end.transport.abort()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
