"""SQLite for SQLAlchemy's asyncio engine, run on the event loop's own thread.

aiosqlite runs every call on a thread of its own and hands the result back through the loop: a
statement costs four such hand-offs (cursor, execute, fetch, close), each a thread switch that
competes with the loop for the GIL. Against a local file an indexed statement takes
microseconds: far less than the hand-offs (docs/decisions/2026-11-29-inline-sqlite.md).

So this module gives SQLAlchemy's aiosqlite dialect (through ``async_creator``) a connection
whose coroutines do the work inline, and the synchronous engine of the units of work
(``create_sqlite_engine``) its connections. Only waiting is asynchronous: SQLite's busy handler
would sleep on the loop's thread, so the busy timeout is 0 and a statement that meets another
process's lock is retried after an ``asyncio.sleep`` until :data:`BUSY_TIMEOUT` has passed.
Within one process writers never meet (group_commit.py queues them), and WAL readers do not
wait for the writer. What waits on the disk, a commit's fsync, is group_commit.py's: it runs on
a thread, once for several units of work.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from consult.private_files import private_file, private_if_present

T = TypeVar("T")

BUSY_TIMEOUT = 15.0
_BUSY_ERRORS = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}


def is_busy(exc: BaseException) -> bool:
    """SQLite's "database is locked": another process holds the lock we need."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _BUSY_ERRORS
    return "database is locked" in str(exc)


async def patiently(call: Callable[[], T]) -> T:
    """``call()``, again after a pause while it fails because another process holds the lock
    (also when SQLAlchemy has wrapped the driver's error), until :data:`BUSY_TIMEOUT`."""
    deadline = time.monotonic() + BUSY_TIMEOUT
    delay = 0.001
    while True:
        try:
            return call()
        except Exception as exc:
            if not is_busy(getattr(exc, "orig", None) or exc) or time.monotonic() >= deadline:
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)


class InlineCursor:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> InlineCursor:
        await patiently(lambda: self._cursor.execute(sql, parameters))
        return self

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> InlineCursor:
        rows = list(rows)
        await patiently(lambda: self._cursor.executemany(sql, rows))
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def nextset(self) -> None:
        return None

    async def setinputsizes(self, *sizes: Any) -> None:
        return None

    async def close(self) -> None:
        self._cursor.close()


class InlineConnection:
    """The part of aiosqlite's ``Connection`` that SQLAlchemy's dialect uses."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        # The dialect checks this attribute for "still open".
        self._connection: sqlite3.Connection | None = conn

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> InlineCursor:
        return InlineCursor(self._conn.cursor())

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> InlineCursor:
        return await self.cursor().execute(sql, parameters)

    async def commit(self) -> None:
        await patiently(self._conn.commit)

    async def rollback(self) -> None:
        self._conn.rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def close(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()

    def stop(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()


def connect(path: str) -> sqlite3.Connection:
    # The database holds health data: created 0600 before SQLite opens it, whatever the umask;
    # SQLite gives its -wal and -shm files the database file's mode (those of an older version
    # are closed too).
    private_file(Path(path))
    for suffix in ("-wal", "-shm"):
        private_if_present(Path(path + suffix))
    # isolation_level None: SQLAlchemy's "begin" event issues BEGIN itself (engine.py).
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout=0")
    return conn


def creator(path: str) -> Callable[[], Any]:
    """``async_creator`` for ``create_async_engine``: connections to the file at ``path``."""

    async def connect_inline() -> InlineConnection:
        return InlineConnection(connect(path))

    return connect_inline
