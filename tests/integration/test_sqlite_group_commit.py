"""SQLite's group commit (consult/storage/group_commit.py): units of work share a transaction,
each under its own savepoint, and the group's COMMIT (its fsync) runs on the database thread,
so the event loop goes on while the disk works. Real database files throughout."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from consult.errors import Unavailable
from consult.events import Event, EventBus
from consult.storage import group_commit
from consult.storage.engine import create_engine
from consult.storage.group_commit import GroupRolledBack
from consult.storage.uow import Database
from tests import backends
from tests.integration.test_sqlite_inline import LoopWatch


@dataclass(frozen=True)
class Noted(Event):
    name: str


@pytest.fixture
async def db(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[Database]:
    database = Database(create_engine(backends.sqlite_copy(sqlite_template, tmp_path)), EventBus())
    async with database.uow() as uow:
        await uow.conn.execute(sa.text("CREATE TABLE parent (id INTEGER PRIMARY KEY)"))
        await uow.conn.execute(
            sa.text("CREATE TABLE child (parent_id INTEGER NOT NULL REFERENCES parent (id))")
        )
        await uow.commit()
    yield database
    await database.dispose()


async def _parents(db: Database) -> list[int]:
    async with db.reader() as uow:
        rows = await uow.conn.execute(sa.text("SELECT id FROM parent ORDER BY id"))
        return [row[0] for row in rows]


async def _turns() -> None:
    """A few loop turns: the tasks just created reach the writer's queue."""
    for _ in range(3):
        await asyncio.sleep(0)


async def _in_one_group(db: Database, *units: Callable[[], Awaitable[None]]) -> None:
    """Run ``units``, queued for the writer while another holds it (as they would behind a
    COMMIT in progress), so that they form the next group together."""
    lock = db.writer_lock
    assert lock is not None
    await lock.acquire()
    tasks = [asyncio.create_task(unit()) for unit in units]
    await _turns()
    lock.release()
    await asyncio.gather(*tasks)


async def _add(db: Database, parent: int) -> None:
    async with db.uow() as uow:
        await uow.conn.execute(sa.text("INSERT INTO parent VALUES (:id)"), {"id": parent})
        await uow.commit()


async def test_a_unit_rolled_back_in_a_group_keeps_the_others_writes(db: Database):
    rolled_back: list[str] = []

    async def failing() -> None:
        with pytest.raises(RuntimeError):
            async with db.uow() as uow:
                await uow.conn.execute(sa.text("INSERT INTO parent VALUES (2)"))

                async def note() -> None:
                    rolled_back.append("second")

                uow.after_rollback(note)
                raise RuntimeError("refused")

    commits = db.commits
    await _in_one_group(db, lambda: _add(db, 1), failing, lambda: _add(db, 3))
    assert await _parents(db) == [1, 3]
    assert rolled_back == ["second"]
    assert db.commits == commits + 1, "the three units shared one group"


async def test_concurrent_units_share_fewer_fsyncs_than_units(db: Database):
    commits = db.commits
    await asyncio.gather(*(_add(db, n) for n in range(1, 41)))
    assert await _parents(db) == list(range(1, 41))
    assert db.commits - commits <= 4, db.commits - commits


async def test_a_full_group_commits_while_others_wait(
    db: Database, monkeypatch: pytest.MonkeyPatch
):
    """A steady stream of units does not postpone the first ones' commit for ever."""
    monkeypatch.setattr(group_commit, "MAX_UNITS", 5)
    commits = db.commits
    await asyncio.gather(*(_add(db, n) for n in range(1, 21)))
    assert await _parents(db) == list(range(1, 21))
    assert db.commits - commits >= 4


