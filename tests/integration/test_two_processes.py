"""Two real ``consult serve`` processes on one PostgreSQL database and one Redis.

The processes start together on an empty database (one migrates, the other waits on the
advisory lock; the first also seeds the demo data). The tests then check what only several
processes can show:

- a patient connected to process A joins, and the doctor connected to process B gets the offer
  (committed by A, delivered by B through Redis), accepts it, and chat messages cross both ways;
- exactly once: 20 patients wait, 10 doctors split across both processes go online at the same
  instant, accept, and all end at the same instant: every ticket is offered once, each doctor
  holds at most one patient, in order, as the database and the received events both show;
- process A is killed: every waiting patient keeps their place as process B tells it, and a new
  process A' serves the queue in that order;
- lock order: two service stacks (two pools, as two processes) interleaved at the point where
  a join used to deadlock with a doctor going away or an offer lapsing.

PostgreSQL (``CONSULT_TEST_POSTGRES_URL``) and Redis (``CONSULT_TEST_REDIS_URL``) must be
reachable: the test fails rather than skips without them. Redis pub/sub is not scoped by the
database number, so the test's users get random, large ids: Socket.IO rooms are per user, and
another run's processes on the same Redis never hold sockets in them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import secrets
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from consult.accounts.service import token_hash
from consult.bundle import Services
from consult.clock import ManualClock
from consult.queue.matcher import Matcher
from consult.schemas import PresenceIn, StartConsultationIn
from consult.storage import tables as t
from tests import backends
from tests.queue_model import A, B, actor, build_services, seed
from tests.support import ApiClient, SocketClient, consult_command, free_port

REPO = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("CONSULT_TEST_REDIS_URL", "redis://127.0.0.1:6379/7")
START_TIMEOUT = 30.0
EVENT_TIMEOUT = 10.0  # generous: two processes, Redis and PostgreSQL share two cores here

pytestmark = pytest.mark.skipif(
    "postgresql" not in backends.BACKENDS, reason="PostgreSQL not selected"
)


# --- processes ---------------------------------------------------------------------------------


@dataclass
class Process:
    name: str
    url: str
    log: Path
    popen: subprocess.Popen[bytes]

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Cluster:
    """``consult serve`` processes by name, all on one database and one Redis."""

    database_url: str
    redis_url: str
    directory: Path
    processes: dict[str, Process] = field(default_factory=dict)
    # More CONSULT_* settings for every process (test_call_nodes.py: media address, leases).
    settings: dict[str, str] = field(default_factory=dict)

    def start(self, *names: str, demo: str | None = None) -> None:
        """Start these processes at once and wait until each is healthy."""
        for name in names:
            port = free_port()
            log = self.directory / f"{name}-{port}.log"
            # Only this test's settings: nothing from the environment's CONSULT_* variables.
            env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULT_")}
            env["PYTHONUNBUFFERED"] = "1"
            # This run's own pub/sub channel: other runs on the same Redis are not heard.
            env["CONSULT_REDIS_CHANNEL"] = f"consult-test-{self.database_url.rsplit('/', 1)[-1]}"
            env.update(self.settings)
            command = [
                *consult_command(),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--database-url",
                self.database_url,
                "--redis-url",
                self.redis_url,
                *(["--demo"] if name == demo else []),
            ]
            with log.open("wb") as out:
                popen = subprocess.Popen(
                    command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
                )
            self.processes[name] = Process(name, f"http://127.0.0.1:{port}", log, popen)
        for name in names:
            _wait_healthy(self.processes[name])

    def __getitem__(self, name: str) -> Process:
        return self.processes[name]

    def kill(self, name: str) -> None:
        """SIGKILL: no shutdown hook runs, as when a machine dies."""
        process = self.processes.pop(name)
        process.popen.send_signal(signal.SIGKILL)
        process.popen.wait(timeout=10)

    def stop(self) -> None:
        for process in self.processes.values():
            process.popen.terminate()
        for process in self.processes.values():
            try:
                process.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.popen.kill()
                process.popen.wait()
        self.processes.clear()


def _wait_healthy(process: Process) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            pytest.fail(
                f"process {process.name} exited with {process.popen.returncode} before it was "
                f"healthy:\n{process.log_tail()}"
            )
        try:
            with urllib.request.urlopen(process.url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    tail = process.log_tail()
    pytest.fail(f"process {process.name} not healthy after {START_TIMEOUT:.0f} s:\n{tail}")


async def _check_redis(url: str) -> None:
    client = aioredis.from_url(url, socket_connect_timeout=3)
    try:
        await client.ping()
    finally:
        await client.aclose()


@pytest.fixture(scope="module")
def empty_database() -> Iterator[str]:
    """A fresh, empty (not migrated) PostgreSQL database; dropped afterwards."""
    name = f"consult_2p_{uuid.uuid4().hex[:10]}"
    admin = sa.make_url(backends.PG_ADMIN_URL)

    async def admin_sql(sql: str) -> None:
        engine = create_async_engine(admin, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(sa.text(sql))
        finally:
            await engine.dispose()

    try:
        backends.off_loop(asyncio.run, admin_sql(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # CI has PostgreSQL: its absence is a failure, not a skip
        pytest.fail(f"PostgreSQL at {admin.render_as_string()} is not usable: {exc!r}")
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        backends.off_loop(asyncio.run, admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module")
def cluster(empty_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    try:
        backends.off_loop(asyncio.run, _check_redis(REDIS_URL))
    except Exception as exc:  # CI has Redis: its absence is a failure, not a skip
        pytest.fail(f"Redis at {REDIS_URL} is not reachable: {exc!r}")
    cluster = Cluster(empty_database, REDIS_URL, tmp_path_factory.mktemp("two-processes"))
    try:
        # Both migrate at start, at once (the advisory lock makes one wait); A seeds demo data.
        cluster.start("a", "b", demo="a")
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(autouse=True)
def no_server_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test on the cluster: no process logged an error or a traceback meanwhile
    (a failed sweep, fan-out or emit is only ever logged)."""
    if "cluster" not in request.fixturenames:
        yield
        return
    cluster: Cluster = request.getfixturevalue("cluster")
    seen = {p.log: p.log.stat().st_size for p in cluster.processes.values()}
    yield
    for process in cluster.processes.values():
        seen.setdefault(process.log, 0)
    problems = []
    for log, offset in seen.items():
        with log.open("rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
        lines = [line for line in text.splitlines() if " ERROR " in line or "Traceback" in line]
        if lines:
            problems.append(f"{log.name}:\n" + "\n".join(lines[:10]))
    assert not problems, "the servers logged errors:\n" + "\n".join(problems)


@pytest.fixture
async def db(cluster: Cluster) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(cluster.database_url)
    yield engine
    await engine.dispose()


# --- users and clients -------------------------------------------------------------------------

# Large random ids: rooms are ``user:<id>``, and Redis pub/sub is shared by every run using it.
_next_id = random.randrange(10**8, 2 * 10**9, 10**5)


@dataclass(frozen=True)
class User:
    id: int
    token: str


async def add_users(
    db: AsyncEngine, role: str, count: int, specialty: str | None = None
) -> list[User]:
    """Verified users with ready sessions, inserted directly (argon2 logins would be slow)."""
    global _next_id
    now = datetime.now(UTC)
    users = []
    async with db.begin() as conn:
        for _ in range(count):
            _next_id += 1
            uid = _next_id
            await conn.execute(
                t.users.insert().values(
                    id=uid,
                    email=f"{role}{uid}@two-processes.test",
                    password_hash="x",
                    role=role,
                    identity="verified",
                    name=f"{role} {uid}",
                    plan_code="premium" if role == "patient" else None,
                    created_at=now,
                )
            )
            if specialty is not None:
                await conn.execute(
                    t.doctor_specialties.insert().values(doctor_id=uid, specialty_code=specialty)
                )
            token = secrets.token_urlsafe(16)
            await conn.execute(
                t.sessions.insert().values(
                    token_hash=token_hash(token),
                    user_id=uid,
                    created_at=now,
                    expires_at=now + timedelta(hours=1),
                )
            )
            users.append(User(uid, token))
    return users


class Clients:
    """HTTP and Socket.IO clients, closed at the end of the test."""

    def __init__(self) -> None:
        self.made: list[ApiClient | SocketClient] = []

    def api(self, process: Process, user: User) -> ApiClient:
        client = ApiClient(process.url)
        client.token = user.token
        self.made.append(client)
        return client

    async def socket(self, process: Process, user: User) -> SocketClient:
        client = SocketClient()
        self.made.append(client)
        return await client.connect(process.url, user.token)

    async def close(self) -> None:
        for client in self.made:
            if isinstance(client, SocketClient):
                if client.sio.connected:
                    await client.close()
            else:
                await client.close()


@pytest.fixture
async def clients() -> AsyncIterator[Clients]:
    made = Clients()
    yield made
    await made.close()


async def rows(db: AsyncEngine, specialty: str) -> list[Any]:
    c = t.consultations.c
    async with db.connect() as conn:
        return list(
            await conn.execute(
                sa.select(c.id, c.patient_id, c.doctor_id, c.status, c.rank_at)
                .where(c.specialty_code == specialty)
                .order_by(c.rank_at, c.id)
            )
        )


async def settled(db: AsyncEngine, specialty: str, predicate: Any, timeout: float = 10) -> list:
    """The consultation rows of a specialty once ``predicate(rows)`` holds."""
    deadline = time.monotonic() + timeout
    while True:
        found = await rows(db, specialty)
        if predicate(found) or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.05)


