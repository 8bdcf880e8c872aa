"""Login throttling over real HTTP: a growing delay per account and per client address, the
right password after the delay, a real login that a flood of wrong ones does not hold up, and
demo accounts that each have their own password hash. The counters are tried in this
process's memory and in Redis."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from consult.accounts.throttle import Policy
from consult.app import create_app
from consult.clock import ManualClock
from consult.demo import DEMO_PASSWORD, USERS
from consult.storage import tables as t
from tests.integration.conftest import settings_for
from tests.support import rows

# The counters (memory, Redis) are what differs here, not the database.
pytestmark = pytest.mark.one_backend

REDIS_URL = os.environ.get("CONSULT_TEST_REDIS_URL", "")
STORES = ["memory", *(["redis"] if REDIS_URL else [])]


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Settings for where the counters live: this process, or Redis (a channel of the test's
    own, so runs never share counters)."""
    if request.param == "memory":
        return {}
    return {"redis_url": REDIS_URL, "redis_channel": f"test-{uuid.uuid4().hex[:8]}"}


async def start(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    database_url: str,
    tmp_path: Path,
    clock: ManualClock,
    **overrides: Any,
) -> str:
    app = create_app(settings_for(database_url, tmp_path, **overrides), clock=clock)
    server = await aiohttp_server(app)
    return str(server.make_url("/")).rstrip("/")


async def login(
    http: aiohttp.ClientSession, base: str, email: str, password: str, via: str | None = None
) -> tuple[int, dict[str, Any], str | None]:
    headers = {"X-Forwarded-For": via} if via else {}
    async with http.post(
        base + "/api/login", json={"email": email, "password": password}, headers=headers
    ) as response:
        return response.status, await response.json(), response.headers.get("Retry-After")


async def test_wrong_passwords_lock_the_account_for_a_growing_delay_and_the_right_one_works_after(
    aiohttp_server: Any, database_url: str, tmp_path: Path, clock: ManualClock, store: dict
) -> None:
    base = await start(aiohttp_server, database_url, tmp_path, clock, **store)
    async with aiohttp.ClientSession() as http:
        for _ in range(5):  # the free failures
            status, body, _ = await login(http, base, "anna@demo.test", "wrong")
            assert (status, body["error"]["code"]) == (401, "bad_credentials")

        status, body, retry = await login(http, base, "anna@demo.test", "wrong")
        assert (status, body["error"]["code"], retry) == (429, "too_many_attempts", "1")
        assert body["error"]["retry_after"] == 1
        # Locked means locked: the right password waits too, and nothing was counted.
        status, body, retry = await login(http, base, "anna@demo.test", DEMO_PASSWORD)
        assert (status, retry) == (429, "1")

        # After the delay one more try; its failure doubles the delay.
        clock.advance(1)
        status, _, _ = await login(http, base, "anna@demo.test", "wrong")
        assert status == 401
        status, body, retry = await login(http, base, "anna@demo.test", "wrong")
        assert (status, retry, body["error"]["retry_after"]) == (429, "2", 2)
        clock.advance(1)
        assert (await login(http, base, "anna@demo.test", "wrong"))[2] == "1"
        clock.advance(1)
        status, _, _ = await login(http, base, "anna@demo.test", "wrong")
        assert status == 401
        assert (await login(http, base, "anna@demo.test", "wrong"))[2] == "4"

        # Another account is not locked by anna's failures.
        status, _, _ = await login(http, base, "piotr@demo.test", DEMO_PASSWORD)
        assert status == 200

        # The right password after the delay logs in, and forgets the failures.
        clock.advance(4)
        status, body, _ = await login(http, base, "anna@demo.test", DEMO_PASSWORD)
        assert status == 200 and body["user"]["email"] == "anna@demo.test"
        status, body, _ = await login(http, base, "anna@demo.test", "wrong")
        assert (status, body["error"]["code"]) == (401, "bad_credentials")

    # One audit row per lock refused, not one per refused attempt.
    denied = await rows(
        database_url,
        t.audit_log,
        t.audit_log.c.action == "session.login",
        t.audit_log.c.detail.like("too many%"),
    )
    assert 1 <= len(denied) <= 4


