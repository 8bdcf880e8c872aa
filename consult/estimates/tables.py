"""Per-queue tables of wait estimates by place, computed off the event loop and reused.

A table (``wait_model.estimate_queue``) costs tens of milliseconds of pure Python: computed on the
event loop, it held up every other request and, inside a join, the SQLite writer. So tables
are computed in a worker thread, once per queue state however many requests want it, and
reused while the queue's inputs stay the same (doctors online, the whole minutes each busy
doctor has been busy, the duration model), for at most ``ttl``.

When only the busy doctors' minutes or the model moved, the queue's previous table is answered
at once while the new one is computed (for at most ``stale``), and a queue computes one table at
a time, at most one per ``refresh`` while an old one may be answered: an estimate a few seconds
old is still honest at a resolution of minutes. A change in the doctors online is never answered
from an old table; nor is a place deeper than the old table reaches.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from consult.estimates import wait_model

log = logging.getLogger(__name__)

_MIN_PLACES = 8


@dataclass(frozen=True)
class _Table:
    key: tuple[object, ...]
    online: int
    computed_at: datetime
    estimates: list[wait_model.Estimate]


class EstimateTables:
    """Owned by one TicketService; one table per specialty-and-form queue."""

    def __init__(
        self,
        max_places: int,
        ttl: timedelta = timedelta(seconds=15),
        stale: timedelta = timedelta(seconds=30),
        refresh: timedelta = timedelta(seconds=2),
    ) -> None:
        self._max_places = max_places
        self._ttl = ttl
        self._stale = stale
        self._refresh = refresh
        self._tables: dict[tuple[str, str], _Table] = {}
        self._running: dict[tuple[str, str], asyncio.Task[_Table]] = {}

    async def table(
        self,
        now: datetime,
        specialty: str,
        form: str,
        places: int,
        online: int,
        busy_elapsed: Sequence[float],
        model: wait_model.DurationModel,
    ) -> list[wait_model.Estimate]:
        """Estimates for places ``0 .. n - 1`` with ``n >= min(places, max_places)``."""
        queue = (specialty, form)
        needed = max(1, min(places, self._max_places))
        key = (
            specialty,
            form,
            online,
            tuple(sorted(int(e // 60) for e in busy_elapsed)),
            round(model.median_seconds),
            round(model.spread, 2),
            round(model.uncertainty, 3),
        )
        size = min(self._max_places, max(_MIN_PLACES, 2 * needed))
        while True:
            found = self._tables.get(queue)
            deep_enough = found is not None and len(found.estimates) >= needed
            if found is not None and deep_enough and found.key == key:
                if now < found.computed_at + self._ttl:
                    return found.estimates
            usable = (
                found is not None
                and deep_enough
                and found.online == online
                and now < found.computed_at + self._stale
            )
            running = self._running.get(queue)
            if running is not None and running.done():
                # Finished, its done-callback not run yet: awaiting it would return without
                # yielding to the loop, so the callback could never run and this loop would
                # spin for good (issue 11, A). Clear it here instead.
                self._finished(queue, running)
                continue
            if running is not None:
                # One table at a time per queue: while doctors start and end consultations,
                # the inputs change with every match, and computing a table per change
                # would keep a core busy.
                if usable and found is not None:
                    return found.estimates
                await asyncio.shield(running)
                continue
            if usable and found is not None and now < found.computed_at + self._refresh:
                return found.estimates
            if found is not None and found.key == key:
                size = max(size, len(found.estimates))
            task = self._compute(queue, key, now, size, online, list(busy_elapsed), model)
            if usable and found is not None:
                return found.estimates
            return (await asyncio.shield(task)).estimates

    async def settle(self) -> None:
        """Wait for the tables being computed now (tests, shutdown)."""
        await asyncio.gather(*self._running.values(), return_exceptions=True)

    def _compute(
        self,
        queue: tuple[str, str],
        key: tuple[object, ...],
        now: datetime,
        size: int,
        online: int,
        busy_elapsed: list[float],
        model: wait_model.DurationModel,
    ) -> asyncio.Task[_Table]:
        async def compute() -> _Table:
            estimates = await asyncio.to_thread(
                wait_model.estimate_queue, size, online, busy_elapsed, model
            )
            table = _Table(key, online, now, estimates)
            current = self._tables.get(queue)
            if current is None or current.computed_at <= now:
                self._tables[queue] = table
            return table

        task = asyncio.create_task(compute())
        self._running[queue] = task
        task.add_done_callback(lambda done: self._finished(queue, done))
        return task

    def _finished(self, queue: tuple[str, str], task: asyncio.Task[_Table]) -> None:
        """The task's done-callback, or ``table`` when it finds the task done first."""
        if self._running.get(queue) is not task:
            return  # already cleared (and its failure logged) by the other of the two
        del self._running[queue]
        if not task.cancelled() and task.exception() is not None:
            log.error("wait estimates failed", exc_info=task.exception())