def no_doctor_over_capacity(found: list[Any], capacity: int = 1) -> None:
    load: dict[int, int] = {}
    for r in found:
        if r.status in ("offered", "active"):
            load[r.doctor_id] = load.get(r.doctor_id, 0) + 1
    assert all(n <= capacity for n in load.values()), load


# --- (a) one match and a chat across processes -------------------------------------------------


async def test_an_offer_a_match_and_a_chat_cross_processes(
    cluster: Cluster, db: AsyncEngine, clients: Clients
) -> None:
    a, b = cluster["a"], cluster["b"]
    (patient,) = await add_users(db, "patient", 1)
    (doctor,) = await add_users(db, "doctor", 1, "psychiatry")
    patient_ws = await clients.socket(a, patient)
    doctor_ws = await clients.socket(b, doctor)
    online = {"specialties": ["psychiatry"], "forms": ["chat"]}
    assert (await doctor_ws.emit("presence:online", online))["ok"]

    # Committed by A; the offer reaches the doctor's socket, held by B, through Redis.
    ticket = await clients.api(a, patient).call(
        "POST", "/api/consultations", {"specialty": "psychiatry", "form": "chat"}, expect=201
    )
    cid = ticket["consultation"]["id"]
    offer = await doctor_ws.next("queue:offer", EVENT_TIMEOUT)
    assert offer["consultation"]["id"] == cid
    assert offer["consultation"]["patient"]["id"] == patient.id

    # Accepted on B; the patient's socket on A is told.
    accepted = await doctor_ws.emit("queue:accept", {"consultation_id": cid})
    assert accepted["ok"] and accepted["data"]["status"] == "active", accepted
    matched = await patient_ws.until(
        "consultation:matched", lambda m: m["consultation"]["id"] == cid, EVENT_TIMEOUT
    )
    assert matched["consultation"]["doctor"]["id"] == doctor.id

    # Chat both ways: each message is acked by the sender's process, delivered by the other.
    sent = await patient_ws.emit(
        "chat:send", {"consultation_id": cid, "client_id": "p-1", "body": "hello from A"}
    )
    assert sent["ok"] and sent["data"]["seq"] == 1, sent
    got = await doctor_ws.until(
        "chat:message", lambda m: m["message"]["client_id"] == "p-1", EVENT_TIMEOUT
    )
    assert got["message"]["body"] == "hello from A" and got["message"]["sender_id"] == patient.id
    reply = await doctor_ws.emit(
        "chat:send", {"consultation_id": cid, "client_id": "d-1", "body": "hello from B"}
    )
    assert reply["ok"] and reply["data"]["seq"] == 2, reply
    got = await patient_ws.until(
        "chat:message", lambda m: m["message"]["client_id"] == "d-1", EVENT_TIMEOUT
    )
    assert got["message"]["body"] == "hello from B" and got["message"]["seq"] == 2

    # The end, committed on A, reaches the doctor on B.
    ended = await clients.api(a, patient).call("POST", f"/api/consultations/{cid}/end", {})
    assert ended["status"] == "ended"
    await doctor_ws.until(
        "consultation:ended", lambda m: m["consultation"]["id"] == cid, EVENT_TIMEOUT
    )
    assert doctor_ws.pending("queue:offer") == 0  # offered once


