"""PostgreSQL unavailable for 10 s behind HAProxy (issue 15, "Faults").

A cluster of its own (two nodes, HAProxy, a Redis of its own) whose nodes reach PostgreSQL
through a TCP proxy the test cuts (tests/cut_proxy.py: the shared server is never stopped;
cut, the proxy resets its connections and refuses new ones). Under a light load through HAProxy
(three chats, each side writing every 0.3 s as the pages send; each patient reading their
consultation every 0.25 s), the proxy is cut for 10 s, then restored. Then:

- in the outage, every HTTP answer is consult's own 503 ``database_unavailable`` with
  ``Retry-After`` (not HAProxy's page: the shipped check keeps ``degraded`` nodes in service),
  and chat sends are acknowledged with the same code; /healthz says the database is unreachable;
- nothing acknowledged that was not committed, and the messages sent again after the refusal
  (same client id, after ``retry_after``, as web/common/chat.js does) are stored once;
- service resumes by itself, no node restarted: the time from the restore to the first 200 is
  measured; /healthz is ``ok`` again and HAProxy has every node in service, none taken out at
  any moment (its log);
- each node logs the outage once, as an error; no periodic task logs an error or a traceback at
  every tick.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import sqlalchemy as sa

from tests import backends
from tests.cluster.chatting import chats_through_haproxy, check_stored
from tests.cluster.harness import Cluster, cluster_database
from tests.cluster.people import Http
from tests.cut_proxy import CutProxy
from tests.integration.test_two_processes import User

CHATS = 3
EVERY = 0.3  # seconds between two messages of one participant
READ_EVERY = 0.25  # seconds between two reads of one patient
OUTAGE = 10.0
RESUME_BOUND = 5.0  # seconds from the restore to the first 200 through HAProxy


@dataclass
class Answer:
    at: float
    status: int
    code: str  # the JSON error's code; "" for a 200; "not json" for HAProxy's own page
    retry_after: str | None


@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, CutProxy]]:
    if "postgresql" not in backends.BACKENDS:
        pytest.skip("PostgreSQL not selected")
    with cluster_database() as url:
        direct = sa.make_url(url)
        proxy = CutProxy(direct.host or "127.0.0.1", direct.port or 5432).start()
        proxied = direct.set(port=proxy.port).render_as_string(hide_password=False)
        directory = tmp_path_factory.mktemp("database-outage")
        cluster = Cluster(directory, url, 2, node_database_url=proxied)
        try:
            cluster.start()
            yield cluster, proxy
        finally:
            cluster.close()
            proxy.close()


async def test_a_database_outage_is_answered_through_haproxy_and_survived(
    outage: tuple[Cluster, CutProxy],
) -> None:
    cluster, proxy = outage
    offsets = cluster.log_offsets()
    http = Http(cluster.url)
    tabs, pairs = await chats_through_haproxy(
        cluster.url, cluster.database_url, http, CHATS, "physiotherapy"
    )
    sides = [side for pair in pairs for side in pair]
    answers: list[Answer] = []
    stop = asyncio.Event()
    try:
        talking = [asyncio.create_task(side.talk(stop, EVERY)) for side in sides]
        reading = [
            asyncio.create_task(_read(http.session, cluster.url, p.tab.user, p.cid, stop, answers))
            for p, _ in pairs
        ]
        await asyncio.sleep(2)
        cut_at, restored_at, health_in_outage, states_in_outage = await _outage(
            cluster, proxy, http.session
        )
        resumed = await _first_ok(answers, restored_at)
        await asyncio.sleep(3)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*talking, *reading), 60)
        await asyncio.gather(*(side.catch_up() for side in sides))

        figures = await check_stored(cluster.database_url, pairs)
        during = [a for a in answers if cut_at + 0.5 < a.at < restored_at]
        refused_acks = sum(side.unavailable for side in sides)
        health_after = await _health(http.session, cluster.url)
        states_after = await asyncio.to_thread(cluster.states)
        print(
            f"\nPostgreSQL cut for {restored_at - cut_at:.1f} s behind HAProxy: {len(during)} HTTP "
            f"answers in the outage, {_codes(during)}; chat sends acknowledged "
            f"database_unavailable: {refused_acks}; /healthz in the outage {health_in_outage}, "
            f"HAProxy {states_in_outage}; first 200 {resumed:.2f} s after the restore; messages: "
            f"{figures}; /healthz after {health_after}, HAProxy {states_after}"
        )
        assert during and all(
            (a.status, a.code, a.retry_after) == (503, "database_unavailable", "5") for a in during
        ), _codes(during)
        assert refused_acks > 0, "no chat send met the outage"
        assert health_in_outage == (
            503,
            {"status": "degraded", "database": "unreachable", "bus": "redis"},
        )
        assert set(states_in_outage.values()) == {"UP"}, states_in_outage
        assert resumed < RESUME_BOUND, resumed
        assert figures.lost == 0 and figures.doubled == 0
        assert figures.acked == figures.written == figures.stored
        assert health_after == (200, {"status": "ok", "database": "ok", "bus": "redis"})
        assert set(states_after.values()) == {"UP"}, states_after
        _outage_logged_once_and_no_node_out(cluster, offsets)
    finally:
        stop.set()
        await asyncio.gather(*(tab.close() for tab in tabs))
        await http.close()


async def _outage(
    cluster: Cluster, proxy: CutProxy, session: aiohttp.ClientSession
) -> tuple[float, float, tuple[int, dict[str, str]], dict[str, str]]:
    """The proxy cut for OUTAGE seconds: when it was cut and restored, and /healthz and
    HAProxy's states halfway through."""
    proxy.cut()
    cut_at = time.monotonic()
    await asyncio.sleep(OUTAGE / 2)
    health = await _health(session, cluster.url)
    states = await asyncio.to_thread(cluster.states)
    await asyncio.sleep(cut_at + OUTAGE - time.monotonic())
    proxy.restore()
    return cut_at, time.monotonic(), health, states


