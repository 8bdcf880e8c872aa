"""Unit of work: all-or-nothing, its events published only once it is durable.

On PostgreSQL a unit of work is a transaction of its own. On SQLite one that writes is a
savepoint in a transaction shared with the units of work around it, committed for them all on
the database thread (group_commit.py); one that only reads is a WAL snapshot of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Any, TypeAlias

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import Executable

from consult.events import Event, EventBus
from consult.storage.checkpoint import Checkpointer
from consult.storage.engine import READONLY, create_sqlite_engine
from consult.storage.group_commit import SqliteWriter
from consult.storage.inline_sqlite import is_busy, patiently
from consult.storage.outage import OutageWatch
from consult.storage.timing import SLOW_AFTER, StatementTimer

Result: TypeAlias = CursorResult[*tuple[Any, ...]]

# SQLite readers open at once (beside the writer's connection): a reader past this waits its
# turn on the loop, never in the pool (a blocked pool checkout would block the loop).
SQLITE_CONNECTIONS = 8


class Connection:
    """What a unit of work runs statements on, the same for both backends: ``await
    conn.execute(statement)`` gives SQLAlchemy's result."""

    dialect: sa.Dialect

    async def execute(self, statement: Executable, parameters: Any = None) -> Result:
        raise NotImplementedError

    async def begin(self) -> None:
        raise NotImplementedError

    async def commit(self) -> None:
        raise NotImplementedError

    async def rollback(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class _AsyncConnection(Connection):
    """PostgreSQL through asyncpg. A failure that says the database is unavailable comes out
    as ``database_unavailable`` (outage.py)."""

    def __init__(
        self, conn: AsyncConnection, statements: StatementTimer, outage: OutageWatch
    ) -> None:
        self._conn = conn
        self._statements = statements
        self._outage = outage
        self.dialect = conn.dialect

    async def execute(self, statement: Executable, parameters: Any = None) -> Result:
        try:
            result = await self._conn.execute(statement, parameters)
        except Exception as exc:
            self._outage.check(exc)
            raise
        if self._outage.down:
            self._outage.up()
        return result

    async def begin(self) -> None:
        try:
            await self._conn.begin()
        except Exception as exc:
            self._outage.check(exc)
            raise

    async def commit(self) -> None:
        started = time.perf_counter()
        try:
            await self._conn.commit()
        except Exception as exc:
            # Lost with the connection, the COMMIT may or may not have been applied: the
            # caller acknowledges nothing, and a client's retry finds what was stored.
            self._outage.check(exc)
            raise
        # The round trip (timed as statements are: timing.py).
        self._statements.record("COMMIT", time.perf_counter() - started)

    async def rollback(self) -> None:
        try:
            await self._conn.rollback()
        except Exception as exc:
            self._outage.check(exc)
            raise

    async def close(self) -> None:
        await self._conn.close()


class _SqliteConnection(Connection):
    """SQLite, a unit of work that only reads: statements run synchronously on the loop's
    thread (see inline_sqlite.py and ``create_sqlite_engine``) on a WAL snapshot; only waiting
    for another process's lock is asynchronous. Holds one of the database's connection slots
    until closed."""

    def __init__(self, conn: sa.Connection, slots: asyncio.Semaphore, outage: OutageWatch) -> None:
        self._conn = conn
        self._slots: asyncio.Semaphore | None = slots
        self._outage = outage
        self.dialect = conn.dialect

    async def execute(self, statement: Executable, parameters: Any = None) -> Result:
        try:
            try:
                result = self._conn.execute(statement, parameters)
            except sa.exc.OperationalError as exc:
                if exc.orig is None or not is_busy(exc.orig):
                    raise
                # Rarely, a WAL reader meets another process's lock (writers wait in begin()).
                result = await patiently(lambda: self._conn.execute(statement, parameters))
        except Exception as exc:  # the lock held past the busy timeout, a disk error
            self._outage.check(exc)
            raise
        # Not "up" yet: WAL readers go on while the writer cannot (the group's commit says).
        return result

    async def begin(self) -> None:
        self._conn.begin()  # BEGIN (deferred): a reader takes no lock

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        try:
            self._conn.close()
        finally:
            if self._slots is not None:
                self._slots.release()
                self._slots = None


class _GroupConnection(_SqliteConnection):
    """SQLite, a unit of work that writes: a savepoint in the writer's group (group_commit.py);
    its commit waits for the group's COMMIT, run on the database thread."""

    def __init__(self, writer: SqliteWriter, outage: OutageWatch) -> None:
        self._writer = writer
        self._outage = outage
        self.dialect = writer.dialect
        self._inside = False

    async def begin(self) -> None:
        try:
            self._conn = await self._writer.enter()
        except Exception as exc:  # the write lock held past the busy timeout
            self._outage.check(exc)
            raise
        self.dialect = self._conn.dialect
        self._inside = True

    async def commit(self) -> None:
        self._inside = False
        try:
            await self._writer.wait(self._writer.release())
        except Exception as exc:  # the group's COMMIT failed (a disk error): nothing is kept
            self._outage.check(exc)
            raise
        if self._outage.down:
            self._outage.up()

    async def rollback(self) -> None:
        if self._inside:
            self._inside = False
            self._writer.rollback()

    async def close(self) -> None:
        await self.rollback()


class Database:
    def __init__(
        self, engine: AsyncEngine, bus: EventBus, *, slow_statement: float = SLOW_AFTER
    ) -> None:
        self.engine = engine
        self.bus = bus
        # Every statement's duration (the /metrics histogram) and a WARNING for slow ones.
        self.statements = StatementTimer(slow_statement)
        self.statements.attach(engine.sync_engine)
        # Whether the database is reachable, as the last call found it (outage.py).
        self.outage = OutageWatch()
        self.writer_lock: asyncio.Lock | None = None
        self._sqlite: sa.Engine | None = None
        self._sqlite_slots: asyncio.Semaphore | None = None
        self._writer: SqliteWriter | None = None
        self._checkpointer: Checkpointer | None = None
        if engine.dialect.name == "sqlite":
            # The readers' connections, and the writer's.
            self._sqlite = create_sqlite_engine(engine.url, pool_size=SQLITE_CONNECTIONS + 1)
            self._sqlite_slots = asyncio.Semaphore(SQLITE_CONNECTIONS)
            self.statements.attach(self._sqlite)
            # SQLite has one writer, and every write transaction begins IMMEDIATE (engine.py).
            # Waiting for it in SQLite's busy handler convoys under load; units of work queued
            # in order on the loop, committed in groups on a thread, do not (group_commit.py).
            self._writer = SqliteWriter(self._sqlite, self.statements)
            self.writer_lock = self._writer.lock

    @property
    def commits(self) -> int:
        """SQLite: how many group COMMITs (each one fsync) ran on the database thread."""
        return self._writer.commits if self._writer is not None else 0

    async def connect(self, *, readonly: bool) -> Connection:
        if self._sqlite is None:
            try:
                conn = await self.engine.connect()
            except Exception as exc:  # refused, timed out, no connection slot left
                self.outage.check(exc)
                raise
            return _AsyncConnection(conn, self.statements, self.outage)
        if not readonly:
            assert self._writer is not None
            return _GroupConnection(self._writer, self.outage)
        assert self._sqlite_slots is not None
        await self._sqlite_slots.acquire()
        try:
            sync = self._sqlite.connect().execution_options(**{READONLY: True})
        except BaseException as exc:
            self._sqlite_slots.release()
            if isinstance(exc, Exception):
                self.outage.check(exc)
            raise
        return _SqliteConnection(sync, self._sqlite_slots, self.outage)

    def start_checkpoints(self, *, interval: float, max_wal_bytes: int) -> None:
        """SQLite: checkpoint the WAL on a thread of its own (checkpoint.py) until dispose();
        nothing on PostgreSQL."""
        database = self.engine.url.database
        if self._sqlite is not None and database and self._checkpointer is None:
            self._checkpointer = Checkpointer(
                database, interval=interval, max_wal_bytes=max_wal_bytes
            )
            self._checkpointer.start()

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self)

    @contextlib.asynccontextmanager
    async def postgres_statement(self) -> AsyncIterator[Any]:
        """PostgreSQL only: a pooled asyncpg connection with no transaction open, for one
        statement that is all-or-nothing by itself. Compared with a unit of work it saves the
        BEGIN and COMMIT round trips and SQLAlchemy's work per statement
        (docs/decisions/2026-11-29-chat-one-statement-on-postgresql.md); the caller writes the
        SQL and handles asyncpg's errors."""
        assert self._sqlite is None, "PostgreSQL only"
        try:
            async with self.engine.connect() as conn:
                raw = await conn.get_raw_connection()
                yield raw.driver_connection
        except Exception as exc:  # asyncpg's own errors: SQLAlchemy sees none of them
            self.outage.check(exc)
            raise
        if self.outage.down:
            self.outage.up()

    def reader(self) -> UnitOfWork:
        """A transaction that only reads: on SQLite it neither takes nor waits for the writer
        (it reads a WAL snapshot); it must not write."""
        return UnitOfWork(self, readonly=True)

    async def dispose(self) -> None:
        if self._checkpointer is not None:
            checkpointer, self._checkpointer = self._checkpointer, None
            await asyncio.to_thread(checkpointer.stop)
        if self._writer is not None:
            await self._writer.close()
        await self.engine.dispose()
        if self._sqlite is not None:
            self._sqlite.dispose()


