"""Engine by URL: ``sqlite+aiosqlite:///file.db`` (embedded default) or ``postgresql+asyncpg://``."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import ArgumentError, DisconnectionError, NoSuchModuleError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import QueuePool

from consult.storage import inline_sqlite

READONLY = "consult_readonly"
CONNECT_TIMEOUT = 5.0  # seconds, for a new PostgreSQL connection


class DatabaseConfigError(RuntimeError):
    """The database URL names a backend this installation cannot use."""


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    if not (url.startswith("sqlite+aiosqlite") or url.startswith("postgresql+asyncpg")):
        raise DatabaseConfigError(
            f"unsupported database URL scheme in {sa.make_url(url).render_as_string()!r}: "
            "use sqlite+aiosqlite:///path.db or postgresql+asyncpg://user@host/db"
        )
    if is_sqlite(url):
        database = sa.make_url(url).database
        if not database or database == ":memory:":
            raise DatabaseConfigError("SQLite needs a file: use sqlite+aiosqlite:///path.db")
        # Statements run on the loop's thread (inline_sqlite.py), not on aiosqlite's threads.
        kwargs.setdefault("async_creator", inline_sqlite.creator(database))
        if "poolclass" not in kwargs:
            # SQLite has one writer at a time: a writer and WAL readers beside it need no more.
            kwargs.setdefault("pool_size", 2)
            kwargs.setdefault("max_overflow", 1)
    else:
        # asyncpg waits 60 s for a connection by default: a server out of reach (packets
        # dropped, not refused) would hold every request that long.
        kwargs["connect_args"] = {"timeout": CONNECT_TIMEOUT, **kwargs.get("connect_args", {})}
    try:
        # hide_parameters: a failing statement's log line must not carry message bodies.
        engine = create_async_engine(url, hide_parameters=True, **kwargs)
    except (NoSuchModuleError, ModuleNotFoundError, ArgumentError) as exc:
        raise DatabaseConfigError(f"cannot open database backend: {exc}") from exc
    if is_sqlite(url):
        _configure_sqlite(engine.sync_engine)
    else:
        event.listen(engine.sync_engine, "checkout", _drop_if_closed)
    return engine


def _drop_if_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """A pooled connection whose socket was closed meanwhile (PostgreSQL restarted, a proxy
    cut it) is replaced at checkout rather than failing the request that takes it: asyncpg
    knows without a round trip."""
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the pooled connection was closed")


def create_sqlite_engine(url: str | sa.URL, *, pool_size: int) -> sa.Engine:
    """The synchronous engine that SQLite units of work use (uow.py, group_commit.py):
    statements run on the loop's thread anyway (inline_sqlite.py), and SQLAlchemy's asyncio
    layer around them (a greenlet and four awaits per statement) would cost more than the
    statement (docs/decisions/2026-11-29-inline-sqlite.md)."""
    database = sa.make_url(url).database
    assert database, "create_engine checked the URL"
    engine = sa.create_engine(
        "sqlite://",
        creator=lambda: inline_sqlite.connect(database),
        poolclass=QueuePool,
        hide_parameters=True,
        pool_size=pool_size,
        max_overflow=0,
    )
    _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: sa.Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The connection leaves transactions to SQLAlchemy ("begin" below) and waits for other
        # processes' locks without blocking the loop (inline_sqlite.py).
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Durable against power loss: every commit fsyncs the WAL before it returns (NORMAL
        # fsyncs only at checkpoints, so a power cut could lose the last commits).
        cursor.execute("PRAGMA synchronous=FULL")
        # No checkpoint inside a commit (it would hold the writer up): checkpoint.py's thread
        # does them.
        cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Write transactions take the write lock up front: a deferred transaction that later
        # upgrades to a writer can fail with "database is locked" instead of waiting its turn.
        # Read-only units of work read a WAL snapshot beside the writer.
        readonly = conn.get_execution_options().get(READONLY, False)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")
