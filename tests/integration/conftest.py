from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from consult.app import create_app
from consult.clock import ManualClock
from consult.settings import Settings
from tests.support import ApiClient, SocketClient


@pytest.fixture
def clock() -> ManualClock:
    """The server's clock: tests move it to run out offers and grace periods without sleeping."""
    return ManualClock(datetime.now(UTC).replace(microsecond=0))


def settings_for(database_url: str, tmp_path: Path, **overrides: object) -> Settings:
    """The integration tests' settings: no background sweeps (tests call
    services.sweeper.sweep() after moving the clock), and files (documents, recordings) in the
    test's own folder, whatever the database."""
    return Settings(
        database_url=database_url,
        demo=True,
        migrate_on_start=False,
        sweep_interval=0,
        documents_dir=str(tmp_path / "documents"),
        recordings_dir=str(tmp_path / "recordings"),
        **overrides,
    )


@pytest.fixture
async def server(
    database_url: str,
    clock: ManualClock,
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    tmp_path: Path,
) -> TestServer:
    settings = settings_for(database_url, tmp_path)
    return await aiohttp_server(create_app(settings, clock=clock))


@pytest.fixture
def base_url(server: TestServer) -> str:
    return str(server.make_url("/")).rstrip("/")


@pytest.fixture
async def api(base_url: str) -> AsyncIterator[Callable[..., Awaitable[ApiClient]]]:
    """``await api("anna@demo.test")``: a logged-in HTTP client (``api()`` for an anonymous one)."""
    made: list[ApiClient] = []

    async def make(email: str | None = None) -> ApiClient:
        client = ApiClient(base_url)
        made.append(client)
        return await client.login(email) if email else client

    yield make
    for client in made:
        await client.close()


@pytest.fixture
async def sockets(base_url: str) -> AsyncIterator[Callable[..., Awaitable[SocketClient]]]:
    """``await sockets(token)``: a connected Socket.IO client."""
    made: list[SocketClient] = []

    async def make(token: str | None) -> SocketClient:
        client = SocketClient()
        made.append(client)
        return await client.connect(base_url, token)

    yield make
    for client in made:
        if client.sio.connected:
            await client.close()