# --- (b) exactly once under concurrency --------------------------------------------------------

PATIENTS, DOCTORS = 20, 10
IM = "internal-medicine"


async def test_exactly_once_with_doctors_freeing_at_the_same_instant_on_both_processes(
    cluster: Cluster, db: AsyncEngine, clients: Clients
) -> None:
    processes = [cluster["a"], cluster["b"]]
    patients = await add_users(db, "patient", PATIENTS)
    doctors = await add_users(db, "doctor", DOCTORS, IM)
    patient_ws = [await clients.socket(processes[i % 2], p) for i, p in enumerate(patients)]
    doctor_ws = [await clients.socket(processes[i % 2], d) for i, d in enumerate(doctors)]
    by_doctor = {d.id: ws for d, ws in zip(doctors, doctor_ws, strict=True)}

    # Twenty patients join at once, on both processes; nobody serves internal medicine yet.
    await asyncio.gather(
        *(
            clients.api(processes[i % 2], p).call(
                "POST", "/api/consultations", {"specialty": IM, "form": "chat"}, expect=201
            )
            for i, p in enumerate(patients)
        )
    )
    queue = await rows(db, IM)
    assert [r.status for r in queue] == ["waiting"] * PATIENTS
    first, second = queue[:DOCTORS], queue[DOCTORS:]

    # Ten doctors go online at the same instant, five on each process.
    online = {"specialties": [IM], "forms": ["chat"]}
    acks = await asyncio.gather(*(ws.emit("presence:online", online) for ws in doctor_ws))
    assert all(a["ok"] for a in acks), acks
    found = await rows(db, IM)
    offered = {r.id: r.doctor_id for r in found if r.status == "offered"}
    # The ten who waited longest, one per doctor.
    assert sorted(offered) == sorted(r.id for r in first), (offered, [r.id for r in first])
    assert sorted(offered.values()) == sorted(d.id for d in doctors)
    no_doctor_over_capacity(found)
    round_one = {d: (await ws.next("queue:offer", EVENT_TIMEOUT)) for d, ws in by_doctor.items()}
    assert {d: o["consultation"]["id"] for d, o in round_one.items()} == {
        d: cid for cid, d in offered.items()
    }

    accepted = await asyncio.gather(
        *(by_doctor[d].emit("queue:accept", {"consultation_id": cid}) for cid, d in offered.items())
    )
    assert all(a["ok"] for a in accepted), accepted
    matched_patients = {r.patient_id for r in first}
    for p, ws in zip(patients, patient_ws, strict=True):
        if p.id in matched_patients:
            await ws.until(
                "consultation:matched",
                lambda m, p=p: m["consultation"]["patient"]["id"] == p.id,
                EVENT_TIMEOUT,
            )

    # Every doctor ends at the same instant, each on their own process: each is re-matched at
    # once (under row locks, from two processes), with the next ten in order.
    ends = await asyncio.gather(
        *(
            clients.api(processes[i % 2], d).call("POST", f"/api/consultations/{cid}/end", {})
            for i, d in enumerate(doctors)
            for cid, doctor_id in offered.items()
            if doctor_id == d.id
        )
    )
    assert [e["status"] for e in ends] == ["ended"] * DOCTORS
    found = await settled(
        db, IM, lambda rs: sum(r.status == "offered" for r in rs) == DOCTORS, EVENT_TIMEOUT
    )
    statuses = {r.id: r.status for r in found}
    assert all(statuses[r.id] == "ended" for r in first), statuses
    again = {r.id: r.doctor_id for r in found if r.status == "offered"}
    assert sorted(again) == sorted(r.id for r in second)
    assert sorted(again.values()) == sorted(d.id for d in doctors)
    no_doctor_over_capacity(found)
    round_two = {d: (await ws.next("queue:offer", EVENT_TIMEOUT)) for d, ws in by_doctor.items()}
    assert {d: o["consultation"]["id"] for d, o in round_two.items()} == {
        d: cid for cid, d in again.items()
    }

    # Quiet for two sweeps of each process: no offer is repeated, nothing moves.
    await asyncio.sleep(2.5)
    assert {d: ws.pending("queue:offer") for d, ws in by_doctor.items()} == dict.fromkeys(
        by_doctor, 0
    )
    assert await rows(db, IM) == found
    every_offer = [o["consultation"]["id"] for o in [*round_one.values(), *round_two.values()]]
    assert len(every_offer) == len(set(every_offer)) == PATIENTS  # each ticket offered once
    # Each first-round patient was told of their match once (consumed above), nobody else.
    assert [ws.pending("consultation:matched") for ws in patient_ws] == [0] * PATIENTS

    # Leave a quiet database: the second round's patients leave the queue.
    await asyncio.gather(
        *(
            clients.api(processes[0], p).call("POST", f"/api/consultations/{r.id}/end", {})
            for r in second
            for p in patients
            if p.id == r.patient_id
        )
    )


