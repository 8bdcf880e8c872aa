"""The event-loop watchdog: a thread that notices when the loop stops turning.

The loop sets a heartbeat a few times per threshold; a thread of its own checks it. When the
heartbeat is older than ``threshold`` seconds, the loop is blocked (a long computation, a
blocking call, a coroutine that never yields: issue 11, A): the watchdog logs the stack of the
loop's thread, once per stall, as one WARNING record of ``consult.watchdog``. Nothing else is
done: a blocked loop cannot be helped from outside, but the record says where it is stuck.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback
from collections.abc import AsyncIterator

from aiohttp import web

from consult.http.routing import SERVICES

log = logging.getLogger(__name__)


class LoopWatchdog:
    def __init__(self, loop: asyncio.AbstractEventLoop, threshold: float) -> None:
        self._loop = loop
        self._threshold = threshold
        # Beats and checks several times per threshold, so a stall is seen within ~1.25x of it.
        self._period = threshold / 4
        self._beat = time.monotonic()
        self._loop_thread: int | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """From the loop's own thread."""
        self._loop_thread = threading.get_ident()
        self._heartbeat()
        self._thread = threading.Thread(target=self._watch, name="loop-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._handle is not None:
            self._handle.cancel()
        if self._thread is not None:
            self._thread.join()

    def _heartbeat(self) -> None:
        self._beat = time.monotonic()
        self._handle = self._loop.call_later(self._period, self._heartbeat)

    def _watch(self) -> None:
        reported = False  # this stall is logged already
        while not self._stop.wait(self._period):
            blocked = time.monotonic() - self._beat
            if blocked <= self._threshold:
                reported = False
            elif not reported:
                reported = True
                self._report(blocked)

    def _report(self, blocked: float) -> None:
        frame = sys._current_frames().get(self._loop_thread or 0)
        stack = "".join(traceback.format_stack(frame)) if frame is not None else "(no stack)\n"
        log.warning(
            "event loop blocked for %.1f s so far (threshold %.1f s); its thread's stack:\n%s",
            blocked,
            self._threshold,
            stack.rstrip("\n"),
        )


async def watchdog_lifetime(app: web.Application) -> AsyncIterator[None]:
    """Started with the app, stopped at shutdown; ``loop_watchdog_threshold`` 0 turns it off."""
    threshold = app[SERVICES].settings.loop_watchdog_threshold
    watchdog = LoopWatchdog(asyncio.get_running_loop(), threshold) if threshold > 0 else None
    if watchdog is not None:
        watchdog.start()
    yield
    if watchdog is not None:
        watchdog.stop()
