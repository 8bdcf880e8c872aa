"""The event-loop watchdog: a served app whose loop is blocked logs the loop thread's stack."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from consult.app import create_app
from tests.integration.conftest import settings_for
from tests.support import ApiClient


def hold_the_loop_for_a_while() -> None:
    time.sleep(1.5)  # what a blocking call or a coroutine that never yields does to the loop


def watchdogs() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "loop-watchdog"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_blocked_loop_logs_one_record_with_the_blocking_function_in_the_stack(
    database_url: str,
    tmp_path: Path,
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = settings_for(database_url, tmp_path, loop_watchdog_threshold=0.3)
    # Only this app's watchdog counts: one left by an earlier test is not this test's subject.
    earlier = set(watchdogs())
    server = await aiohttp_server(create_app(settings))
    ours = set(watchdogs()) - earlier
    assert len(ours) == 1  # started with the app
    client = ApiClient(str(server.make_url("/")))
    try:
        await client.call("GET", "/healthz")
        caplog.set_level(logging.WARNING, logger="consult.watchdog")
        caplog.clear()
        hold_the_loop_for_a_while()
        await client.call("GET", "/healthz")  # the loop turns again; the server answers
    finally:
        await client.close()
    records = [
        r.getMessage()
        for r in caplog.records
        if r.name == "consult.watchdog" and "hold_the_loop_for_a_while" in r.getMessage()
    ]
    assert len(records) == 1, records  # one record per stall, the whole stack in it
    assert records[0].startswith("event loop blocked for")
    assert "in hold_the_loop_for_a_while\n    time.sleep(1.5)" in records[0]
    await server.close()
    assert not ours & set(watchdogs())  # stopped at shutdown
