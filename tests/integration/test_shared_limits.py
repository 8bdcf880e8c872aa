"""The shared token bucket (consult/chat/limits.py's SharedLimiter) on a real Redis, with two
limiters standing for two processes, each with its own clock: one budget between them, refilled
once (a process whose clock is behind adds nothing); and on a Redis that refuses connections or
never answers: this process's own limit, at once, logged once."""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from consult.chat.limits import RateLimited, RateLimiter, SharedLimiter
from consult.clock import ManualClock
from consult.shared_counters import TIMEOUT, SharedCounters
from tests.support import free_port

REDIS_URL = os.environ.get("CONSULT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
async def counters() -> AsyncIterator[SharedCounters]:
    made = SharedCounters(REDIS_URL, f"test-{uuid.uuid4().hex[:8]}")  # this test's keys
    yield made
    redis = made.redis
    assert redis is not None
    keys = [key async for key in redis.scan_iter(match=made.prefix + ":*")]
    if keys:
        await redis.delete(*keys)
    await made.close()


async def taken(limiter: SharedLimiter, count: int, *key: object) -> int:
    ok = 0
    for _ in range(count):
        try:
            await limiter.take(*key)
            ok += 1
        except RateLimited:
            pass
    return ok


async def test_two_processes_spend_one_budget_refilled_once(counters: SharedCounters) -> None:
    clock_a = ManualClock()
    clock_b = ManualClock(clock_a.now() - timedelta(seconds=5))  # b's clock is 5 s behind
    a = SharedLimiter(RateLimiter(clock_a, rate=1, burst=4), counters, "chat")
    b = SharedLimiter(RateLimiter(clock_b, rate=1, burst=4), counters, "chat")
    assert await taken(a, 2, 7, 1) + await taken(b, 4, 7, 1) == 4
    with pytest.raises(RateLimited) as refused:
        await a.take(7, 1)
    assert refused.value.retry_after == 1
    assert await taken(a, 1, 7, 2) == 1  # another key has its own bucket

    # b's clock moves 2 s but is still behind the bucket's last take: no refill from b.
    clock_b.advance(2)
    assert await taken(b, 1, 7, 1) == 0
    # a's clock moves 2 s: two tokens, spent by whoever comes first; b's next second is not
    # counted again (its clock reaches a's moment only later).
    clock_a.advance(2)
    assert await taken(b, 1, 7, 1) + await taken(a, 3, 7, 1) == 2
    clock_b.advance(6)  # b now 1 s past a's last take: one token more
    assert await taken(b, 3, 7, 1) == 1


async def test_a_refusal_by_the_shared_count_spends_nothing_here(counters: SharedCounters) -> None:
    """Process b is refused ten times because a spent the budget: b's own bucket is still full,
    so were Redis to go away b would allow a whole burst, as a lone process does."""
    clock = ManualClock()
    a = SharedLimiter(RateLimiter(clock, rate=1, burst=4), counters, "chat")
    b = SharedLimiter(RateLimiter(clock, rate=1, burst=4), counters, "chat")
    assert await taken(a, 4, 1, 1) == 4
    assert await taken(b, 10, 1, 1) == 0
    alone = SharedLimiter(b.local, SharedCounters("", ""), "chat")  # b without Redis
    assert await taken(alone, 10, 1, 1) == 4


async def test_an_unreachable_redis_leaves_this_process_limit_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="consult.shared_counters")
    counters = SharedCounters(f"redis://127.0.0.1:{free_port()}/0", "nowhere")  # refused
    limiter = SharedLimiter(RateLimiter(ManualClock(), rate=1, burst=5), counters, "chat")
    try:
        assert await taken(limiter, 50, 1, 1) == 5
        assert await taken(limiter, 50, 1, 2) == 5
    finally:
        await counters.close()
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "Redis unreachable" in warnings[0], warnings


async def test_a_redis_that_never_answers_costs_one_timeout_per_pause() -> None:
    """A TCP peer that accepts and says nothing (a hung Redis, a black-holed route): the first
    take waits TIMEOUT, the next ones do not wait at all during the pause."""
    held: list[asyncio.StreamWriter] = []

    async def mute(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    counters = SharedCounters(f"redis://127.0.0.1:{port}/0", "mute")
    limiter = SharedLimiter(RateLimiter(ManualClock(), rate=1, burst=100), counters, "chat")
    try:
        started = time.monotonic()
        await limiter.take(1, 1)
        first = time.monotonic() - started
        started = time.monotonic()
        assert await taken(limiter, 99, 1, 1) == 99
        rest = time.monotonic() - started
    finally:
        await counters.close()
        for writer in held:
            writer.close()
        server.close()
    assert TIMEOUT * 0.9 <= first < TIMEOUT + 1.0, first
    assert rest < 0.5, rest
