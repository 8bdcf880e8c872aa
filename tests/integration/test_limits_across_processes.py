"""Limits across processes: two real ``consult serve`` processes on one PostgreSQL database and
a Redis of the test's own (so that the last test may kill it and start it again).

- A participant whose messages, events and clinical reads are spread over both processes
  meets the one limit a single process sets (chat: the same count as the doctor sending all
  through one process), not one limit per process;
- failed logins counted on one process lock the account on the other;
- Redis killed: each process counts alone (per-process limits still apply, every answer is an
  ack or a 429, never an error), says so once in its log; Redis back: shared again.

The rates are tiny (a token per 20 s) so that the refill during a test's burst is less than a
token: the counts are exact.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from consult.shared_counters import PAUSE
from consult.storage import tables as t
from tests import backends
from tests.integration import test_two_processes as two_processes
from tests.integration.test_process_lifecycle import Servers
from tests.integration.test_two_processes import Clients, Process, User, add_users
from tests.redis_server import RedisServer
from tests.support import SocketClient

CHAT_BURST, EVENT_BURST, READ_BURST, FREE_LOGINS = 8, 10, 6, 3
SLOW = "0.05"  # a token every 20 s
SETTINGS = {
    "CONSULT_CHAT_RATE": SLOW,
    "CONSULT_CHAT_BURST": str(CHAT_BURST),
    "CONSULT_EVENT_RATE": SLOW,
    "CONSULT_EVENT_BURST": str(EVENT_BURST),
    "CONSULT_READ_RATE": SLOW,
    "CONSULT_READ_BURST": str(READ_BURST),
    "CONSULT_LOGIN_FREE_ATTEMPTS": str(FREE_LOGINS),
    "CONSULT_LOGIN_DELAY": "30",  # locked for the rest of the test
    "CONSULT_SLOT_DAYS": "0",
    "CONSULT_REDIS_CHANNEL": "limits-test",
}
# The limits' own warning (the Socket.IO bus warns of its lost pushes in another line).
UNREACHABLE = "limits are counted in this process alone"

# Fixtures: an empty PostgreSQL database of this module's own; clients closed after each test.
empty_database, clients = two_processes.empty_database, two_processes.clients

# Several processes run on PostgreSQL (the production set-up), as in test_two_processes.
pytestmark = pytest.mark.skipif(
    "postgresql" not in backends.BACKENDS, reason="PostgreSQL not selected"
)


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.kill()


@pytest.fixture(scope="module")
def nodes(
    empty_database: str,
    own_redis: RedisServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Process, Process]]:
    settings = {**SETTINGS, "CONSULT_REDIS_URL": own_redis.url}
    servers = Servers(empty_database, tmp_path_factory.mktemp("nodes"), settings)
    try:
        a = servers.start("a", demo=True)  # migrates and seeds the demo accounts
        yield a, servers.start("b")
    finally:
        servers.stop_all()


@pytest.fixture
async def db(empty_database: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(empty_database)
    yield engine
    await engine.dispose()


async def consulting(
    db: AsyncEngine, clients: Clients, nodes: tuple[Process, Process]
) -> tuple[User, SocketClient, list[SocketClient], int]:
    """A doctor (socket on A) consulting a patient who has a socket on each process."""
    a, b = nodes
    (doctor,) = await add_users(db, "doctor", 1, "psychiatry")
    (patient,) = await add_users(db, "patient", 1)
    doctor_ws = await clients.socket(a, doctor)
    online = {"specialties": ["psychiatry"], "forms": ["chat"]}
    assert (await doctor_ws.emit("presence:online", online))["ok"]
    ticket = await clients.api(b, patient).call(
        "POST", "/api/consultations", {"specialty": "psychiatry", "form": "chat"}, expect=201
    )
    cid = ticket["consultation"]["id"]
    await doctor_ws.until("queue:offer", lambda o: o["consultation"]["id"] == cid, 10)
    assert (await doctor_ws.emit("queue:accept", {"consultation_id": cid}))["ok"]
    patient_ws = [await clients.socket(a, patient), await clients.socket(b, patient)]
    return patient, doctor_ws, patient_ws, cid


async def send_all(sockets: list[SocketClient], cid: int, count: int, tag: str) -> list[Any]:
    """``count`` messages, one after the other, each through the next socket in turn."""
    acks = []
    for i in range(count):
        message = {"consultation_id": cid, "client_id": f"{tag}-{i}", "body": f"{tag} {i}"}
        acks.append(await sockets[i % len(sockets)].emit("chat:send", message))
    return acks


def accepted(acks: list[Any]) -> int:
    refused = [a for a in acks if not a["ok"]]
    assert all(a["error"]["code"] == "rate_limited" for a in refused), refused
    assert all(a["error"]["retry_after"] > 0 for a in refused), refused
    return len(acks) - len(refused)


async def stored(db: AsyncEngine, cid: int, sender: int) -> int:
    m = t.messages.c
    async with db.connect() as conn:
        query = sa.select(sa.func.count()).where(m.consultation_id == cid, m.sender_id == sender)
        return int((await conn.execute(query)).scalar_one())


async def test_messages_events_and_reads_spread_over_two_processes_meet_one_limit(
    nodes: tuple[Process, Process], db: AsyncEngine, clients: Clients
) -> None:
    a, b = nodes
    patient, doctor_ws, patient_ws, cid = await consulting(db, clients, nodes)

    # The patient alternates between A and B: one budget, the one a single process gives.
    spread = await send_all(patient_ws, cid, 2 * CHAT_BURST, "spread")
    assert accepted(spread) == CHAT_BURST, spread
    assert [a["ok"] for a in spread[:CHAT_BURST]] == [True] * CHAT_BURST  # then refused
    # The doctor, all through A: the same count.
    alone = await send_all([doctor_ws], cid, 2 * CHAT_BURST, "alone")
    assert accepted(alone) == CHAT_BURST
    assert await stored(db, cid, patient.id) == CHAT_BURST

    # Events (chat:read counts against the events' budget), alternating.
    reads = [
        await patient_ws[i % 2].emit("chat:read", {"consultation_id": cid, "seq": 1})
        for i in range(2 * EVENT_BURST)
    ]
    assert accepted(reads) == EVENT_BURST

    # Clinical reads over HTTP, alternating: 200 up to the burst, then 429 with Retry-After.
    answers = []
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {patient.token}"}) as s:
        for i in range(2 * READ_BURST):
            node = nodes[i % 2]
            async with s.get(f"{node.url}/api/consultations/{cid}/messages") as response:
                body = await response.json()
                answers.append((response.status, response.headers.get("Retry-After"), body))
    assert [status for status, _, _ in answers] == [200] * READ_BURST + [429] * READ_BURST
    assert all(retry and int(retry) > 0 for _, retry, _ in answers[READ_BURST:])
    assert {body["error"]["code"] for _, _, body in answers[READ_BURST:]} == {"rate_limited"}
    del a, b


async def login(node: Process, email: str, password: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as s,
        s.post(f"{node.url}/api/login", json={"email": email, "password": password}) as r,
    ):
        return r.status, (await r.json()).get("error", {}).get("code", "")


async def test_failed_logins_on_one_process_lock_the_account_on_the_other(
    nodes: tuple[Process, Process],
) -> None:
    a, b = nodes
    email = "dr.mind@demo.test"
    # The free failures, spread over both processes: the last of them locks the account.
    for node in [a, b, a][:FREE_LOGINS]:
        assert await login(node, email, "wrong password") == (401, "bad_credentials")
    assert await login(b, email, "wrong password") == (429, "too_many_attempts")
    assert await login(b, email, "demo1234") == (429, "too_many_attempts")  # locked is locked
    assert await login(a, email, "demo1234") == (429, "too_many_attempts")
    # Another account is not locked.
    assert (await login(b, "dr.skin@demo.test", "demo1234"))[0] == 200


def log_lines(node: Process, text: str) -> list[str]:
    return [line for line in node.log.read_text(errors="replace").splitlines() if text in line]


async def test_with_redis_down_each_process_counts_alone_and_shares_again_once_it_is_back(
    nodes: tuple[Process, Process], own_redis: RedisServer, db: AsyncEngine, clients: Clients
) -> None:
    a, b = nodes
    patient, _, patient_ws, cid = await consulting(db, clients, nodes)  # set up while Redis runs
    assert not log_lines(a, UNREACHABLE) and not log_lines(b, UNREACHABLE)

    own_redis.kill()
    started = time.monotonic()
    # Alternating: each process gives its own budget, so twice the shared one goes through;
    # then each refuses: the per-process limit still applies.
    spread = await send_all(patient_ws, cid, 2 * CHAT_BURST, "down")
    assert accepted(spread) == 2 * CHAT_BURST, spread
    assert accepted(await send_all(patient_ws, cid, 2, "over")) == 0
    assert await stored(db, cid, patient.id) == 2 * CHAT_BURST
    took = time.monotonic() - started
    assert took < 10, f"{2 * CHAT_BURST + 2} messages took {took:.1f} s with Redis down"
    # Said once per process, not once per message.
    assert len(log_lines(a, UNREACHABLE)) == len(log_lines(b, UNREACHABLE)) == 1

    own_redis.start()  # empty: what was counted before is gone, as after a crash
    await asyncio.sleep(PAUSE + 0.5)  # each process leaves Redis alone that long after a failure
    reads = [
        await patient_ws[i % 2].emit("chat:read", {"consultation_id": cid, "seq": 1})
        for i in range(2 * EVENT_BURST)
    ]
    assert accepted(reads) == EVENT_BURST  # one budget again
    for node in nodes:
        assert log_lines(node, "Redis answers again"), node.log_tail()


@pytest.fixture(autouse=True)
def no_tracebacks(request: pytest.FixtureRequest) -> Iterator[None]:
    """No process logged a traceback meanwhile (a limit that failed with Redis would)."""
    if "nodes" not in request.fixturenames:
        yield
        return
    nodes: tuple[Process, Process] = request.getfixturevalue("nodes")
    seen = {p.log: p.log.stat().st_size for p in nodes}
    yield
    for log, offset in seen.items():
        text = log.read_bytes()[offset:].decode(errors="replace")
        assert "Traceback" not in text, text[-3000:]
