"""Presence across processes, with real ``consult serve`` processes on one database (each
backend): a user's connections are counted in every live process, and a grace period starts
when the last one anywhere closes.

- A doctor with a console tab on each process closes one: still available (the next patient is
  offered to them, on the other tab); closing the last one starts the grace at once.
- The process holding the doctor's last tab is killed (SIGKILL): the doctor counts as gone
  (no new patients; the grace starts) within the documented bound, CONSULT_PROCESS_DEAD_AFTER +
  CONSULT_SWEEP_INTERVAL after the kill, and is set away one grace later. The test prints
  both times.

Heartbeat, dead-after, sweep and grace are made small (test_process_lifecycle.FAST).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration import test_process_lifecycle as lifecycle
from tests.integration.test_process_lifecycle import (
    DEAD_AFTER,
    DOCTOR_GRACE,
    HEARTBEAT,
    ONE_AT_A_TIME,
    SLACK,
    SWEEP,
    Servers,
    presence,
)
from tests.integration.test_two_processes import Clients, Process, User, add_users
from tests.support import SocketClient

# The fixtures: processes started with test_process_lifecycle.FAST, the database, clients.
servers, db, clients = lifecycle.servers, lifecycle.db, lifecycle.clients

# The bound operations.md gives for a dead process's connections to stop counting.
GONE_BOUND = DEAD_AFTER + SWEEP


async def until(
    db: AsyncEngine,
    doctor: User,
    what: str,
    holds: Callable[[Any], bool],
    since: float,
    limit: float,
) -> float:
    """Seconds from ``since`` until the doctor's presence row ``holds`` (fails after ``limit``)."""
    while not holds(await presence(db, doctor)):
        elapsed = time.monotonic() - since
        assert elapsed < limit, f"the doctor is not {what} after {elapsed:.1f} s"
        await asyncio.sleep(0.05)
    return time.monotonic() - since


def gone(row: Any) -> bool:
    """The grace has started: no connection in a live process."""
    return row.disconnected_at is not None


def away(row: Any) -> bool:
    return bool(row.status == "away")


async def two_tabs(clients: Clients, doctor: User, *processes: Process) -> list[SocketClient]:
    """The doctor's console open on each process, online through the first."""
    tabs = [await clients.socket(p, doctor) for p in processes]
    assert (await tabs[0].emit("presence:online", ONE_AT_A_TIME))["ok"]
    return tabs


async def test_a_doctor_with_a_tab_on_each_process_stays_available_until_the_last_closes(
    servers: Servers, db: AsyncEngine, clients: Clients
) -> None:
    a = servers.start("a", demo=True)
    b = servers.start("b")
    (doctor,) = await add_users(db, "doctor", 1, "psychiatry")
    (patient,) = await add_users(db, "patient", 1)
    on_a, on_b = await two_tabs(clients, doctor, a, b)

    await on_a.close()
    # Longer than a dead process takes to be reaped: nothing the close did may show later.
    await asyncio.sleep(DEAD_AFTER + 2 * SWEEP)
    row = await presence(db, doctor)
    assert (row.status, row.disconnected_at) == ("online", None)
    # Still available: a patient joining (on B, which holds the tab left) is offered to them.
    ticket = await clients.api(b, patient).call(
        "POST", "/api/consultations", {"specialty": "psychiatry", "form": "chat"}, expect=201
    )
    offer = await on_b.next("queue:offer", 10)
    assert offer["consultation"]["id"] == ticket["consultation"]["id"]
    assert (await on_b.emit("queue:decline", {"consultation_id": offer["consultation"]["id"]}))[
        "ok"
    ]

    closed = time.monotonic()
    await on_b.close()  # the last one anywhere: the grace starts now
    assert await until(db, doctor, "gone", gone, closed, 5) < 5


async def test_the_process_holding_the_last_tab_dies_and_the_doctor_is_gone_within_the_bound(
    servers: Servers, db: AsyncEngine, clients: Clients
) -> None:
    a = servers.start("a", demo=True)
    b = servers.start("b")
    (doctor,) = await add_users(db, "doctor", 1, "psychiatry")
    on_a, _ = await two_tabs(clients, doctor, a, b)
    await on_a.close()
    assert (await presence(db, doctor)).disconnected_at is None  # B's tab still counts

    b.popen.send_signal(signal.SIGKILL)
    b.popen.wait(timeout=10)
    killed = time.monotonic()
    left = await until(db, doctor, "gone", gone, killed, GONE_BOUND + SLACK)
    set_away = GONE_BOUND + DOCTOR_GRACE + SWEEP
    went = await until(db, doctor, "away", away, killed, set_away + SLACK)
    print(f"\nSIGKILL -> no longer counted connected: {left:.2f} s (bound {GONE_BOUND:.1f} s); ")
    print(f"-> away: {went:.2f} s (bound {set_away:.1f} s)")
    # Never before B could be known dead (its last beat may be a heartbeat before the kill).
    assert left >= DEAD_AFTER - HEARTBEAT - 0.2, left
    assert went >= left + DOCTOR_GRACE - 0.2, (left, went)
    assert a.popen.poll() is None