class UnitOfWork:
    """``async with db.uow() as uow: ...; await uow.commit()``; no commit means rollback."""

    conn: Connection

    def __init__(self, db: Database, *, readonly: bool = False) -> None:
        self._db = db
        self._readonly = readonly
        self._events: list[Event] = []
        self._after_rollback: list[Callable[[], Awaitable[None]]] = []
        self._committed = False
        self._open = False

    @property
    def dialect(self) -> str:
        return self.conn.dialect.name

    async def __aenter__(self) -> UnitOfWork:
        self.conn = await self._db.connect(readonly=self._readonly)
        self._open = True
        try:
            await self.conn.begin()
        except BaseException:
            await self._close()
            raise
        return self

    async def _close(self) -> None:
        if self._open:
            self._open = False
            await self.conn.close()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if not self._committed:
                await self.conn.rollback()
        finally:
            await self._close()
        if not self._committed:
            for callback in self._after_rollback:
                await callback()

    def after_rollback(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Run ``callback`` once this transaction has rolled back and released its locks (used to
        record a refused access in a transaction of its own)."""
        self._after_rollback.append(callback)

    def collect(self, event: Event) -> None:
        self._events.append(event)

    async def commit(self) -> None:
        """Returns once the transaction is durable (on SQLite, its group's COMMIT); raises, and
        nothing is published, if it could not be."""
        try:
            await self.conn.commit()
        except asyncio.CancelledError:
            # Cancelled while its group's COMMIT runs, which goes on: the writes may well be
            # durable, so this is no rollback (after_rollback callbacks do not run).
            self._committed = True
            raise
        self._committed = True
        # Subscribers may run units of work of their own: the connection goes back to the pool
        # first. Publishing while holding it, each busy commit needed a second connection, and
        # under load every pooled connection waited for another (queue_bench froze).
        await self._close()
        events, self._events = self._events, []
        for event in events:
            await self._db.bus.publish(event)
