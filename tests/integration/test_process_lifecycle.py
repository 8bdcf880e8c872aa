"""Real ``consult serve`` processes on one database (each backend), killed or stopped:

- SIGKILL: the connections the dead process held count as closed once its heartbeat is older
  than CONSULT_PROCESS_DEAD_AFTER (seen by the sweep of the process still running), and the
  grace periods run from then: a waiting patient's ticket is dropped, a busy doctor's
  consultation is interrupted, within the documented bounds;
- SIGTERM: the process closes every socket at once, finishes the request in flight, exits 0
  within a few seconds, and its connections count as closed at once.

The heartbeat, dead-after, sweep and grace settings are made small through CONSULT_*
variables. No Redis: each process pushes only to its own sockets, and the tests read the
database for what the other process did.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from consult.storage import tables as t
from tests.integration.test_two_processes import (
    REPO,
    Clients,
    Process,
    User,
    _wait_healthy,
    add_users,
)
from tests.support import free_port

HEARTBEAT = 0.3
DEAD_AFTER = 1.5
SWEEP = 0.2
PATIENT_GRACE = 3
DOCTOR_GRACE = 2
# The documented bound: a dead process's connections close within DEAD_AFTER + SWEEP of its
# death, and a grace ends within one more sweep of its end.
DROP_BOUND = DEAD_AFTER + PATIENT_GRACE + 2 * SWEEP
INTERRUPT_BOUND = DEAD_AFTER + DOCTOR_GRACE + 2 * SWEEP
SLACK = 6.0  # two loaded cores: processes may be late by a few seconds, never early
FAST = {
    "CONSULT_HEARTBEAT_INTERVAL": str(HEARTBEAT),
    "CONSULT_PROCESS_DEAD_AFTER": str(DEAD_AFTER),
    "CONSULT_SWEEP_INTERVAL": str(SWEEP),
    "CONSULT_PATIENT_GRACE": str(PATIENT_GRACE),
    "CONSULT_DOCTOR_GRACE": str(DOCTOR_GRACE),
    "CONSULT_SLOT_DAYS": "0",
}


class Servers:
    def __init__(
        self, database_url: str, directory: Path, settings: dict[str, str] | None = None
    ) -> None:
        self.database_url = database_url
        self.directory = directory
        self.settings = FAST if settings is None else settings  # CONSULT_* variables
        self.running: list[Process] = []

    def start(self, name: str, *, demo: bool = False) -> Process:
        port = free_port()
        log = self.directory / f"{name}-{port}.log"
        # This tree's code (python -m from the repository), only these settings.
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULT_")}
        env.update(self.settings, PYTHONUNBUFFERED="1")
        command = [
            sys.executable,
            "-m",
            "consult",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--database-url",
            self.database_url,
            *(["--demo"] if demo else []),
        ]
        with log.open("wb") as out:
            popen = subprocess.Popen(
                command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        process = Process(name, f"http://127.0.0.1:{port}", log, popen)
        self.running.append(process)
        _wait_healthy(process)
        return process

    def stop_all(self) -> None:
        for process in self.running:
            if process.popen.poll() is None:
                process.popen.kill()
                process.popen.wait()


@pytest.fixture
def servers(database_url: str, tmp_path: Path) -> Iterator[Servers]:
    made = Servers(database_url, tmp_path)
    yield made
    made.stop_all()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def clients() -> AsyncIterator[Clients]:
    made = Clients()
    yield made
    await made.close()


async def consultation(db: AsyncEngine, cid: int) -> Any:
    async with db.connect() as conn:
        return (
            await conn.execute(sa.select(t.consultations).where(t.consultations.c.id == cid))
        ).one()


async def presence(db: AsyncEngine, doctor: User) -> Any:
    async with db.connect() as conn:
        return (
            await conn.execute(
                sa.select(t.doctor_presence).where(t.doctor_presence.c.doctor_id == doctor.id)
            )
        ).one()


async def seconds_until(
    db: AsyncEngine, cid: int, status: str, since: float, limit: float
) -> float:
    """Seconds from ``since`` until consultation ``cid`` has ``status`` (fails after ``limit``)."""
    while True:
        elapsed = time.monotonic() - since
        if (await consultation(db, cid)).status == status:
            return elapsed
        assert elapsed < limit, f"consultation {cid} not {status} after {limit:.1f} s"
        await asyncio.sleep(0.05)


ONE_AT_A_TIME = {"specialties": ["psychiatry"], "forms": ["chat"], "capacity": 1}


async def test_after_a_sigkill_the_dead_process_connections_close_and_the_graces_run(
    servers: Servers, db: AsyncEngine, clients: Clients
) -> None:
    a = servers.start("a", demo=True)
    b = servers.start("b")
    (doctor,) = await add_users(db, "doctor", 1, "psychiatry")
    waiting, consulting = await add_users(db, "patient", 2)
    # On A: the doctor, busy with one patient, and another patient waiting. The consulting
    # patient's socket is on B, which lives on.
    doctor_ws = await clients.socket(a, doctor)
    assert (await doctor_ws.emit("presence:online", ONE_AT_A_TIME))["ok"]
    consulting_ws = await clients.socket(b, consulting)
    busy = await clients.api(a, consulting).call(
        "POST", "/api/consultations", {"specialty": "psychiatry", "form": "chat"}, expect=201
    )
    busy_id = busy["consultation"]["id"]
    await doctor_ws.next("queue:offer", 10)
    assert (await doctor_ws.emit("queue:accept", {"consultation_id": busy_id}))["ok"]
    await clients.socket(a, waiting)
    ticket = await clients.api(a, waiting).call(
        "POST", "/api/consultations", {"specialty": "psychiatry", "form": "chat"}, expect=201
    )
    ticket_id = ticket["consultation"]["id"]
    assert ticket["consultation"]["status"] == "waiting"

    a.popen.send_signal(signal.SIGKILL)
    a.popen.wait(timeout=10)
    killed = time.monotonic()

    interrupted = await seconds_until(db, busy_id, "waiting", killed, INTERRUPT_BOUND + SLACK)
    dropped = await seconds_until(db, ticket_id, "cancelled", killed, DROP_BOUND + SLACK)
    # Never before the dead process could be known dead and the grace had run.
    assert interrupted >= DEAD_AFTER - HEARTBEAT + DOCTOR_GRACE - 0.2, interrupted
    assert dropped >= DEAD_AFTER - HEARTBEAT + PATIENT_GRACE - 0.2, dropped
    # B told the consulting patient, whose socket it holds.
    note = await consulting_ws.next("consultation:interrupted", 10)
    assert note["consultation_id"] == busy_id
    row = await presence(db, doctor)
    assert row.status == "away"  # an absent doctor is offered nobody
    assert (await consultation(db, busy_id)).patient_disconnected_at is None  # still on B
    async with db.connect() as conn:
        left = (
            await conn.execute(
                sa.select(sa.func.count())
                .select_from(t.socket_connections)
                .where(t.socket_connections.c.user_id.in_([doctor.id, waiting.id]))
            )
        ).scalar()
    assert left == 0
    assert b.popen.poll() is None


async def test_sigterm_closes_the_sockets_at_once_and_exits_within_seconds(
    servers: Servers, db: AsyncEngine, clients: Clients
) -> None:
    a = servers.start("a", demo=True)
    (doctor,) = await add_users(db, "doctor", 1, "psychiatry")
    (patient,) = await add_users(db, "patient", 1)
    doctor_ws = await clients.socket(a, doctor)
    assert (await doctor_ws.emit("presence:online", ONE_AT_A_TIME))["ok"]
    patient_ws = await clients.socket(a, patient)
    patient_api = clients.api(a, patient)
    ticket = await patient_api.call(
        "POST", "/api/consultations", {"specialty": "psychiatry", "form": "chat"}, expect=201
    )
    await doctor_ws.next("queue:offer", 10)
    gone = {name: asyncio.Event() for name in ("doctor", "patient")}
    doctor_ws.sio.on("disconnect", lambda *_: gone["doctor"].set())
    patient_ws.sio.on("disconnect", lambda *_: gone["patient"].set())

    # A request in flight when the signal arrives: a login runs argon2 (64 MiB) for a while.
    in_flight = asyncio.create_task(
        patient_api.session.post(
            a.url + "/api/login", json={"email": "anna@demo.test", "password": "wrong password"}
        )
    )
    await asyncio.sleep(0.15)
    a.popen.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in gone.values())), 5)
    closed = time.monotonic() - sent
    code = await asyncio.to_thread(a.popen.wait, 15)
    exited = time.monotonic() - sent
    assert code == 0, a.log_tail()
    assert exited < 5.0, f"exited after {exited:.1f} s"
    assert closed < 2.0, f"sockets closed after {closed:.1f} s"
    async with await in_flight as response:  # answered, not cut off
        assert response.status == 401

    # Its connections count as closed at once: the grace periods started at the signal.
    row = await presence(db, doctor)
    assert row.disconnected_at is not None
    assert (
        await consultation(db, ticket["consultation"]["id"])
    ).patient_disconnected_at is not None
    async with db.connect() as conn:
        assert (
            await conn.execute(sa.select(sa.func.count()).select_from(t.socket_connections))
        ).scalar() == 0
        assert (
            await conn.execute(sa.select(sa.func.count()).select_from(t.server_processes))
        ).scalar() == 0


async def test_a_process_started_after_a_sigkill_closes_the_dead_one_connections(
    servers: Servers, db: AsyncEngine, clients: Clients
) -> None:
    """The only process dies; its successor, started at once, counts it dead once its last
    heartbeat is DEAD_AFTER old, and the graces run from then."""
    a = servers.start("a", demo=True)
    (doctor,) = await add_users(db, "doctor", 1, "dermatology")
    (patient,) = await add_users(db, "patient", 1)
    doctor_ws = await clients.socket(a, doctor)
    online = {"specialties": ["dermatology"], "forms": ["chat"]}
    assert (await doctor_ws.emit("presence:online", online))["ok"]
    await clients.socket(a, patient)
    ticket = await clients.api(a, patient).call(
        "POST", "/api/consultations", {"specialty": "psychiatry", "form": "chat"}, expect=201
    )
    a.popen.send_signal(signal.SIGKILL)
    a.popen.wait(timeout=10)
    killed = time.monotonic()
    servers.start("a2")

    dropped = await seconds_until(
        db, ticket["consultation"]["id"], "cancelled", killed, DROP_BOUND + 2 * SLACK
    )
    assert dropped >= DEAD_AFTER - HEARTBEAT + PATIENT_GRACE - 0.2, dropped
    deadline = time.monotonic() + 2 * SLACK
    while (await presence(db, doctor)).status != "away":  # its lease ran out too
        assert time.monotonic() < deadline, "the doctor of the dead process is still online"
        await asyncio.sleep(0.05)


DRAIN = 5.0


async def test_a_draining_process_says_so_and_serves_everything_until_its_delay_ends(
    servers: Servers, db: AsyncEngine, clients: Clients
) -> None:
    """CONSULT_DRAIN_DELAY: after SIGTERM, /healthz answers 503 draining (a load balancer takes
    the process out) while requests and events are served as before; the sockets close when
    the delay ends, and the process exits with 0."""
    servers.settings = {**FAST, "CONSULT_DRAIN_DELAY": str(DRAIN)}
    a = servers.start("a", demo=True)
    (patient,) = await add_users(db, "patient", 1)
    patient_ws = await clients.socket(a, patient)
    gone = asyncio.Event()
    patient_ws.sio.on("disconnect", lambda *_: gone.set())
    api = clients.api(a, patient)

    a.popen.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    await asyncio.sleep(0.3)
    async with api.session.get(a.url + "/healthz") as response:
        assert response.status == 503
        assert (await response.json())["status"] == "draining"
    assert (await api.call("GET", "/api/me"))["id"] == patient.id
    assert (await patient_ws.emit("queue:ticket", None))["ok"]  # no ticket: data null
    # A loaded machine may take a second for these; the delay leaves them five.
    assert not gone.is_set(), "the sockets closed before the drain delay ended"
    await asyncio.wait_for(gone.wait(), 10)
    closed = time.monotonic() - sent
    assert await asyncio.to_thread(a.popen.wait, 15) == 0, a.log_tail()
    assert closed >= DRAIN, f"the sockets closed {closed:.2f} s after the signal"


@pytest.mark.one_backend
async def test_a_second_signal_ends_the_drain_at_once(servers: Servers) -> None:
    servers.settings = {**FAST, "CONSULT_DRAIN_DELAY": "60"}
    a = servers.start("a", demo=True)
    a.popen.send_signal(signal.SIGTERM)
    await asyncio.sleep(0.5)
    a.popen.send_signal(signal.SIGINT)  # Ctrl-C, or systemd's second stop
    sent = time.monotonic()
    assert await asyncio.to_thread(a.popen.wait, 30) == 0, a.log_tail()
    assert time.monotonic() - sent < 10
