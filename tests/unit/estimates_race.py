"""A request for wait estimates that arrives in the loop turn in which the queue's table was
stored, before the table task's done-callbacks ran (as a database result arriving at that
moment does under load). Run as ``python -m tests.unit.estimates_race``: prints ``answered``
and exits, or, with the bug of issue 11 item A, spins forever at 100 % of a core
(tests/unit/test_estimate_tables.py stops it)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from consult.estimates import wait_model
from consult.estimates.tables import EstimateTables

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
MODEL = wait_model.DurationModel.fit([600.0, 900.0, 1200.0], "chat")
QUEUE = ("cardiology", "chat")


async def scenario() -> None:
    tables = EstimateTables(max_places=61)

    async def late_request() -> list[wait_model.Estimate]:
        # Every loop turn, look whether the table is stored (the table task's last step): the
        # request then runs in that turn or the next, either way before the callbacks.
        while QUEUE not in tables._tables:
            await asyncio.sleep(0)
        # A different number of doctors online: the table just made cannot answer it.
        return await tables.table(NOW, *QUEUE, 3, 2, [60.0], MODEL)

    late = asyncio.create_task(late_request())
    first = await tables.table(NOW, *QUEUE, 3, 1, [60.0], MODEL)
    second = await late
    assert not first[0].no_doctor_online
    assert second[:3] == wait_model.estimate_queue(3, 2, [60.0], MODEL)
    print("answered", flush=True)


if __name__ == "__main__":
    asyncio.run(scenario())
