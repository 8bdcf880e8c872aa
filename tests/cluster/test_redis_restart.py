"""Redis restarted under load (issue 15, "Faults").

Nine chats run with each patient on one node and their doctor on another (connected to the
nodes directly, so that every push crosses nodes through Redis); a doctor of another specialty
waits online. Redis is killed (SIGKILL; it keeps nothing on disk, so it comes back empty) and
started again 3 s later. Meanwhile:

- every node answers alone: chat messages are stored and acknowledged, HTTP is answered, and
  /healthz says what it cannot do (503, ``"bus": "unreachable"``); HAProxy keeps every node in
  service (the check accepts ``degraded``: all nodes are alike without Redis);
- pushes to sockets on other nodes are lost; the clients fetch what they missed at the next
  push (its seq shows the gap), as the pages do.

After the restart, pushes resume by themselves (the time until each chat's first push across
nodes is measured); presence holds: the waiting doctor, connected throughout, is offered a new
patient who joins on another node; nothing acknowledged is lost and each side's transcript is
whole.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import urllib.error
import urllib.request

from tests.cluster.chatting import Chatter, check_stored, open_chats
from tests.cluster.harness import Cluster
from tests.cluster.people import Http, add_users
from tests.cluster.tabs import Tab

CHATS = 9
OUTAGE = 3.0
RESUME_BOUND = 10.0  # seconds from Redis' return to the first push across nodes, per chat


async def test_pushes_resume_and_nothing_acknowledged_is_lost_when_redis_restarts(
    cluster: Cluster, http: Http
) -> None:
    patients = await add_users(cluster.database_url, "patient", CHATS + 1)
    doctors = await add_users(cluster.database_url, "doctor", CHATS, "dermatology")
    (waiting_doctor,) = await add_users(cluster.database_url, "doctor", 1, "paediatrics")
    n = len(cluster.nodes)
    patient_tabs = [Tab(cluster.node_url(i % n), p) for i, p in enumerate(patients[:CHATS])]
    doctor_tabs = [Tab(cluster.node_url((i + 1) % n), d) for i, d in enumerate(doctors)]
    watcher = Tab(cluster.node_url(0), waiting_doctor)
    offers: asyncio.Queue[dict] = asyncio.Queue()
    watcher.on("queue:offer", offers.put)
    tabs = [*patient_tabs, *doctor_tabs, watcher]
    await asyncio.gather(*(tab.open() for tab in tabs))
    try:
        pairs = await open_chats(http, doctor_tabs, patient_tabs, "dermatology")
        sides = [side for pair in pairs for side in pair]
        online = {"specialties": ["paediatrics"], "forms": ["chat"]}
        assert (await watcher.call("presence:online", online))["ok"]
        stop = asyncio.Event()
        talking = [asyncio.create_task(side.talk(stop, 0.25)) for side in sides]
        await asyncio.sleep(2)

        cluster.stop_redis()
        down_at = time.monotonic()
        await asyncio.sleep(OUTAGE)
        acked_while_down = sum(len(side.acked) for side in sides)
        health = await asyncio.to_thread(_health, cluster.url)
        states = await asyncio.to_thread(cluster.states)
        await cluster.start_redis()
        back_at = time.monotonic()
        for side in sides:
            side.watch_pushes()

        resumed = await asyncio.wait_for(_first_pushes(sides), RESUME_BOUND + 5)
        # Presence: a patient joining on node 2 is offered to the doctor connected to node 1
        # all along; the offer crosses nodes.
        joined = await http_join(http, cluster, patients[CHATS])
        offer = await asyncio.wait_for(offers.get(), 10)
        offered_after = time.monotonic() - back_at
        stop.set()
        await asyncio.wait_for(asyncio.gather(*talking), 60)
        await asyncio.gather(*(side.catch_up() for side in sides))
        figures = await check_stored(cluster.database_url, pairs)
        fetched = sum(side.fetched for side in sides)
        print(
            f"\nRedis down for {back_at - down_at:.1f} s: /healthz through HAProxy said {health}; "
            f"HAProxy kept {states}; {acked_while_down} messages acknowledged by then; pushes "
            f"across nodes back after {_seconds(resumed)}; the waiting doctor offered a new "
            f"patient {offered_after:.2f} s after Redis' return; messages fetched after a gap "
            f"instead of pushed: {fetched}; messages: {figures}"
        )
        assert health == (503, {"status": "degraded", "database": "ok", "bus": "unreachable"})
        assert set(states.values()) == {"UP"}, states
        assert max(resumed) < RESUME_BOUND, resumed
        assert offer["consultation"]["id"] == joined
        assert fetched > 0, "no push was lost while Redis was down: the outage came too late"
        assert figures.lost == 0 and figures.doubled == 0
        assert figures.acked == figures.written == figures.stored
    finally:
        await asyncio.gather(*(tab.close() for tab in tabs))


async def _first_pushes(sides: list[Chatter]) -> list[float]:
    """Seconds from Redis' return to the first message each side got pushed by the other."""
    while any(side.first_push_after is None for side in sides):
        await asyncio.sleep(0.05)
    return [side.first_push_after for side in sides if side.first_push_after is not None]


async def http_join(http: Http, cluster: Cluster, patient: object) -> int:
    """The patient joins paediatrics through node 2 (another node than the doctor's)."""
    direct = Http(cluster.node_url(1))
    try:
        ticket = await direct.call(
            patient,  # type: ignore[arg-type]
            "POST",
            "/api/consultations",
            {"specialty": "paediatrics", "form": "chat"},
            expect=201,
        )
    finally:
        await direct.close()
    return int(ticket["consultation"]["id"])


def _health(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _seconds(values: list[float]) -> str:
    return f"median {statistics.median(values):.2f} s, max {max(values):.2f} s"