async def test_a_failing_commit_fails_every_unit_in_its_group(db: Database):
    published: list[Event] = []

    async def subscriber(event: Event) -> None:
        published.append(event)

    db.bus.subscribe(subscriber)
    outcomes: dict[str, str] = {}

    async def orphan() -> None:
        # Checked at COMMIT, not at the statement: the group's COMMIT fails.
        async with db.uow() as uow:
            await uow.conn.execute(sa.text("PRAGMA defer_foreign_keys = ON"))
            await uow.conn.execute(sa.text("INSERT INTO child VALUES (99)"))
            uow.collect(Noted("orphan"))
            try:
                await uow.commit()
                outcomes["orphan"] = "acknowledged"
            except IntegrityError:
                outcomes["orphan"] = "failed"

    async def innocent() -> None:
        async with db.uow() as uow:
            await uow.conn.execute(sa.text("INSERT INTO parent VALUES (7)"))
            uow.collect(Noted("innocent"))
            try:
                await uow.commit()
                outcomes["innocent"] = "acknowledged"
            except IntegrityError:
                outcomes["innocent"] = "failed"

    await _in_one_group(db, orphan, innocent)
    assert outcomes == {"orphan": "failed", "innocent": "failed"}
    assert published == [], "no event of an unacknowledged unit"
    assert await _parents(db) == []
    # The writer goes on: the next unit commits.
    await _add(db, 8)
    assert await _parents(db) == [8]


async def test_the_loop_runs_while_a_commit_waits_for_the_disk(db: Database):
    """A disk slow to fsync, made by SQLite's trace hook sleeping 300 ms as each COMMIT starts
    (it runs on the thread that runs the COMMIT). The loop keeps waking its timers on time and
    serves a reader meanwhile; the writer's commit returns, and its event goes out, only once
    the COMMIT is done."""
    slow = 0.3

    def on_statement(sql: str) -> None:
        if sql == "COMMIT":
            time.sleep(slow)

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.set_trace_callback(on_statement)

    await db.dispose()  # connections are made afresh, with the hook
    assert db._sqlite is not None
    sa.event.listen(db._sqlite, "connect", on_connect)
    published: list[float] = []

    async def subscriber(_event: Event) -> None:
        published.append(time.monotonic())

    db.bus.subscribe(subscriber)
    watch = LoopWatch()
    try:
        started = time.monotonic()
        async with db.uow() as uow:
            await uow.conn.execute(sa.text("INSERT INTO parent VALUES (1)"))
            uow.collect(Noted("written"))
            commit = asyncio.create_task(uow.commit())
            await asyncio.sleep(slow / 3)
            assert not commit.done()
            read_started = time.monotonic()
            assert await _parents(db) == [], "not durable yet: not visible"
            assert time.monotonic() - read_started < slow / 3
            assert published == []
            await commit
        assert time.monotonic() - started >= slow
        assert published and published[0] - started >= slow
        assert await _parents(db) == [1]
        assert len(watch.lags) >= 15 and max(watch.lags) < slow / 3, max(watch.lags)
    finally:
        watch.stop()


async def test_the_write_lock_is_free_as_soon_as_the_group_committed(db: Database):
    """Another process (the CLI, a second server) can write between groups."""
    await _add(db, 1)
    path = db.engine.url.database
    assert path is not None
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO parent VALUES (2)")
        other.execute("COMMIT")
    finally:
        other.close()
    await _add(db, 3)
    assert await _parents(db) == [1, 2, 3]


async def test_a_statement_that_rolls_back_the_whole_transaction_fails_the_group(db: Database):
    """``INSERT OR ROLLBACK`` ends SQLite's transaction, not just the statement: the units that
    had joined the group lose their writes, so their commit fails too, as the database
    unavailable for a moment (their clients try again: storage/outage.py)."""
    outcomes: dict[str, str] = {}

    async def first() -> None:
        try:
            await _add(db, 5)
            outcomes["first"] = "acknowledged"
        except Unavailable as exc:
            assert isinstance(exc.__cause__, GroupRolledBack)
            outcomes["first"] = "failed"

    async def clashing() -> None:
        try:
            async with db.uow() as uow:
                await uow.conn.execute(sa.text("INSERT OR ROLLBACK INTO parent VALUES (5)"))
                await uow.commit()
            outcomes["clashing"] = "acknowledged"
        except IntegrityError:
            outcomes["clashing"] = "failed"

    await _in_one_group(db, first, clashing)
    assert outcomes == {"first": "failed", "clashing": "failed"}
    assert await _parents(db) == []
    await _add(db, 6)
    assert await _parents(db) == [6]
