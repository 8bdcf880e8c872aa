"""Live queue places: when a queue moves, every patient waiting in it gets their new ticket.

Changes are coalesced per queue: the first change schedules one recomputation a moment later
(``delay``), and changes meanwhile ride along, so a burst of matches costs one query and one
emit per waiting patient instead of one per change and patient. A push is in flight until
this process has written it out to the sockets; one more follows it if the queue moved
meanwhile. Tasks are owned and cancelled on shutdown.
"""

from __future__ import annotations

import asyncio
import logging

import socketio

from consult.queue.tickets import TicketService
from consult.signaling.server import sent, user_room

log = logging.getLogger(__name__)

YIELD_EVERY = 50  # emits between two turns given back to the loop


class QueueFanout:
    def __init__(self, sio: socketio.AsyncServer, tickets: TicketService, delay: float) -> None:
        self._sio = sio
        self._tickets = tickets
        self._delay = delay
        # Per queue: scheduled (a push will start), or running plus dirty (one more after it).
        self._scheduled: set[tuple[str, str]] = set()
        self._running: set[tuple[str, str]] = set()
        self._dirty: set[tuple[str, str]] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def changed(self, specialty: str, form: str) -> None:
        key = (specialty, form)
        if key in self._scheduled:
            return
        if key in self._running:
            # Paced to delivery: at most one push per queue in flight; this change rides on the
            # push that starts when the current one is done.
            self._dirty.add(key)
            return
        self._schedule(key)

    def _schedule(self, key: tuple[str, str]) -> None:
        self._scheduled.add(key)
        task = asyncio.create_task(self._push(key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _push(self, key: tuple[str, str]) -> None:
        await asyncio.sleep(self._delay)
        self._scheduled.discard(key)
        self._running.add(key)
        try:
            updates = await self._tickets.updates(*key)
            rooms = [user_room(patient_id) for patient_id, _ in updates]
            for count, (room, (_, update)) in enumerate(zip(rooms, updates, strict=True), 1):
                await self._sio.emit("queue:ticket", update, to=room)
                if count % YIELD_EVERY == 0:
                    # An emit only queues the packet, so a long queue's pushes would otherwise
                    # run as one stretch and hold every other socket (and the media) back.
                    await asyncio.sleep(0)
            # In flight until written out: otherwise, when moves come faster than sockets
            # drain, every socket queues ticket after stale ticket.
            await sent(self._sio, rooms)
        except Exception:
            log.exception("queue fan-out failed for %s/%s", *key)
        finally:
            self._running.discard(key)
            if key in self._dirty:
                self._dirty.discard(key)
                self._schedule(key)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