# --- (c) a process dies; the queue does not ----------------------------------------------------

SKIN = "dermatology"


async def test_the_queue_survives_a_killed_process_and_a_new_one_serves_it(
    cluster: Cluster, db: AsyncEngine, clients: Clients
) -> None:
    patients = await add_users(db, "patient", 5)
    (doctor,) = await add_users(db, "doctor", 1, SKIN)
    b = cluster["b"]
    patient_ws = [await clients.socket(b, p) for p in patients]
    for i, p in enumerate(patients):  # joined one after the other, half through A
        process = cluster["a"] if i % 2 else b
        await clients.api(process, p).call(
            "POST", "/api/consultations", {"specialty": SKIN, "form": "chat"}, expect=201
        )

    async def places(process: Process, who: list[User]) -> list[int]:
        return [
            (await clients.api(process, p).call("GET", "/api/queue/ticket"))["place"] for p in who
        ]

    assert await places(b, patients) == [1, 2, 3, 4, 5]
    before = await rows(db, SKIN)

    cluster.kill("a")
    assert await places(b, patients) == [1, 2, 3, 4, 5]
    assert await rows(db, SKIN) == before

    cluster.start("a2")  # a new process on the same database and Redis
    a2 = cluster["a2"]
    assert await places(a2, patients) == [1, 2, 3, 4, 5]
    doctor_ws = await clients.socket(a2, doctor)
    assert (await doctor_ws.emit("presence:online", {"specialties": [SKIN], "forms": ["chat"]}))[
        "ok"
    ]
    offer = await doctor_ws.next("queue:offer", EVENT_TIMEOUT)
    assert offer["consultation"]["patient"]["id"] == patients[0].id  # the longest waiting
    cid = offer["consultation"]["id"]
    assert (await doctor_ws.emit("queue:accept", {"consultation_id": cid}))["ok"]
    # Accepted on A'; the patient's socket on B is told through Redis.
    await patient_ws[0].until(
        "consultation:matched", lambda m: m["consultation"]["id"] == cid, EVENT_TIMEOUT
    )
    assert await places(a2, patients[1:]) == [1, 2, 3, 4]
    assert await places(b, patients[1:]) == [1, 2, 3, 4]


