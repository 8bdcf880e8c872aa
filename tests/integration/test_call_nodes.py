"""Calls across nodes: two real ``consult serve`` processes on one PostgreSQL and one Redis.

The patient's socket is on node A, the doctor's on node B, so each side's offer reaches a
different node; the pages are aiortc client peers over real UDP on loopback (each node's
peers gather on ``CONSULT_MEDIA_ADDRESS=127.0.0.1``). Each client sends numbered pictures with
a grey level of its own, so a test sees pictures arriving from the *other* side.

- media both ways, the doctor's offer forwarded by B to A (the owner: A holds the room, B none,
  as /metrics shows); ``call:state`` and ``call:quality`` from A reach the doctor on B;
- a switch to video requested on A is seen and consented on B; consents given on both nodes
  start the recording on the owner; a hang-up on B closes A's room;
- the owner frozen (SIGSTOP): an offer through B is refused ``call_owner_unavailable`` after
  the forward timeout, the call moves to B once A's lease lapses, and A, resumed, drops its
  stale room by itself;
- the owner killed (SIGKILL): both pages see their media stop, re-offer through B (the
  patient's socket reconnects there, as through a load balancer), B takes the call over at
  once (no one listens on A's channel) and pictures flow both ways again: the time from the
  kill is measured and must stay under 10 s.

The clients re-offer as web/common/call.js does (tests/call_pages.py): when pictures stop for
``STALL`` seconds, a new peer and a new offer, again after ``RETRY`` seconds while refused.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from consult.storage import tables as t
from tests import backends
from tests.call_pages import STALL, Page, calls_held, pictures_both_ways
from tests.integration.test_two_processes import (
    REDIS_URL,
    Clients,
    Cluster,
    Process,
    User,
    _check_redis,
    add_users,
    no_server_errors,  # noqa: F401  (autouse: no node logs an error during a test)
)
from tests.support import SocketClient, loopback_only, wait_for

log = logging.getLogger(__name__)

pytestmark = pytest.mark.skipif(
    "postgresql" not in backends.BACKENDS, reason="PostgreSQL not selected"
)

EVENT_TIMEOUT = 10.0
LEASE, FORWARD_TIMEOUT = 3.0, 2.0
IM = "internal-medicine"


@pytest.fixture(autouse=True)
def _loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    loopback_only(monkeypatch)  # the clients' peers; the nodes use CONSULT_MEDIA_ADDRESS


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    try:
        backends.off_loop(asyncio.run, _check_redis(REDIS_URL))
    except Exception as exc:  # CI has Redis: its absence is a failure, not a skip
        pytest.fail(f"Redis at {REDIS_URL} is not reachable: {exc!r}")
    settings = {
        "CONSULT_MEDIA_ADDRESS": "127.0.0.1",
        "CONSULT_CALL_LEASE": str(LEASE),
        "CONSULT_CALL_FORWARD_TIMEOUT": str(FORWARD_TIMEOUT),
    }
    for database_url in backends.postgres_database():  # this module's own
        cluster = Cluster(
            database_url, REDIS_URL, tmp_path_factory.mktemp("call-nodes"), settings=settings
        )
        try:
            cluster.start("a", "b", demo="a")
            yield cluster
        finally:
            cluster.stop()


@pytest.fixture
async def db(cluster: Cluster) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(cluster.database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def clients() -> AsyncIterator[Clients]:
    made = Clients()
    yield made
    await made.close()


@pytest.fixture
async def pages() -> AsyncIterator[list[Page]]:
    made: list[Page] = []
    yield made
    for page in made:
        await page.close()


async def video_call(
    db: AsyncEngine,
    clients: Clients,
    specialty: str,
    patient_on: Process,
    doctor_on: Process,
    form: str = "video",
) -> tuple[User, SocketClient, User, SocketClient, int]:
    """A patient (socket on ``patient_on``) matched with a doctor (socket on ``doctor_on``)."""
    (patient,) = await add_users(db, "patient", 1)
    (doctor,) = await add_users(db, "doctor", 1, specialty)
    patient_ws = await clients.socket(patient_on, patient)
    doctor_ws = await clients.socket(doctor_on, doctor)
    online = {"specialties": [specialty], "forms": ["chat", "voice", "video"]}
    assert (await doctor_ws.emit("presence:online", online))["ok"]
    ticket = await clients.api(patient_on, patient).call(
        "POST", "/api/consultations", {"specialty": specialty, "form": form}, expect=201
    )
    cid = int(ticket["consultation"]["id"])
    await doctor_ws.until("queue:offer", lambda o: o["consultation"]["id"] == cid, EVENT_TIMEOUT)
    assert (await doctor_ws.emit("queue:accept", {"consultation_id": cid}))["ok"]
    return patient, patient_ws, doctor, doctor_ws, cid


def candidates(sdp: str) -> set[str]:
    return {line.split()[4] for line in sdp.splitlines() if line.startswith("a=candidate:")}


# --- the tests ---------------------------------------------------------------------------------


async def test_each_side_offers_through_its_own_node_and_media_flows_both_ways(
    cluster: Cluster, db: AsyncEngine, clients: Clients, pages: list[Page]
) -> None:
    a, b = cluster["a"], cluster["b"]
    patient, patient_ws, doctor, doctor_ws, cid = await video_call(db, clients, "cardiology", a, b)
    patient_page, doctor_page = Page("patient", patient_ws, cid), Page("doctor", doctor_ws, cid)
    pages += [patient_page, doctor_page]

    started = time.monotonic()
    assert (await patient_page.join())["ok"]  # A: the first offer claims the call
    assert (await doctor_page.join())["ok"]  # B: forwarded to A, A's answer returned
    # Both answers are A's: its candidates, on its media address.
    assert candidates(patient_page.sdp) == candidates(doctor_page.sdp) != set()
    assert {c.split()[0] for c in candidates(doctor_page.sdp)} <= {"127.0.0.1"}
    await pictures_both_ways(patient_page, doctor_page, started, "pictures both ways")
    log.info("media both ways %.1f s after the first offer", time.monotonic() - started)
    assert calls_held(a) == 1 and calls_held(b) == 0

    # A's media states reach the doctor's socket on B through Redis, and so does the quality.
    for user in (patient.id, doctor.id):
        await doctor_ws.until(
            "call:state",
            lambda s, u=user: s["user_id"] == u and s["state"] == "connected",
            EVENT_TIMEOUT,
        )
    quality = await doctor_ws.until(
        "call:quality", lambda q: q["consultation_id"] == cid, EVENT_TIMEOUT
    )
    assert {leg["role"] for leg in quality["legs"]} == {"patient", "doctor"}
    assert all(leg["state"] == "connected" for leg in quality["legs"]), quality

    # The doctor hangs up on B: B tells A, whose room closes before the ack.
    assert (await doctor_ws.emit("call:hangup", {"consultation_id": cid}))["ok"]
    assert calls_held(a) == 0
    await patient_ws.until("call:form-changed", lambda c: c["form"] == "chat", EVENT_TIMEOUT)


async def test_a_switch_asked_on_one_node_is_consented_on_the_other_and_recording_follows(
    cluster: Cluster, db: AsyncEngine, clients: Clients, pages: list[Page]
) -> None:
    a, b = cluster["a"], cluster["b"]
    _, patient_ws, _, doctor_ws, cid = await video_call(db, clients, "dermatology", a, b, "voice")
    patient_page = Page("patient", patient_ws, cid, video=False)
    doctor_page = Page("doctor", doctor_ws, cid, video=False)
    pages += [patient_page, doctor_page]
    assert (await doctor_page.join())["ok"]  # this time B owns the call
    assert (await patient_page.join())["ok"]

    # Asked on A; B's notifier-free socket hears it (Redis) and B reads it from the database.
    asked = await patient_ws.emit("call:form", {"consultation_id": cid, "form": "video"})
    assert asked["ok"] and asked["data"]["to_user"] is not None, asked
    await doctor_ws.until("call:form-requested", lambda r: r["form"] == "video", EVENT_TIMEOUT)
    config = await doctor_ws.emit("call:config", {"consultation_id": cid})
    assert config["data"]["pending"]["form"] == "video", config
    answered = await doctor_ws.emit("call:form-answer", {"consultation_id": cid, "accept": True})
    assert answered["ok"] and answered["data"]["form"] == "video", answered
    await patient_ws.until("call:form-changed", lambda c: c["form"] == "video", EVENT_TIMEOUT)
    assert (await patient_ws.emit("call:config", {"consultation_id": cid}))["data"][
        "pending"
    ] is None

    # Both pages come back with video (the patient's offer forwarded by A to B): B relays it.
    patient_page.video = doctor_page.video = True
    switched = time.monotonic()
    assert (await patient_page.join())["ok"] and (await doctor_page.join())["ok"]
    await pictures_both_ways(patient_page, doctor_page, switched, "video after the switch")

    # Consents on both nodes: the owner starts recording once both said yes.
    for ws in (patient_ws, doctor_ws):
        assert (await ws.emit("call:record-consent", {"consultation_id": cid, "consent": True}))[
            "ok"
        ]
    for ws in (patient_ws, doctor_ws):
        await ws.until("call:recording", lambda r: r["recording"], EVENT_TIMEOUT)
    state = (await patient_ws.emit("call:config", {"consultation_id": cid}))["data"]["recording"]
    assert state["recording"] and state["recording_id"] is not None  # read by A from the db

    # A hang-up on A stops B's recording and closes B's room.
    assert (await patient_ws.emit("call:hangup", {"consultation_id": cid}))["ok"]
    await doctor_ws.until("call:recording", lambda r: not r["recording"], EVENT_TIMEOUT)
    await wait_for(lambda: calls_held(b) == 0, 5, "B's room closed")


async def test_a_frozen_owner_is_answered_for_once_its_lease_lapses(
    cluster: Cluster, db: AsyncEngine, clients: Clients, pages: list[Page]
) -> None:
    a, b = cluster["a"], cluster["b"]
    patient, patient_on_a, _, doctor_ws, cid = await video_call(db, clients, "psychiatry", a, b)
    patient_on_b = await clients.socket(b, patient)  # the patient's other tab, on B
    patient_page, doctor_page = Page("patient", patient_on_a, cid), Page("doctor", doctor_ws, cid)
    pages += [patient_page, doctor_page]
    assert (await patient_page.join())["ok"]  # A owns the call
    assert (await doctor_page.join())["ok"]
    await pictures_both_ways(patient_page, doctor_page, time.monotonic(), "pictures")

    a.popen.send_signal(signal.SIGSTOP)  # frozen: its sockets stay open, it answers nothing
    try:
        frozen = time.monotonic()
        patient_page.ws = patient_on_b
        patient_page.watch()
        doctor_page.watch()
        await pictures_both_ways(patient_page, doctor_page, frozen, "pictures through B")
        back = time.monotonic() - frozen
        log.info("frozen owner: media back through B after %.1f s", back)
        # Refused while A held its lease, then answered by B.
        assert "call_owner_unavailable" in doctor_page.refusals + patient_page.refusals
        assert back < STALL + FORWARD_TIMEOUT + LEASE + 5, back
        assert calls_held(b) == 1
    finally:
        a.popen.send_signal(signal.SIGCONT)
    # A, resumed, finds the call is B's at its next renewal and drops its room without a word.
    await wait_for(lambda: calls_held(a) == 0, LEASE + 5, "A's stale room dropped")
    assert calls_held(b) == 1
    assert (await doctor_ws.emit("call:hangup", {"consultation_id": cid}))["ok"]


async def test_an_owner_that_missed_a_switch_follows_the_database_within_a_lease(
    cluster: Cluster, db: AsyncEngine, clients: Clients, pages: list[Page]
) -> None:
    a, b = cluster["a"], cluster["b"]
    _, patient_ws, doctor, _, cid = await video_call(db, clients, "paediatrics", a, b)
    page = Page("patient", patient_ws, cid)
    pages.append(page)
    assert (await page.join())["ok"]
    assert calls_held(a) == 1
    # A hang-up committed by a node whose word to the owner was lost (it timed out).
    async with db.begin() as conn:
        await conn.execute(
            t.consultation_forms.insert().values(
                consultation_id=cid,
                form="chat",
                started_at=datetime.now(UTC),
                requested_by=doctor.id,
            )
        )
    await wait_for(lambda: calls_held(a) == 0, LEASE + 3, "A's room closed by its own check")


async def test_a_killed_owners_call_is_taken_over_and_media_flows_again_within_10_s(
    cluster: Cluster, db: AsyncEngine, clients: Clients, pages: list[Page]
) -> None:
    a, b = cluster["a"], cluster["b"]
    patient, patient_ws, _, doctor_ws, cid = await video_call(
        db, clients, "internal-medicine", a, b
    )
    patient_page, doctor_page = Page("patient", patient_ws, cid), Page("doctor", doctor_ws, cid)
    pages += [patient_page, doctor_page]
    assert (await patient_page.join())["ok"]  # A owns the call
    assert (await doctor_page.join())["ok"]
    await pictures_both_ways(patient_page, doctor_page, time.monotonic(), "pictures")
    assert calls_held(a) == 1

    patient_page.watch()
    doctor_page.watch()
    killed = time.monotonic()
    cluster.kill("a")
    # The patient's socket closes with A and reconnects through the "load balancer" to B.
    await wait_for(lambda: not patient_ws.sio.connected, 5, "the patient's socket to close")
    patient_page.ws = await clients.socket(b, patient)
    await pictures_both_ways(patient_page, doctor_page, killed, "pictures again through B")
    recovered = time.monotonic() - killed
    log.warning("owner killed: pictures both ways again after %.1f s", recovered)
    print(f"\nowner killed: pictures flowing both ways again after {recovered:.1f} s")
    assert recovered < 10, recovered
    assert calls_held(b) == 1 and patient_page.refusals == doctor_page.refusals == []
    # B's media states reach both pages now.
    await doctor_ws.until(
        "call:state", lambda s: s["user_id"] == patient.id and s["state"] == "connected", 10
    )
    assert (await doctor_ws.emit("call:hangup", {"consultation_id": cid}))["ok"]
    await wait_for(lambda: calls_held(b) == 0, 5, "B's room closed")