def _outage_logged_once_and_no_node_out(cluster: Cluster, offsets: dict[Path, int]) -> None:
    haproxy_log = (cluster.directory / "haproxy.log").read_text(errors="replace")
    assert " is DOWN" not in haproxy_log, "HAProxy took a node out"
    assert all(n.running for n in cluster.nodes), "a node stopped"
    # The outage is logged once per node, as an error; nothing else is, at no tick.
    problems = cluster.log_lines_since(offsets, " ERROR ", "Traceback")
    assert [p.split(" ERROR ")[-1].split(":")[0] for p in problems] == [
        "consult.storage.outage"
    ] * len(cluster.nodes), "\n".join(problems[:20])


async def _read(
    session: aiohttp.ClientSession,
    url: str,
    user: User,
    cid: int,
    stop: asyncio.Event,
    answers: list[Answer],
) -> None:
    """The patient's page reading its consultation, as often as a busy page would."""
    headers = {"Authorization": f"Bearer {user.token}"}
    while not stop.is_set():
        async with session.get(f"{url}/api/consultations/{cid}", headers=headers) as response:
            if "json" not in (response.content_type or ""):
                code = "not json"
            else:
                body = await response.json()
                code = "" if response.status == 200 else body["error"]["code"]
            answers.append(
                Answer(time.monotonic(), response.status, code, response.headers.get("Retry-After"))
            )
        await asyncio.sleep(READ_EVERY)


async def _first_ok(answers: list[Answer], since: float) -> float:
    """Seconds from ``since`` to the first 200 read after it."""
    deadline = since + RESUME_BOUND + 10
    while time.monotonic() < deadline:
        ok = [a.at for a in answers if a.at > since and a.status == 200]
        if ok:
            return min(ok) - since
        await asyncio.sleep(0.02)
    raise AssertionError("no read answered 200 after the restore")


async def _health(session: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, str]]:
    async with session.get(url + "/healthz") as response:
        return response.status, await response.json()


def _codes(answers: list[Answer]) -> str:
    counts: dict[str, int] = {}
    for a in answers:
        key = f"{a.status} {a.code or 'ok'} (Retry-After {a.retry_after})"
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{n} × {key}" for key, n in sorted(counts.items()))
