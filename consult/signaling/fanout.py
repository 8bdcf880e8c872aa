"""Live queue places: when a queue moves, every patient waiting in it gets their new ticket.

Changes are coalesced per queue: the first change schedules one recomputation a moment later
(``delay``), and changes meanwhile ride along, so a burst of matches costs one query and one
emit per waiting patient instead of one per change and patient. Tasks are owned and cancelled
on shutdown.
"""

from __future__ import annotations

import asyncio
import logging

import socketio

from consult.queue.tickets import TicketService
from consult.signaling.server import user_room

log = logging.getLogger(__name__)


class QueueFanout:
    def __init__(self, sio: socketio.AsyncServer, tickets: TicketService, delay: float) -> None:
        self._sio = sio
        self._tickets = tickets
        self._delay = delay
        self._pending: set[tuple[str, str]] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def changed(self, specialty: str, form: str) -> None:
        key = (specialty, form)
        if key in self._pending:
            return
        self._pending.add(key)
        task = asyncio.create_task(self._push(key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _push(self, key: tuple[str, str]) -> None:
        await asyncio.sleep(self._delay)
        self._pending.discard(key)
        try:
            updates = await self._tickets.updates(*key)
            for patient_id, update in updates:
                await self._sio.emit(
                    "queue:ticket", update.model_dump(mode="json"), to=user_room(patient_id)
                )
        except Exception:
            log.exception("queue fan-out failed for %s/%s", *key)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
