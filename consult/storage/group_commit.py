"""SQLite's writer: units of work share one transaction, committed on the database thread.

A durable commit waits for the disk: with ``synchronous=FULL`` SQLite fsyncs the WAL before
COMMIT returns, milliseconds during which, on the event loop's thread, no socket is served and
no media packet relayed. So the writer keeps statements on the loop (inline_sqlite.py: they
take microseconds) and sends only the COMMIT to a thread of its own, and it commits several
units of work at once (group commit):

- one connection writes. The first unit of work to arrive opens a *group*: ``BEGIN IMMEDIATE``,
  retried after an ``asyncio.sleep`` while another process holds the write lock. Each unit of
  work runs inside it under a savepoint, one at a time (:attr:`SqliteWriter.lock`): its
  rollback (``ROLLBACK TO``) undoes its own writes only; its commit releases the savepoint and
  waits for the group's COMMIT.
- the group is committed when no unit of work is inside it or waiting to enter, or once it has
  taken every unit that was waiting when it opened (at most :data:`MAX_UNITS`; later arrivals
  go to the next group, so a steady stream does not postpone the first ones'
  acknowledgement): one fsync, on the database thread, for every unit that joined. Units
  arriving meanwhile wait, asleep on the loop, and form the next group: under load a group
  holds what arrived during the previous COMMIT.
  The write lock is held only while units are inside or the COMMIT runs, never while idle, so
  another process (the CLI, a second server) gets its turn.
- a unit of work's commit returns only once its group is durable (its events are published
  after that, uow.py); readers' WAL snapshots see its writes from then on too. A COMMIT that
  fails, or a statement after which SQLite has rolled the whole transaction back (a full disk,
  an I/O error), fails every unit that had joined the group: none was acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import sqlalchemy as sa

from consult.storage.inline_sqlite import patiently
from consult.storage.timing import StatementTimer

log = logging.getLogger(__name__)

MAX_UNITS = 256  # units of work in one group, at most


class GroupRolledBack(sa.exc.OperationalError):
    """SQLite rolled back the group's transaction (after a unit of work's failed statement):
    the writes of the units that had joined it are gone."""

    def __init__(self) -> None:
        super().__init__("COMMIT", None, Exception("the group's transaction was rolled back"))


class _Group:
    """One transaction shared by units of work, and the future they wait on."""

    def __init__(self, changes: int, quota: int) -> None:
        self.durable: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Nobody may be left waiting to see a failure: still, it must not be reported unseen.
        self.durable.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.changes = changes  # the connection's total_changes when the group began
        self.quota = min(quota, MAX_UNITS)  # units it takes: those waiting when it opened
        self.entered = 0  # units of work that began in it
        self.units = 0  # units of work whose writes joined it

    def full(self) -> bool:
        return self.entered >= self.quota


class SqliteWriter:
    """The database's one writing connection, its group commit and its database thread."""

    def __init__(self, engine: sa.Engine, statements: StatementTimer) -> None:
        self._engine = engine
        self._statements = statements
        self.dialect = engine.dialect
        # Held by the unit of work inside the group, or by the group's COMMIT.
        self.lock = asyncio.Lock()
        self._thread: ThreadPoolExecutor | None = None  # started with the first COMMIT
        self._conn: sa.Connection | None = None
        self._group: _Group | None = None
        self._wanting = 0  # units of work inside the group or waiting for the lock
        self._commits: set[asyncio.Task[None]] = set()
        self.commits = 0  # COMMITs sent to the database thread (groups that wrote)

    # -- a unit of work's side ----------------------------------------------------------------

    async def enter(self) -> sa.Connection:
        """Wait for the writer, join (or open) the group and begin the unit's savepoint."""
        self._wanting += 1
        try:
            await self.lock.acquire()
        except BaseException:
            self._wanting -= 1
            self._commit_if_abandoned()
            raise
        try:
            conn = self._connection()
            if self._group is None:
                await patiently(lambda: _begin(conn))
                self._group = _Group(_raw(conn).total_changes, quota=self._wanting)
            _raw(conn).execute("SAVEPOINT uow")
            self._group.entered += 1
        except BaseException:
            self._leave()
            raise
        return conn

    def release(self) -> asyncio.Future[None]:
        """The unit's writes join the group: the future completes once the group is durable."""
        group = self._group
        assert group is not None and self._conn is not None
        try:
            _raw(self._conn).execute("RELEASE uow")
        except BaseException:
            self.rollback()
            raise
        group.units += 1
        self._leave()
        return group.durable

    def rollback(self) -> None:
        """Undo the unit's own writes (the group's other units keep theirs)."""
        assert self._conn is not None
        raw = _raw(self._conn)
        try:
            if raw.in_transaction:
                raw.execute("ROLLBACK TO uow")
                raw.execute("RELEASE uow")
        finally:
            if not raw.in_transaction:
                self._fail_group(GroupRolledBack())
            self._leave()

    async def wait(self, durable: asyncio.Future[None]) -> None:
        # Shielded: a cancelled unit of work must not cancel the group's other units' wait.
        await asyncio.shield(durable)

    # -- the group ----------------------------------------------------------------------------

    def _leave(self) -> None:
        self._wanting -= 1
        group = self._group
        if group is None:
            self.lock.release()
        elif self._wanting == 0 or group.full():
            # The lock passes to the COMMIT: units arriving meanwhile wait for the next group.
            self._spawn(self._commit(group))
        else:
            self.lock.release()

    def _commit_if_abandoned(self) -> None:
        """A unit of work gave up waiting for the lock: if it was the group's last hope, the
        group commits now."""
        if self._wanting == 0 and self._group is not None and not self.lock.locked():
            self._spawn(self._commit_when_free())

    async def _commit_when_free(self) -> None:
        await self.lock.acquire()
        if self._group is None:
            self.lock.release()
        else:
            await self._commit(self._group)

    def _spawn(self, commit: Any) -> None:
        task = asyncio.get_running_loop().create_task(commit)
        self._commits.add(task)
        task.add_done_callback(self._commits.discard)

    async def _commit(self, group: _Group) -> None:
        """With the lock held: make the group durable and tell its units."""
        assert self._conn is not None
        conn = self._conn
        try:
            if group.units == 0:
                conn.rollback()  # nobody's writes to keep
            elif _raw(conn).total_changes == group.changes:
                conn.commit()  # nothing written: no fsync, no need for the thread
            else:
                await self._durable_commit(conn)
        except Exception as exc:
            self._fail_group(exc)
        else:
            if not group.durable.done():
                group.durable.set_result(None)
        finally:
            if self._group is group:
                self._group = None
            self.lock.release()

    async def _durable_commit(self, conn: sa.Connection) -> None:
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-commit")
        # The driver's commit alone: C code that lets go of the GIL while the disk works (the
        # thread needs the GIL back from a busy loop each time it runs Python).
        commit = loop.run_in_executor(self._thread, _raw(conn).commit)
        try:
            await asyncio.shield(commit)
        except asyncio.CancelledError:
            # The COMMIT goes on in the thread: the connection is not ours until it is done.
            await asyncio.wait([commit])
            raise
        except sqlite3.Error as exc:
            raise sa.exc.DBAPIError.instance("COMMIT", None, exc, sqlite3.Error) from exc
        conn.commit()  # SQLAlchemy's bookkeeping: SQLite's transaction is committed already
        self.commits += 1
        self._statements.record("COMMIT", time.perf_counter() - started)

    def _fail_group(self, exc: BaseException) -> None:
        group, self._group = self._group, None
        if group is None:
            return
        if self._conn is not None:
            # SQLAlchemy forgets a transaction whose COMMIT failed without rolling it back
            # (a deferred constraint leaves it open): SQLite's is rolled back by hand.
            with contextlib.suppress(Exception):
                self._conn.rollback()
            with contextlib.suppress(Exception):
                _raw(self._conn).rollback()
        if not group.durable.done():
            log.warning("a group of %d units of work was not committed: %s", group.units, exc)
            group.durable.set_exception(exc)

    def _connection(self) -> sa.Connection:
        if self._conn is None:
            self._conn = self._engine.connect()
        return self._conn

    async def close(self) -> None:
        """Wait for the COMMITs under way, then close the connection and the thread."""
        while self._commits:
            await asyncio.gather(*self._commits, return_exceptions=True)
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._thread is not None:
            thread, self._thread = self._thread, None
            thread.shutdown(wait=True)


def _raw(conn: sa.Connection) -> Any:
    """The sqlite3 connection under SQLAlchemy's (savepoints bypass SQLAlchemy's bookkeeping:
    one unit at a time, and the group's transaction is SQLAlchemy's own)."""
    return conn.connection.dbapi_connection


def _begin(conn: sa.Connection) -> None:
    try:
        conn.begin()  # BEGIN IMMEDIATE (engine.py)
    except sa.exc.OperationalError:
        # Another process is writing: not begun, try again.
        conn.rollback()
        raise
