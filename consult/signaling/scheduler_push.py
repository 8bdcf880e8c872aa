"""Live dashboard: when a queue, a doctor's presence or a consultation changes, the schedulers'
sockets (room ``schedulers``) get the whole overview again as ``scheduler:overview``
(``SchedulerPush``; ``RoomPush`` is the mechanism, which the ratings' figures use too).

Pushes are coalesced and rate-limited: the first change schedules one push, at least
``interval`` after the previous one started (0.25 s: at most four a second) and ``delay`` after
the change; changes meanwhile ride along. A change that arrives while an overview is being
computed schedules the next push, so the last state is always sent. Tasks are owned and
cancelled on shutdown, like ``QueueFanout``'s.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

import socketio

from consult.dashboard.service import DashboardService
from consult.events import (
    ConsultationEnded,
    ConsultationInterrupted,
    ConsultationMatched,
    Event,
    OfferMade,
    OfferWithdrawn,
    PresenceChanged,
    QueueChanged,
    TicketDropped,
    TicketMoved,
)

log = logging.getLogger(__name__)

SCHEDULERS_ROOM = "schedulers"
_WATCHED = (
    QueueChanged,
    PresenceChanged,
    ConsultationMatched,
    ConsultationEnded,
    ConsultationInterrupted,
    OfferMade,
    OfferWithdrawn,
    TicketDropped,
    TicketMoved,
)


class RoomPush:
    """Coalesced, rate-limited pushes of one computed payload to the schedulers' room, when an
    event of ``watched`` is published. Subclasses say what is computed and sent."""

    event_name = ""
    watched: tuple[type[Event], ...] = ()

    def __init__(
        self,
        sio: socketio.AsyncServer,
        *,
        interval: float = 0.25,
        delay: float = 0.05,
        local_audience: bool = True,
    ) -> None:
        """``local_audience``: every socket is in this process (no Redis), so a push can be
        skipped when no scheduler is connected; with Redis the room spans processes and every
        change is pushed."""
        self._sio = sio
        self._interval = interval
        self._delay = delay
        self._local_audience = local_audience
        self._scheduled = False
        self._last = -math.inf
        self._tasks: set[asyncio.Task[None]] = set()

    async def payload(self) -> dict[str, Any]:
        raise NotImplementedError

    async def __call__(self, event: Event) -> None:
        """Subscribed to the event bus: committed changes only."""
        if isinstance(event, self.watched):
            self.changed()

    def changed(self) -> None:
        if self._scheduled:
            return
        self._scheduled = True
        loop = asyncio.get_running_loop()
        wait = max(self._delay, self._last + self._interval - loop.time())
        task = asyncio.create_task(self._push(wait))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _push(self, wait: float) -> None:
        await asyncio.sleep(wait)
        self._scheduled = False  # later changes schedule the next push
        self._last = asyncio.get_running_loop().time()
        try:
            if not self._has_audience():
                return
            await self._sio.emit(self.event_name, await self.payload(), to=SCHEDULERS_ROOM)
        except Exception:
            log.exception("%s push failed", self.event_name)

    def _has_audience(self) -> bool:
        if not self._local_audience:
            return True
        return any(True for _ in self._sio.manager.get_participants("/", SCHEDULERS_ROOM))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class SchedulerPush(RoomPush):
    """The queues' overview, as ``scheduler:overview``."""

    event_name = "scheduler:overview"
    watched = _WATCHED

    def __init__(
        self,
        sio: socketio.AsyncServer,
        dashboard: DashboardService,
        *,
        interval: float = 0.25,
        delay: float = 0.05,
        local_audience: bool = True,
    ) -> None:
        super().__init__(sio, interval=interval, delay=delay, local_audience=local_audience)
        self._dashboard = dashboard

    async def payload(self) -> dict[str, Any]:
        return (await self._dashboard.overview()).model_dump(mode="json")