async def test_failures_from_one_address_lock_that_address_for_every_account(
    aiohttp_server: Any, database_url: str, tmp_path: Path, clock: ManualClock, store: dict
) -> None:
    base = await start(
        aiohttp_server,
        database_url,
        tmp_path,
        clock,
        trusted_proxies="127.0.0.1",
        login_address_free_attempts=3,
        **store,
    )
    async with aiohttp.ClientSession() as http:
        for n in range(3):  # three accounts, one failure each: no account is locked
            status, _, _ = await login(http, base, f"guess{n}@demo.test", "x", via="10.0.0.7")
            assert status == 401
        status, body, retry = await login(http, base, "anna@demo.test", "x", via="10.0.0.7")
        assert (status, body["error"]["code"], retry) == (429, "too_many_attempts", "1")
        # The right password from that address waits as well; from another address it works.
        status, _, _ = await login(http, base, "anna@demo.test", DEMO_PASSWORD, via="10.0.0.7")
        assert status == 429
        status, _, _ = await login(http, base, "anna@demo.test", DEMO_PASSWORD, via="10.0.0.8")
        assert status == 200
        clock.advance(1)
        status, _, _ = await login(http, base, "anna@demo.test", DEMO_PASSWORD, via="10.0.0.7")
        assert status == 200


async def test_a_real_login_completes_promptly_while_a_hundred_wrong_ones_run(
    aiohttp_server: Any, database_url: str, tmp_path: Path, clock: ManualClock, store: dict
) -> None:
    base = await start(
        aiohttp_server, database_url, tmp_path, clock, trusted_proxies="127.0.0.1", **store
    )
    connector = aiohttp.TCPConnector(limit=0)  # every request of the flood at once
    async with aiohttp.ClientSession(connector=connector) as http:
        started = time.monotonic()
        status, _, _ = await login(http, base, "piotr@demo.test", DEMO_PASSWORD, via="10.0.0.2")
        alone = time.monotonic() - started
        assert status == 200

        # A hundred wrong passwords at once from one address, for a hundred accounts (so no
        # account's own lock stops them).
        flood = [
            asyncio.create_task(login(http, base, f"nobody{n}@demo.test", "x", via="10.6.6.6"))
            for n in range(100)
        ]
        await asyncio.sleep(0.3)  # the flood is in
        started = time.monotonic()
        status, body, _ = await login(http, base, "anna@demo.test", DEMO_PASSWORD, via="10.0.0.1")
        during = time.monotonic() - started
        assert status == 200, body
        statuses = [s for s, _, _ in await asyncio.gather(*flood)]

    # The address ran its 20 free failures, two at a time (so one more may have been under way
    # when the 20th failed); the rest were refused unhashed.
    assert statuses.count(401) in (20, 21) and statuses.count(429) == 100 - statuses.count(401)
    # The real login waited for at most one round of the flood's hashes (on main: 8-27 s).
    assert during < 4 * alone + 1.0, (during, alone)


async def test_concurrent_guesses_at_one_account_run_only_its_free_attempts(
    aiohttp_server: Any, database_url: str, tmp_path: Path, clock: ManualClock, store: dict
) -> None:
    base = await start(
        aiohttp_server, database_url, tmp_path, clock, trusted_proxies="127.0.0.1", **store
    )
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        answers = await asyncio.gather(
            *(login(http, base, "basia@demo.test", "x", via=f"10.7.0.{n}") for n in range(40))
        )
    statuses = [status for status, _, _ in answers]
    # Counted before their hashes: the sixth and later were refused at once, unhashed.
    assert (statuses.count(401), statuses.count(429)) == (5, 35)


async def test_demo_accounts_each_have_their_own_password_hash(
    aiohttp_server: Any, database_url: str, tmp_path: Path, clock: ManualClock
) -> None:
    await start(aiohttp_server, database_url, tmp_path, clock)
    users = await rows(database_url, t.users)
    assert len(users) == len(USERS)
    assert len({u.password_hash for u in users}) == len(USERS)
    assert len({u.password_hash.split("$")[4] for u in users}) == len(USERS)  # the salts


def test_the_lock_doubles_up_to_its_cap_whatever_the_count() -> None:
    policy = Policy(free=5, delay=1.0, max_delay=30.0)
    assert [policy.lock(n) for n in (1, 4, 5, 6, 7, 9, 10)] == [0, 0, 1, 2, 4, 16, 30]
    assert policy.lock(100_000) == 30  # a days-long attack's count
