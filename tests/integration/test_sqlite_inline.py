"""SQLite statements run on the loop's thread (consult/storage/inline_sqlite.py): waiting for
another process's write lock must not stop the loop, and must end in a clear error when it
lasts too long."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from consult.errors import Unavailable
from consult.events import EventBus
from consult.storage import inline_sqlite
from consult.storage import tables as t
from consult.storage.engine import DatabaseConfigError, create_engine
from consult.storage.uow import Database
from tests import backends


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    return backends.sqlite_copy(sqlite_template, tmp_path)


def _hold_write_lock(url: str) -> sqlite3.Connection:
    """Another writer (as another process would be): holds SQLite's write lock until closed."""
    other = sqlite3.connect(sa.make_url(url).database, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    return other


class LoopWatch:
    """How late 10 ms sleeps wake up: a loop blocked by a waiting statement makes them late."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self._task = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(0.01)
            self.lags.append(time.monotonic() - before - 0.01)

    def stop(self) -> None:
        self._task.cancel()


async def _audit_rows(db: Database) -> int:
    async with db.reader() as uow:
        return len((await uow.conn.execute(sa.select(t.audit_log))).all())


async def test_a_writer_waits_for_another_process_without_stopping_the_loop(sqlite_url):
    db = Database(create_engine(sqlite_url), EventBus())
    other = _hold_write_lock(sqlite_url)

    async def write() -> None:
        async with db.uow() as uow:
            await uow.conn.execute(
                sa.insert(t.audit_log).values(
                    at=datetime.now(UTC), action="test", allowed=True, detail="inline"
                )
            )
            await uow.commit()

    watch = LoopWatch()
    try:
        task = asyncio.create_task(write())
        await asyncio.sleep(0.3)
        assert not task.done(), "the write went through while another writer held the lock"
        assert await _audit_rows(db) == 0
        other.rollback()
        await asyncio.wait_for(task, 2.0)
        assert await _audit_rows(db) == 1
        assert len(watch.lags) >= 20 and max(watch.lags) < 0.2
    finally:
        watch.stop()
        other.close()
        await db.dispose()


async def test_readers_do_not_wait_for_a_writer(sqlite_url):
    db = Database(create_engine(sqlite_url), EventBus())
    other = _hold_write_lock(sqlite_url)
    try:
        started = time.monotonic()
        async with db.reader() as uow:
            await uow.conn.execute(sa.select(t.audit_log))
        assert time.monotonic() - started < 0.5
    finally:
        other.close()
        await db.dispose()


async def test_a_lock_held_too_long_gives_an_error_and_the_loop_stays_free(sqlite_url, monkeypatch):
    monkeypatch.setattr(inline_sqlite, "BUSY_TIMEOUT", 0.5)
    db = Database(create_engine(sqlite_url), EventBus())
    other = _hold_write_lock(sqlite_url)
    watch = LoopWatch()
    try:
        started = time.monotonic()
        # Answered as the database unavailable (503 database_unavailable: storage/outage.py).
        with pytest.raises(Unavailable) as refused:
            async with db.uow():
                pass
        assert isinstance(refused.value.__cause__, OperationalError)
        assert "database is locked" in str(refused.value.__cause__)
        waited = time.monotonic() - started
        assert 0.5 <= waited < 2.0
        # The wait was asleep on the loop, not blocking it: the watcher ran all along.
        assert len(watch.lags) >= 20 and max(watch.lags) < 0.2
    finally:
        watch.stop()
        other.close()
        await db.dispose()


def test_sqlite_needs_a_file():
    with pytest.raises(DatabaseConfigError, match="SQLite needs a file"):
        create_engine("sqlite+aiosqlite://")
