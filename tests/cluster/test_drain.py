"""SIGTERM to a node under load (issue 15, "Faults"): draining loses no request in flight and
no acknowledged message.

Ten chats run through HAProxy (each side a message every 0.2 s), the patients read their
transcripts over HTTP and the doctors write recommendations (a write each, never repeated by
the client), all the time. Node 2 gets SIGTERM:

- for CONSULT_DRAIN_DELAY (3 s) it serves everything while its /healthz answers 503
  ``draining``: at its next check HAProxy stops sending it new connections (NOLB);
- then it stops listening, answers what it has under way, and only then closes its sockets:
  their clients reconnect through HAProxy, to the other nodes, within 5 s;
- it exits with status 0.

Every HTTP request of the test is answered by a node (none by HAProxy's own 502/503, none cut
off), every recommendation answered 201 is stored, and every chat message is stored once.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from typing import Any

import aiohttp

from consult.storage import tables as t
from tests.cluster.chatting import chats_through_haproxy, check_stored
from tests.cluster.harness import BASE_SETTINGS, Cluster
from tests.cluster.people import Http
from tests.cluster.tabs import Tab
from tests.support import count

CHATS = 10
DRAIN_DELAY = float(BASE_SETTINGS["CONSULT_DRAIN_DELAY"])
RECONNECT_BOUND = 5.0


async def test_a_draining_node_loses_no_request_and_no_message(
    cluster: Cluster, http: Http
) -> None:
    tabs, pairs = await chats_through_haproxy(
        cluster.url, cluster.database_url, http, CHATS, "cardiology"
    )
    requests = Requests(cluster.url)
    try:
        sides = [side for pair in pairs for side in pair]
        stop = asyncio.Event()
        load = [asyncio.create_task(side.talk(stop, 0.2)) for side in sides]
        load += [asyncio.create_task(requests.read(p.tab, p.cid, stop)) for p, _ in pairs]
        load += [asyncio.create_task(requests.write(d.tab, d.cid, stop)) for _, d in pairs]
        await asyncio.sleep(3)

        node = cluster.terminate_node(1)
        signalled = time.monotonic()
        out_of_service = await cluster.wait_state("node2", "NOLB", 10)
        code = await asyncio.to_thread(node.wait, 30)
        exited = time.monotonic() - signalled
        await asyncio.sleep(4)  # its sockets come back elsewhere
        stop.set()
        await asyncio.wait_for(asyncio.gather(*load), 60)
        await asyncio.gather(*(side.catch_up() for side in sides))

        closed = [tab.drops[0] - signalled for tab in tabs if tab.drops]
        back = [tab.returns[0] for tab in tabs if tab.returns]
        figures = await check_stored(cluster.database_url, pairs)
        stored = await recommendations(cluster.database_url, [d.cid for _, d in pairs])
        print(
            f"\nSIGTERM to node2 under load: no new connection from HAProxy after "
            f"{out_of_service:.2f} s, exited "
            f"with {code} after {exited:.2f} s; {len(closed)} sockets closed by it "
            f"{_range(closed)} after the signal, back through HAProxy {_range(back)} later; "
            f"HTTP: {requests}; recommendations answered 201: {requests.created}, stored: "
            f"{stored}; messages: {figures}"
        )
        assert code == 0
        assert out_of_service < DRAIN_DELAY, "HAProxy still sent it traffic when it stopped"
        assert closed and min(closed) >= DRAIN_DELAY, "sockets closed before the drain ended"
        assert len(back) == len(closed) and max(back) < RECONNECT_BOUND, back
        assert requests.lost == 0 and set(requests.statuses) <= {200, 201}, requests
        assert stored == requests.created
        assert figures.lost == 0 and figures.doubled == 0
        assert figures.acked == figures.written == figures.stored
    finally:
        await requests.close()
        await asyncio.gather(*(tab.close() for tab in tabs))


class Requests:
    """HTTP through HAProxy, never retried: each request counts as answered by a node (its
    JSON), answered by HAProxy itself (a 502 or 503 page: lost) or cut off (lost)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=30))
        self.statuses: Counter[int] = Counter()
        self.lost = 0
        self.created = 0

    async def read(self, tab: Tab, cid: int, stop: asyncio.Event) -> None:
        path = f"/api/consultations/{cid}/messages?after=0&limit=50"
        while not stop.is_set():
            await self._send(tab, "GET", path, None)
            await asyncio.sleep(0.25)

    async def write(self, tab: Tab, cid: int, stop: asyncio.Event) -> None:
        path = f"/api/consultations/{cid}/recommendations"
        n = 0
        while not stop.is_set():
            n += 1
            if await self._send(tab, "POST", path, {"text": f"recommendation {n}"}) == 201:
                self.created += 1
            await asyncio.sleep(0.5)

    async def _send(self, tab: Tab, method: str, path: str, body: Any) -> int | None:
        headers = {"Authorization": f"Bearer {tab.user.token}"}
        try:
            async with self.session.request(
                method, self.base_url + path, json=body, headers=headers
            ) as response:
                if "json" not in (response.content_type or ""):
                    self.lost += 1  # HAProxy's own answer: no node took the request
                    return None
                await response.read()
                self.statuses[response.status] += 1
                return response.status
        except aiohttp.ClientError:
            self.lost += 1
            return None

    def __str__(self) -> str:
        answered = sum(self.statuses.values())
        return f"{answered} answered by a node ({dict(self.statuses)}), lost: {self.lost}"

    async def close(self) -> None:
        await self.session.close()


async def recommendations(database_url: str, cids: list[int]) -> int:
    return await count(
        database_url, t.recommendations, t.recommendations.c.consultation_id.in_(cids)
    )


def _range(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{min(values):.2f}-{max(values):.2f} s (median {statistics.median(values):.2f} s)"
