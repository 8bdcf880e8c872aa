"""Test databases: SQLite files and a PostgreSQL database of this test run's own.

``CONSULT_TEST_BACKENDS`` (default ``sqlite,postgresql``) says which backends integration tests
run on; ``CONSULT_TEST_POSTGRES_URL`` (default the local server's ``test`` database) says which
server to use. An unreachable PostgreSQL fails the run rather than skipping it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from consult.storage.migrate import upgrade
from consult.storage.tables import metadata

T = TypeVar("T")

PG_ADMIN_URL = os.environ.get(
    "CONSULT_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
BACKENDS = [b for b in os.environ.get("CONSULT_TEST_BACKENDS", "sqlite,postgresql").split(",") if b]


def off_loop(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn`` in a thread of its own: fixtures may be set up while an event loop runs in
    this one (pytest-asyncio's, or Playwright's sync API), and migrations run their own loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args).result()


def sqlite_template(directory: Path) -> Path:
    path = directory / "template.db"
    off_loop(upgrade, f"sqlite+aiosqlite:///{path}")
    return path


def sqlite_copy(template: Path, directory: Path) -> str:
    path = directory / f"{uuid.uuid4().hex[:8]}.db"
    shutil.copy(template, path)
    return f"sqlite+aiosqlite:///{path}"


def postgres_database(revision: str = "head") -> Iterator[str]:
    """A fresh database for this test run, migrated up to ``revision``; dropped afterwards."""
    name = f"consult_test_{uuid.uuid4().hex[:10]}"
    admin = sa.make_url(PG_ADMIN_URL)
    url = admin.set(database=name).render_as_string(hide_password=False)

    async def admin_sql(sql: str) -> None:
        engine = create_async_engine(admin, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(sa.text(sql))
        await engine.dispose()

    off_loop(asyncio.run, admin_sql(f'CREATE DATABASE "{name}"'))
    try:
        off_loop(upgrade, url, revision)
        yield url
    finally:
        off_loop(asyncio.run, admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def database_at(backend: str, revision: str, directory: Path) -> Iterator[str]:
    """A database of its own on ``backend``, migrated up to ``revision`` only (to test the
    next migration over rows written before it)."""
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{directory / f'at_{revision}.db'}"
        off_loop(upgrade, url, revision)
        yield url
    else:
        yield from postgres_database(revision)


async def truncate_postgres(url: str) -> None:
    engine = create_async_engine(url)
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    async with engine.begin() as conn:
        await conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    await engine.dispose()
