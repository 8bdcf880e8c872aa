"""SQLite is durable (every commit fsyncs the WAL) and its checkpoints run on a thread of their
own (consult/storage/checkpoint.py), never inside a commit on the event loop's thread."""

from __future__ import annotations

import asyncio
import errno
import os
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestServer

from consult.app import create_app
from consult.events import EventBus
from consult.http.routing import SERVICES
from consult.storage.checkpoint import Checkpointer
from consult.storage.engine import create_engine
from consult.storage.uow import Database
from tests import backends
from tests.integration.conftest import settings_for
from tests.support import wait_for

# SQLite's default auto-checkpoint runs in the commit that takes the WAL past 1,000 pages.
DEFAULT_AUTOCHECKPOINT_PAGES = 1000
PAGE = 4096


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    return backends.sqlite_copy(sqlite_template, tmp_path)


def _wal_size(url: str) -> int:
    try:
        return os.stat(str(sa.make_url(url).database) + "-wal").st_size
    except FileNotFoundError:
        return 0


async def _write_pages(db: Database, pages: int) -> None:
    """About ``pages`` pages of new rows, in 50 commits."""
    async with db.uow() as uow:
        await uow.conn.execute(sa.text("CREATE TABLE IF NOT EXISTS ballast (body BLOB)"))
        await uow.commit()
    per_commit = pages * PAGE // 50
    for _ in range(50):
        async with db.uow() as uow:
            await uow.conn.execute(
                sa.text("INSERT INTO ballast VALUES (:body)"), {"body": os.urandom(per_commit)}
            )
            await uow.commit()


async def test_commits_are_durable_and_never_checkpoint(sqlite_url):
    db = Database(create_engine(sqlite_url), EventBus())  # no checkpoint thread started
    try:
        async with db.reader() as uow:
            synchronous = (await uow.conn.execute(sa.text("PRAGMA synchronous"))).scalar()
        assert synchronous == 2, "synchronous=FULL: each commit fsyncs the WAL"
        await _write_pages(db, 2 * DEFAULT_AUTOCHECKPOINT_PAGES)
        # Every frame written is still in the WAL: no commit copied it to the database file
        # (one that had would have restarted the WAL at a later commit). A side connection
        # counts them while the app's are open (the last connection to close checkpoints).
        side = sqlite3.connect(str(sa.make_url(sqlite_url).database))
        try:
            busy, frames, _copied = side.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        finally:
            side.close()
    finally:
        await db.dispose()
    assert busy == 0
    assert frames > 1.5 * DEFAULT_AUTOCHECKPOINT_PAGES


async def test_the_checkpoint_thread_empties_the_wal_while_the_app_runs(
    sqlite_url: str,
    tmp_path: Path,
    aiohttp_server: Callable[..., Awaitable[TestServer]],
):
    settings = settings_for(sqlite_url, tmp_path, sqlite_checkpoint_interval=0.5)
    server = await aiohttp_server(create_app(settings))
    db = server.app[SERVICES].db
    await _write_pages(db, 1500)
    grown = _wal_size(sqlite_url)
    assert grown > 1000 * PAGE
    # Idle now: the thread copies the frames (PASSIVE), then truncates the WAL to nothing.
    checkpointer = db._checkpointer
    assert checkpointer is not None
    await wait_for(
        lambda: _wal_size(sqlite_url) == 0 and checkpointer.checkpoints["TRUNCATE"] >= 1,
        30.0,
        "the WAL to be truncated",
    )
    assert checkpointer.checkpoints["PASSIVE"] >= 1
    # Everything written is in the database file.
    async with db.reader() as uow:
        n = (await uow.conn.execute(sa.text("SELECT count(*) FROM ballast"))).scalar()
    assert n == 50
    await server.close()
    assert db._checkpointer is None, "the thread is stopped at shutdown"


async def test_the_checkpoint_thread_lives_through_failures(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
):
    """A checkpoint that fails (a disk error) is logged once and tried again: the thread goes
    on, and checkpoints the WAL once the disk works. The failure is stood in for (the WAL's
    size cannot be read): a real disk error cannot be made here."""
    db = Database(create_engine(sqlite_url), EventBus())  # the app's connections stay open
    try:
        await _write_pages(db, 200)
        assert _wal_size(sqlite_url) > 0
        checkpointer = Checkpointer(
            str(sa.make_url(sqlite_url).database), interval=0.2, max_wal_bytes=10**9
        )
        failing = threading.Event()
        failing.set()
        real_size = checkpointer._wal_size

        def wal_size() -> int:
            if failing.is_set():
                raise OSError(errno.EIO, "Input/output error")
            return real_size()

        checkpointer._wal_size = wal_size  # type: ignore[method-assign]
        checkpointer.start()
        try:
            await asyncio.sleep(1.0)  # five looks, each failing
            assert checkpointer._thread is not None and checkpointer._thread.is_alive()
            failing.clear()
            await wait_for(lambda: _wal_size(sqlite_url) == 0, 10.0, "the WAL to be truncated")
        finally:
            await asyncio.to_thread(checkpointer.stop)
    finally:
        await db.dispose()
    said = [r.getMessage() for r in caplog.records if r.name == "consult.storage.checkpoint"]
    assert len(said) == 2 and said[0] == "SQLite checkpoint failed; retrying", said
    assert said[1].startswith("SQLite checkpoint works again ("), said
