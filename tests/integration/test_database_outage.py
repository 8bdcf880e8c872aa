"""The database unavailable, answered as such and survived.

PostgreSQL unavailable for 10 s under a running ``consult serve``: every answer says so (HTTP
503 ``database_unavailable`` with ``Retry-After``, the same code in Socket.IO acks and
connection refusals, /healthz 503), nothing is acknowledged that was not committed, and the
process resumes by itself when the database is back: requests succeed again, the chat messages
retried with their client ids are stored once, the heartbeat and the sweeper go on, and the
outage is logged once, not at every tick. SQLite's write lock held past the busy timeout is
answered the same way.

The shared PostgreSQL server must never be stopped (other tests and runs use it): the server
under test reaches it through a TCP proxy of the test's own (tests/cut_proxy.py), which the
test cuts (connections reset, new ones refused) and restores. The test reads the database
directly, past the proxy.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio
import sqlalchemy as sa
from aiohttp.test_utils import TestServer
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from consult.app import create_app
from consult.clock import ManualClock
from consult.storage import inline_sqlite
from consult.storage import tables as t
from tests import backends
from tests.cut_proxy import CutProxy
from tests.integration.conftest import settings_for
from tests.integration.test_process_lifecycle import ONE_AT_A_TIME, Servers
from tests.integration.test_two_processes import Clients, Process, add_users
from tests.support import ApiClient, SocketClient

postgresql_only = pytest.mark.skipif(
    "postgresql" not in backends.BACKENDS, reason="PostgreSQL not selected"
)

OUTAGE = 10.0  # seconds
LANES = 3  # chat messages awaiting their acks at once
RECOVERY_BOUND = 3.0  # seconds from the restore to the first request served again
HEARTBEAT = 0.5
SETTINGS = {
    "CONSULT_HEARTBEAT_INTERVAL": str(HEARTBEAT),
    "CONSULT_PROCESS_DEAD_AFTER": "30",  # longer than the outage: nobody is counted dead
    "CONSULT_SWEEP_INTERVAL": "0.5",
    "CONSULT_SESSION_CHECK_INTERVAL": "1",
    "CONSULT_SLOT_DAYS": "0",
    "CONSULT_CHAT_RATE": "100000",  # the retries are not what is measured
    "CONSULT_CHAT_BURST": "100000",
}


@pytest.fixture
def proxy(postgres_url: str) -> Iterator[CutProxy]:
    url = sa.make_url(postgres_url)
    made = CutProxy(url.host or "127.0.0.1", url.port or 5432).start()
    yield made
    made.close()


@pytest.fixture
async def db(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    await backends.truncate_postgres(postgres_url)
    engine = create_async_engine(postgres_url)  # straight to PostgreSQL, past the proxy
    yield engine
    await engine.dispose()


@pytest.fixture
def server(
    postgres_url: str, proxy: CutProxy, db: AsyncEngine, tmp_path: Path
) -> Iterator[Process]:
    through_proxy = sa.make_url(postgres_url).set(port=proxy.port)
    servers = Servers(through_proxy.render_as_string(hide_password=False), tmp_path, SETTINGS)
    yield servers.start("outage", demo=True)
    servers.stop_all()


@pytest.fixture
async def clients() -> AsyncIterator[Clients]:
    made = Clients()
    yield made
    await made.close()


class Chat:
    """Chat clients as the pages are: each message sent until acknowledged, again with the
    same client id after an error that says to try again. Several lanes send at once, each
    message as soon as the last was acknowledged, so that the cut finds some in flight."""

    def __init__(self, ws: Any, cid: int) -> None:
        self.ws, self.cid = ws, cid
        self.acked: dict[str, int] = {}  # client id -> the seq its ack gave
        self.refusals = 0  # acks saying database_unavailable
        self.in_flight_at_cut = 0  # messages sent before the cut and refused
        self.cut_at: float | None = None
        self.stop = asyncio.Event()

    async def lane(self, prefix: str) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            await self.send(f"{prefix}-{n}")

    async def send(self, client_id: str) -> None:
        payload = {"consultation_id": self.cid, "client_id": client_id, "body": client_id}
        sent_at = time.monotonic()
        while True:
            ack = await self.ws.sio.call("chat:send", payload, timeout=10)
            if ack["ok"]:
                self.acked[client_id] = ack["data"]["seq"]
                return
            assert ack["error"]["code"] == "database_unavailable", ack
            assert ack["error"]["details"]["retry_after"] > 0
            if self.cut_at is not None and sent_at < self.cut_at:
                self.in_flight_at_cut += 1
                sent_at = time.monotonic()
            self.refusals += 1
            await asyncio.sleep(0.5)  # sooner than retry_after: the test has no time to lose


async def http(base: str, method: str, path: str, token: str, json: Any = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as session:
        async with session.request(method, base + path, json=json, headers=headers) as response:
            return response.status, response.headers.get("Retry-After"), await response.json()


async def health(base: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session:
        async with session.get(base + "/healthz") as response:
            return response.status, await response.json()


async def refused_connect(base: str, token: str) -> Any:
    """What the server says to a new Socket.IO connection (its connect_error data)."""
    client = socketio.AsyncClient(reconnection=False)
    said: list[Any] = []
    client.on("connect_error", said.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(base, auth={"token": token}, transports=["websocket"], wait_timeout=10)
    return said[0] if said else None


async def heartbeat_at(db: AsyncEngine) -> datetime:
    async with db.connect() as conn:
        return (
            await conn.execute(sa.select(sa.func.max(t.server_processes.c.heartbeat_at)))
        ).scalar()


@postgresql_only
async def test_a_database_outage_is_answered_as_such_and_survived(
    server: Process, proxy: CutProxy, db: AsyncEngine, clients: Clients
) -> None:
    (doctor,) = await add_users(db, "doctor", 1, "psychiatry")
    patient, other, leaver = await add_users(db, "patient", 3)
    doctor_ws = await clients.socket(server, doctor)
    assert (await doctor_ws.emit("presence:online", ONE_AT_A_TIME))["ok"]
    patient_ws = await clients.socket(server, patient)
    leaver_ws = await clients.socket(server, leaver)  # closes its socket in the outage
    ticket = await clients.api(server, patient).call(
        "POST", "/api/consultations", {"specialty": "psychiatry", "form": "chat"}, expect=201
    )
    cid = ticket["consultation"]["id"]
    await doctor_ws.next("queue:offer", 10)
    assert (await doctor_ws.emit("queue:accept", {"consultation_id": cid}))["ok"]
    chat = Chat(patient_ws, cid)
    lanes = [asyncio.create_task(chat.lane(f"p{n}")) for n in range(LANES)]
    while len(chat.acked) < 50:  # the chat is under way
        await asyncio.sleep(0.01)

    proxy.cut()
    cut_at = chat.cut_at = time.monotonic()
    status, retry_after, body = await http(
        server.url, "GET", f"/api/consultations/{cid}", patient.token
    )
    assert (status, retry_after, body["error"]["code"]) == (503, "5", "database_unavailable")
    assert body["error"]["details"] == {"retry_after": 5}
    join = {"specialty": "psychiatry", "form": "chat"}
    status, retry_after, body = await http(
        server.url, "POST", "/api/consultations", other.token, join
    )
    assert (status, retry_after, body["error"]["code"]) == (503, "5", "database_unavailable")
    assert await health(server.url) == (
        503,
        {"status": "degraded", "database": "unreachable", "bus": "in-process"},
    )
    during = {"consultation_id": cid, "client_id": "during-outage", "body": "sent in the outage"}
    ack = await doctor_ws.emit("chat:send", during)
    assert not ack["ok"] and ack["error"]["code"] == "database_unavailable", ack
    refusal = await refused_connect(server.url, other.token)
    await leaver_ws.close()
    assert refusal["data"]["code"] == "database_unavailable", refusal
    answered_in = time.monotonic() - cut_at
    assert answered_in < 3.0, "every answer in the outage came at once, none waited"
    async with db.connect() as conn:  # nothing of what was refused is stored
        stored = t.messages.c.client_id == "during-outage"
        assert (await conn.execute(sa.select(sa.func.count()).where(stored))).scalar() == 0
        tickets = t.consultations.c.patient_id == other.id
        assert (await conn.execute(sa.select(sa.func.count()).where(tickets))).scalar() == 0
    acked_before = len(chat.acked)
    await asyncio.sleep(OUTAGE - (time.monotonic() - cut_at))
    assert len(chat.acked) == acked_before, "nothing acknowledged while the database was down"

    proxy.restore()
    restored_at, restored_wall = time.monotonic(), datetime.now(UTC)
    while (await http(server.url, "GET", f"/api/consultations/{cid}", patient.token))[0] != 200:
        assert time.monotonic() - restored_at < RECOVERY_BOUND, "served again within the bound"
        await asyncio.sleep(0.1)
    recovered_in = time.monotonic() - restored_at
    assert (await health(server.url))[0] == 200
    status, _, body = await http(server.url, "POST", "/api/consultations", other.token, join)
    assert status == 201, body
    ack = await doctor_ws.emit("chat:send", during)  # the client's retry, same client id
    assert ack["ok"], ack
    assert (await doctor_ws.emit("chat:send", during))["data"]["seq"] == ack["data"]["seq"]
    await clients.socket(server, other)  # a new connection is taken again

    acked_at_restore = len(chat.acked)
    while len(chat.acked) < acked_at_restore + 20:
        await asyncio.sleep(0.05)
    chat.stop.set()
    await asyncio.gather(*lanes)
    # The heartbeat and the sweeper went on by themselves, in the same process.
    deadline = time.monotonic() + 5
    while await heartbeat_at(db) <= restored_wall:
        assert time.monotonic() < deadline, "the heartbeat resumed"
        await asyncio.sleep(HEARTBEAT)
    assert server.popen.poll() is None, "the process did not stop"
    # The socket closed in the outage is recorded as closed by then (a connection left
    # recorded would count its user as connected for good).
    held = t.socket_connections.c.user_id == leaver.id
    async with db.connect() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).where(held))).scalar() == 0
    assert doctor_ws.sio.connected and patient_ws.sio.connected, "sockets lived through it"

    async with db.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(t.messages.c.client_id, t.messages.c.seq).where(
                    t.messages.c.consultation_id == cid
                )
            )
        ).all()
    stored_seqs = {client_id: seq for client_id, seq in rows}
    assert len(rows) == len(stored_seqs), "no message stored twice"
    assert stored_seqs == {**chat.acked, "during-outage": ack["data"]["seq"]}, (
        "every acknowledged message stored with the seq its ack gave, and nothing else"
    )
    assert chat.refusals > 0, "the outage was met by the chat"

    log = server.log.read_text()
    once = [
        "the database is unavailable:",
        "queue sweep failed: the database is unavailable",
        "heartbeat failed: the database is unavailable",
        "the database is available again after",
    ]
    assert {line: log.count(line) for line in once} == dict.fromkeys(once, 1), server.log_tail()
    assert "queue sweep works again" in log and "heartbeat works again" in log
    assert "Traceback" not in log, server.log_tail()
    print(
        f"\noutage {OUTAGE:.0f} s: answered within {answered_in:.2f} s of the cut; served again "
        f"{recovered_in:.2f} s after the restore; chat: {len(chat.acked)} messages acknowledged"
        f" and stored once ({chat.in_flight_at_cut} were in flight at the cut), "
        f"{chat.refusals} refusals retried, 0 lost, 0 duplicated"
    )


async def test_sqlite_locked_past_the_busy_timeout_is_answered_as_unavailable(
    sqlite_template: Path,
    tmp_path: Path,
    clock: ManualClock,
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SQLite's write lock held by another process (the CLI, a backup tool) for longer than the
    busy timeout: writes are answered 503 ``database_unavailable``, and go on once the lock is
    let go."""
    monkeypatch.setattr(inline_sqlite, "BUSY_TIMEOUT", 0.3)
    url = backends.sqlite_copy(sqlite_template, tmp_path)
    server = await aiohttp_server(create_app(settings_for(url, tmp_path), clock=clock))
    base = str(server.make_url("/")).rstrip("/")
    patient = await ApiClient(base).login("anna@demo.test")
    doctor = await ApiClient(base).login("dr.mind@demo.test")
    doctor_ws = await SocketClient().connect(base, doctor.token)
    join = {"specialty": "psychiatry", "form": "chat"}
    other = sqlite3.connect(sa.make_url(url).database or "", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        status, retry_after, body = await http(
            base, "POST", "/api/consultations", patient.token, join
        )
        assert (status, retry_after, body["error"]["code"]) == (503, "5", "database_unavailable")
        ack = await doctor_ws.emit("presence:online", ONE_AT_A_TIME)
        assert ack["error"]["code"] == "database_unavailable", ack
    finally:
        other.execute("ROLLBACK")
        other.close()
    await patient.call("POST", "/api/consultations", join, expect=201)
    assert (await doctor_ws.emit("presence:online", ONE_AT_A_TIME))["ok"]
    await doctor_ws.close()
    for client in (patient, doctor):
        await client.close()


# Heartbeats further apart than sweeps: after the outage, a process's sweep comes before the
# other's heartbeat.
NODES = {
    "CONSULT_HEARTBEAT_INTERVAL": "1",
    "CONSULT_PROCESS_DEAD_AFTER": "2.5",
    "CONSULT_SWEEP_INTERVAL": "0.1",
    "CONSULT_SLOT_DAYS": "0",
}


@postgresql_only
async def test_an_outage_longer_than_dead_after_counts_no_process_dead(
    postgres_url: str, proxy: CutProxy, db: AsyncEngine, clients: Clients, tmp_path: Path
) -> None:
    """Two processes lose the database for longer than CONSULT_PROCESS_DEAD_AFTER. Every
    heartbeat failed meanwhile, but neither process was dead: when the database is back, each
    waits dead_after before counting the other's stale heartbeat as death, and their sockets
    stay connected."""
    through_proxy = sa.make_url(postgres_url).set(port=proxy.port)
    servers = Servers(through_proxy.render_as_string(hide_password=False), tmp_path, NODES)
    try:
        nodes = [servers.start("a", demo=True), servers.start("b")]
        users = await add_users(db, "patient", 2)
        sockets = [
            await clients.socket(node, user) for node, user in zip(nodes, users, strict=True)
        ]
        proxy.cut()
        await asyncio.sleep(4.0)
        proxy.restore()
        await asyncio.sleep(4.0)  # past dead_after again, with every heartbeat beating
        for node in nodes:
            log = node.log.read_text()
            assert "is dead" not in log and "was counted dead" not in log, node.log_tail()
        assert all(ws.sio.connected for ws in sockets), "no socket was closed"
        async with db.connect() as conn:
            held = sa.select(sa.func.count()).select_from(t.socket_connections)
            assert (await conn.execute(held)).scalar() == 2
    finally:
        servers.stop_all()
