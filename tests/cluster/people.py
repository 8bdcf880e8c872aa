"""Users of a cluster test and their HTTP requests through HAProxy.

Users are written straight to the database with a ready session, as in
tests/integration/test_two_processes.py (a login hashes a password with argon2 for most of a
second: 220 of them would take minutes on two cores). HTTP requests
that HAProxy answers itself (502/503: the node died under them) are tried again, as a user
would press the button again; a request the node answered is never repeated.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from sqlalchemy.ext.asyncio import create_async_engine

from tests.integration import test_two_processes as two_processes
from tests.integration.test_two_processes import User


async def add_users(
    database_url: str, role: str, count: int, specialty: str | None = None
) -> list[User]:
    """Verified users (patients on the premium plan, doctors of ``specialty``), each with a
    session valid for an hour."""
    engine = create_async_engine(database_url)
    try:
        return await two_processes.add_users(engine, role, count, specialty)
    finally:
        await engine.dispose()


class Http:
    """One connection pool to HAProxy for every user of a test."""

    PROXY_ANSWERS = (502, 503, 504)  # HAProxy's own: no node answered the request

    def __init__(self, base_url: str, limit: int = 60) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit))
        self.proxy_retries = 0

    async def call(
        self, user: User, method: str, path: str, json: Any = None, *, expect: int = 200
    ) -> Any:
        """The answer's body; asserts the status. HAProxy's own 502/503 are retried."""
        headers = {"Authorization": f"Bearer {user.token}"}
        for attempt in range(20):
            async with self.session.request(
                method, self.base_url + path, json=json, headers=headers
            ) as response:
                if response.status in self.PROXY_ANSWERS and "json" not in (
                    response.content_type or ""
                ):
                    self.proxy_retries += 1
                    await asyncio.sleep(0.25 * (attempt + 1))
                    continue
                body = await response.json() if response.status != 204 else None
                assert response.status == expect, (method, path, response.status, body)
                return body
        raise AssertionError(f"{method} {path}: no node answered in 20 tries")

    async def close(self) -> None:
        await self.session.close()
