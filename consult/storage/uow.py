"""Unit of work: one transaction, events published only after it commits."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from consult.events import Event, EventBus
from consult.storage.engine import READONLY


class Database:
    def __init__(self, engine: AsyncEngine, bus: EventBus) -> None:
        self.engine = engine
        self.bus = bus
        # SQLite has one writer, and every transaction here begins IMMEDIATE (engine.py). Waiting
        # for it in SQLite's busy handler (sleeps of up to 100 ms, holding a pooled connection)
        # convoys under load; one transaction at a time, queued in order on the loop, does not.
        self.writer_lock: asyncio.Lock | None = (
            asyncio.Lock() if engine.dialect.name == "sqlite" else None
        )

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self)

    def reader(self) -> UnitOfWork:
        """A transaction that only reads: on SQLite it neither takes nor waits for the writer
        (it reads a WAL snapshot); it must not write."""
        return UnitOfWork(self, readonly=True)

    async def dispose(self) -> None:
        await self.engine.dispose()


class UnitOfWork:
    """``async with db.uow() as uow: ...; await uow.commit()``; no commit means rollback."""

    conn: AsyncConnection

    def __init__(self, db: Database, *, readonly: bool = False) -> None:
        self._db = db
        self._readonly = readonly
        self._events: list[Event] = []
        self._after_rollback: list[Callable[[], Awaitable[None]]] = []
        self._committed = False
        self._holding = False
        self._open = False

    @property
    def dialect(self) -> str:
        return self.conn.dialect.name

    async def __aenter__(self) -> UnitOfWork:
        lock = self._db.writer_lock
        if lock is not None and not self._readonly:
            await lock.acquire()
            self._holding = True
        try:
            self.conn = await self._db.engine.connect()
            if self._readonly:
                await self.conn.execution_options(**{READONLY: True})
            self._open = True
            await self.conn.begin()
        except BaseException:
            if self._open:
                await self._close()
            else:
                self._release()
            raise
        return self

    async def _close(self) -> None:
        if self._open:
            self._open = False
            try:
                await self.conn.close()
            finally:
                self._release()

    def _release(self) -> None:
        if self._holding and self._db.writer_lock is not None:
            self._holding = False
            self._db.writer_lock.release()

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
        await self.conn.commit()
        self._committed = True
        # Subscribers may run units of work of their own: the connection goes back to the pool
        # first. Publishing while holding it, each busy commit needed a second connection, and
        # under load every pooled connection waited for another (queue_bench froze).
        await self._close()
        events, self._events = self._events, []
        for event in events:
            await self._db.bus.publish(event)
