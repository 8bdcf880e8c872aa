"""A call's owner node and the link between nodes, on a real Redis (``CONSULT_TEST_REDIS_URL``).

Two or three "nodes" in this process, each with its own Redis clients, as separate processes
would have: leases claimed, kept, lapsed, taken over, released, found lost after a Redis
restart's empty keys; requests answered, an owner's error raised as the same error, a node
that is gone known at once, a node that does not answer refused within the timeout; and, on a
redis-server of the test's own, restarted: the nodes' channels and leases come back by
themselves. Each test has a key prefix and channels of its own (Redis is shared with other
test runs).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import redis.exceptions

from consult.calls.leases import RedisLeases
from consult.calls.node_link import NodeGone, NodeLink
from consult.errors import NotFound, Unavailable
from tests.support import free_port

REDIS_URL = os.environ.get("CONSULT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def prefix() -> str:
    return f"test-calls-{uuid.uuid4().hex[:10]}:"


@pytest.fixture
async def made() -> AsyncIterator[list[Any]]:
    """Leases and links to close after the test."""
    things: list[Any] = []
    yield things
    for thing in things:
        await thing.close()


@pytest.fixture
async def redis_client() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as exc:  # CI has Redis: its absence is a failure, not a skip
        pytest.fail(f"Redis at {REDIS_URL} is not reachable: {exc!r}")
    yield client
    await client.aclose()


def leases(made: list[Any], prefix: str, node: str, lease: float = 1.0) -> RedisLeases:
    found = RedisLeases(REDIS_URL, prefix, node, lease=lease)
    made.append(found)
    return found


async def test_the_first_claim_wins_and_others_learn_the_owner(
    made: list[Any], prefix: str, redis_client: aioredis.Redis
) -> None:
    a, b = leases(made, prefix, "a"), leases(made, prefix, "b")
    assert await a.claim(1) == "a"
    assert await b.claim(1) == "a"  # b forwards to a
    assert await b.owner(1) == "a" and await b.owner(2) is None
    assert a.held == {1} and b.held == set()
    ttl = await redis_client.pttl(f"{prefix}call:1:owner")
    assert 0 < ttl <= 1000


async def test_a_lease_nobody_renews_lapses_and_the_next_claim_takes_the_call(
    made: list[Any], prefix: str
) -> None:
    a, b = leases(made, prefix, "a"), leases(made, prefix, "b")
    assert await a.claim(1) == "a"
    await asyncio.sleep(1.2)  # a is "killed": its renewals stopped
    assert await b.claim(1) == "b"
    # a, back (it was frozen), finds the call moved: it is forgotten there.
    assert await a.renew() == [1]
    assert a.held == set() and await a.owner(1) == "b"


async def test_a_running_owner_keeps_its_lease_and_hears_when_it_is_taken_over(
    made: list[Any], prefix: str
) -> None:
    a, b = leases(made, prefix, "a"), leases(made, prefix, "b")
    lost: list[int] = []
    a.start(lost.append)
    assert await a.claim(1) == "a" and await a.claim(2) == "a"
    await asyncio.sleep(2.5)  # two and a half leases: renewed every third of one
    assert await b.claim(1) == "a"
    # b knows a's process is gone (no one on its channel): it takes the call over at once.
    assert await b.take_over(2, "a") == "b"
    assert await b.take_over(1, "c") == "a"  # not from a node that does not hold it
    await asyncio.sleep(0.6)  # a's next renewal
    assert lost == [2] and a.held == {1}


async def test_a_released_call_is_claimed_at_once_and_lost_keys_are_written_again(
    made: list[Any], prefix: str, redis_client: aioredis.Redis
) -> None:
    a, b = leases(made, prefix, "a"), leases(made, prefix, "b")
    await a.claim(1)
    await a.release(1)
    assert await b.claim(1) == "b"
    await b.release(1)
    await a.release(7)  # nothing held: nothing happens
    # Redis restarted empty: the owner's next renewal writes its keys again.
    await a.claim(3)
    await redis_client.delete(f"{prefix}call:3:owner")
    assert await a.renew() == []
    assert await b.owner(3) == "a"


def link(
    made: list[Any], prefix: str, node: str, handler: Callable[..., Any], timeout: float = 2.0
) -> NodeLink:
    found = NodeLink(REDIS_URL, prefix, node, handler, timeout=timeout)
    made.append(found)
    return found


async def test_a_request_is_answered_by_the_node_and_its_error_raised_as_the_same(
    made: list[Any], prefix: str
) -> None:
    async def handle(op: str, body: dict[str, Any]) -> dict[str, Any]:
        if op == "fail":
            raise NotFound("no such call here", code="media_no_call")
        return {"op": op, "echo": body}

    async def never(op: str, body: dict[str, Any]) -> dict[str, Any]:
        raise AssertionError("a's handler is not asked")

    a, b = link(made, prefix, "a", never), link(made, prefix, "b", handle)
    await a.start()
    await b.start()
    assert await a.request("b", "answer", {"sdp": "v=0"}) == {
        "op": "answer",
        "echo": {"sdp": "v=0"},
    }
    with pytest.raises(NotFound) as refused:
        await a.request("b", "fail", {})
    assert refused.value.code == "media_no_call" and refused.value.message == "no such call here"
    # Ten at once: each reply reaches its own request.
    many = await asyncio.gather(*(a.request("b", f"op{i}", {"i": i}) for i in range(10)))
    assert [m["echo"]["i"] for m in many] == list(range(10))


async def test_a_gone_node_is_known_at_once_and_a_silent_one_times_out(
    made: list[Any], prefix: str
) -> None:
    async def stuck(op: str, body: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(5)
        return {}

    a, b = link(made, prefix, "a", stuck, 0.3), link(made, prefix, "b", stuck, 0.3)
    await a.start()
    await b.start()
    started = time.monotonic()
    with pytest.raises(NodeGone):
        await a.request("nobody", "answer", {})
    assert time.monotonic() - started < 0.2
    started = time.monotonic()
    with pytest.raises(Unavailable) as refused:
        await a.request("b", "answer", {})
    assert refused.value.code == "call_owner_unavailable"
    assert 0.3 <= time.monotonic() - started < 1.0
    await b.close()  # closed: its channel has no listener any more
    made.remove(b)
    with pytest.raises(NodeGone):
        await a.request("b", "answer", {})


class OwnRedis:
    """A redis-server of this test's own (the shared one is never restarted), no persistence."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(
            command, cwd=self.directory, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client = aioredis.from_url(self.url)
        try:
            for _ in range(100):
                with contextlib.suppress(OSError, redis.exceptions.ConnectionError):
                    await client.ping()
                    return
                await asyncio.sleep(0.05)
            raise AssertionError("redis-server did not start")
        finally:
            await client.aclose()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


