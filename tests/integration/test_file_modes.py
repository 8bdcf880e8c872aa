"""Clinical files on disk are the server's alone, whatever the umask: the SQLite database and
its -wal and -shm files, documents and their folder (recordings: test_recording_playback.py).
Files 0600, folders 0700."""

from __future__ import annotations

import os
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from consult.app import create_app
from consult.clock import ManualClock
from consult.storage.migrate import upgrade
from tests.backends import off_loop
from tests.integration.conftest import settings_for
from tests.integration.test_documents import upload
from tests.support import ApiClient, jpeg


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(autouse=True)
def lax_umask() -> Any:
    """The common default: without care, new files would be readable by every account."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


async def test_the_sqlite_database_and_its_wal_files_are_the_servers_alone(
    tmp_path: Path, clock: ManualClock, aiohttp_server: Callable[..., Awaitable[TestServer]]
) -> None:
    path = tmp_path / "consult.db"
    url = f"sqlite+aiosqlite:///{path}"
    off_loop(upgrade, url)  # created by the migrations, as `consult migrate` does
    assert mode(path) == 0o600
    server = await aiohttp_server(create_app(settings_for(url, tmp_path), clock=clock))
    client = ApiClient(str(server.make_url("/")).rstrip("/"))
    try:
        await client.login("anna@demo.test")  # writes (a session), so the WAL is in use
        for name in ("consult.db", "consult.db-wal", "consult.db-shm"):
            assert mode(tmp_path / name) == 0o600, name
    finally:
        await client.close()


async def test_an_older_databases_lax_mode_is_closed_on_start(
    tmp_path: Path, clock: ManualClock, aiohttp_server: Callable[..., Awaitable[TestServer]]
) -> None:
    path = tmp_path / "consult.db"
    url = f"sqlite+aiosqlite:///{path}"
    off_loop(upgrade, url)
    os.chmod(path, 0o644)  # as an earlier version left it
    await aiohttp_server(create_app(settings_for(url, tmp_path), clock=clock))
    assert mode(path) == 0o600


async def test_an_uploaded_document_and_its_folder_are_the_servers_alone(
    api: Any, tmp_path: Path
) -> None:
    anna = await api("anna@demo.test")
    await upload(anna, jpeg(), "rash.jpg")
    folder = tmp_path / "documents"
    (stored,) = [p for p in folder.iterdir()]
    assert mode(folder) == 0o700
    assert mode(stored) == 0o600