# --- lock order on PostgreSQL ------------------------------------------------------------------

DERMATOLOGY_CHATS = PresenceIn(specialties=[B], forms=["chat"])  # type: ignore[list-item]
INTERNAL_MEDICINE_CHATS = PresenceIn(specialties=[A], forms=["chat"])  # type: ignore[list-item]


@pytest.mark.parametrize("cause", ["a doctor goes away", "an offer lapses"])
async def test_a_join_does_not_deadlock_with_a_doctor_leaving_or_an_offer_lapsing(
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    cause: str,
) -> None:
    """A doctor with pending offers going away, or the sweeper sending away a doctor whose
    offer lapsed, changes one presence row and then matches (locking the online doctors' rows);
    a join on another process locks those rows in doctor id order. Both complete, and without
    a deadlock: every transaction takes the presence rows in one order (none is retried)."""
    caplog.set_level(logging.WARNING, logger="consult.storage.retry")
    await backends.truncate_postgres(postgres_url)
    clock = ManualClock()
    engine = create_async_engine(postgres_url)
    await seed(engine, clock.now())
    first, second = build_services(postgres_url, clock), build_services(postgres_url, clock)
    try:
        # Doctors 202 and 203 take dermatology chats; each is offered a patient.
        for doctor in (202, 203):
            await first.presence.go_online(actor(doctor), DERMATOLOGY_CHATS)
        for patient in (101, 102):
            await first.consultations.start(
                actor(patient), StartConsultationIn(specialty=B, form="chat")
            )
        # 201 is free for the joining patient: a join only locks the presence rows when
        # someone may take the ticket (matcher.py).
        await first.presence.go_online(actor(201), INTERNAL_MEDICINE_CHATS)
        paused = pause_before_locking_presence(monkeypatch, first)
        if cause == "a doctor goes away":  # 203 hands back their offer, then re-matches it
            leaving = asyncio.create_task(first.presence.go_away(actor(203)))
        else:  # 203's offer lapses: the sweeper sends 203 away, then matches everyone
            offered_to_202 = (await first.consultations.open_for(actor(202)))[0].id
            await first.consultations.accept(actor(202), offered_to_202)
            clock.advance(21)
            leaving = asyncio.create_task(first.sweeper.sweep())
        await paused.inside.wait()  # 203's presence row is updated, no other lock taken yet
        # Meanwhile, on the other process, a patient joins: it locks 201's and 202's rows, waits
        # for 203's.
        join = asyncio.create_task(
            second.consultations.start(actor(103), StartConsultationIn(specialty=A, form="chat"))
        )
        assert await waiting_on_a_lock(engine), "the join took no lock: the scenario is gone"
        paused.go.set()
        results = await asyncio.gather(leaving, join, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        # No retried deadlock (a slow-statement WARNING of a loaded machine is no concern here).
        retried = [r.getMessage() for r in caplog.records if r.name == "consult.storage.retry"]
        assert not retried, retried
    finally:
        for services in (first, second):
            await services.db.dispose()
        await engine.dispose()


@dataclass
class Pause:
    inside: asyncio.Event = field(default_factory=asyncio.Event)
    go: asyncio.Event = field(default_factory=asyncio.Event)


def pause_before_locking_presence(monkeypatch: pytest.MonkeyPatch, services: Services) -> Pause:
    """Hold ``services``' next ``Matcher.doctor_slots`` (which reads or locks the presence rows)
    until ``go`` is set: a scheduling delay at a chosen point, nothing else changed."""
    pause = Pause()
    matcher = services.sweeper._matcher  # one Matcher per Services
    original = Matcher.doctor_slots

    async def doctor_slots(
        self: Matcher, uow: Any, doctor_id: int | None = None, *, lock: bool = True
    ) -> Any:
        if self is matcher and not pause.go.is_set():
            pause.inside.set()
            await pause.go.wait()
        return await original(self, uow, doctor_id, lock=lock)

    monkeypatch.setattr(Matcher, "doctor_slots", doctor_slots)
    return pause


async def waiting_on_a_lock(engine: AsyncEngine, timeout: float = 5) -> bool:
    """Until a session of this database waits on a row lock (True), or ``timeout`` (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with engine.connect() as conn:
            waiting = (
                await conn.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    )
                )
            ).scalar()
        if waiting:
            return True
        await asyncio.sleep(0.01)
    return False