async def test_links_and_leases_come_back_by_themselves_after_redis_restarts(
    made: list[Any], prefix: str, tmp_path: Path
) -> None:
    server = OwnRedis(tmp_path)
    await server.start()
    try:

        async def echo(op: str, body: dict[str, Any]) -> dict[str, Any]:
            return {"op": op}

        a = NodeLink(server.url, prefix, "a", echo, timeout=1.0)
        b = NodeLink(server.url, prefix, "b", echo, timeout=1.0)
        owner = RedisLeases(server.url, prefix, "b", lease=1.0)
        made.extend([a, b, owner])
        await a.start()
        await b.start()
        owner.start(lambda cid: None)
        assert await owner.claim(1) == "b"
        assert await a.request("b", "answer", {}) == {"op": "answer"}

        server.stop()  # restarted empty: every key and subscription gone
        await asyncio.sleep(1.0)
        await server.start()
        restarted = time.monotonic()

        async def answered() -> bool:
            with contextlib.suppress(NodeGone, Unavailable):
                return await a.request("b", "answer", {}) == {"op": "answer"}
            return False

        while not await answered():
            assert time.monotonic() - restarted < 10, "b's channel never came back"
            await asyncio.sleep(0.2)
        # The owner's next renewal wrote its lease again.
        await wait_for_owner(owner, 1, "b", restarted + 5)
    finally:
        server.stop()


async def wait_for_owner(leases: RedisLeases, cid: int, node: str, deadline: float) -> None:
    while await _owner_or_none(leases, cid) != node:
        assert time.monotonic() < deadline, f"call {cid}'s lease was not written again"
        await asyncio.sleep(0.1)


async def _owner_or_none(leases: RedisLeases, cid: int) -> str | None:
    with contextlib.suppress(Unavailable):
        return await leases.owner(cid)
    return None
