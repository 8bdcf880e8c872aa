"""Unit of work: one transaction, events published only after it commits."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from consult.events import Event, EventBus


class Database:
    def __init__(self, engine: AsyncEngine, bus: EventBus) -> None:
        self.engine = engine
        self.bus = bus

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self)

    async def dispose(self) -> None:
        await self.engine.dispose()


class UnitOfWork:
    """``async with db.uow() as uow: ...; await uow.commit()``; no commit means rollback."""

    conn: AsyncConnection

    def __init__(self, db: Database) -> None:
        self._db = db
        self._events: list[Event] = []
        self._after_rollback: list[Callable[[], Awaitable[None]]] = []
        self._committed = False

    @property
    def dialect(self) -> str:
        return self.conn.dialect.name

    async def __aenter__(self) -> UnitOfWork:
        self.conn = await self._db.engine.connect()
        await self.conn.begin()
        return self

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
            await self.conn.close()
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
        events, self._events = self._events, []
        for event in events:
            await self._db.bus.publish(event)
