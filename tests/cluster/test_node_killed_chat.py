"""kill -9 of a node while 20 chats have messages in flight (issue 15, "Faults").

Twenty patients and twenty doctors chat through HAProxy, each side writing a message every
0.3 s, as the pages send (one at a time, a client id each, retried with the same id when its
ack does not come). Right before the kill every participant writes a burst of five, so that the
node dies with sends under way. Then: every acknowledged message is stored once with the seq its
ack gave; every message sent again after its ack was lost is stored once; nothing written is
lost; each side ends up with the stored transcript; the killed node's sockets are back, through
HAProxy on the other nodes, within 5 s.
"""

from __future__ import annotations

import asyncio
import statistics

from tests.cluster.chatting import chats_through_haproxy, check_stored
from tests.cluster.harness import Cluster
from tests.cluster.people import Http
from tests.cluster.tabs import return_times

CHATS = 20
EVERY = 0.3  # seconds between two messages of one participant
BURST = 5  # messages each participant writes at once right before the kill
RECONNECT_BOUND = 5.0


async def test_a_killed_node_loses_no_message_and_its_sockets_return_within_5_s(
    cluster: Cluster, http: Http
) -> None:
    tabs, pairs = await chats_through_haproxy(
        cluster.url, cluster.database_url, http, CHATS, "psychiatry"
    )
    try:
        sides = [side for pair in pairs for side in pair]
        stop = asyncio.Event()
        talking = [asyncio.create_task(side.talk(stop, EVERY)) for side in sides]
        await asyncio.sleep(3)
        for side in sides:
            for _ in range(BURST):
                side.write()
        await asyncio.sleep(0.05)
        killed = cluster.kill_node(1)
        await asyncio.sleep(6)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*talking), 60)
        await asyncio.gather(*(side.catch_up() for side in sides))

        returned = return_times(tabs, killed)
        figures = await check_stored(cluster.database_url, pairs)
        print(
            f"\nkill -9 of node2 with {CHATS} chats: {len(returned)} of {len(tabs)} sockets "
            f"dropped, back through HAProxy after {_seconds(returned)}; messages: {figures}; "
            f"HTTP requests retried after HAProxy's 502: {http.proxy_retries}"
        )
        assert returned, "no socket was on the killed node"
        assert max(returned) < RECONNECT_BOUND, returned
        assert figures.lost == 0 and figures.doubled == 0
        assert figures.resent > 0, "no message was in flight when the node died"
        assert figures.acked == figures.written == figures.stored
    finally:
        await asyncio.gather(*(tab.close() for tab in tabs))


def _seconds(values: list[float]) -> str:
    if not values:
        return "-"
    return f"median {statistics.median(values):.2f} s, max {max(values):.2f} s"
