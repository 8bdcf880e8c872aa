"""The access matrix of docs/security.md, walked against a real server on each backend: every
cell of tests/matrix/table.py is one request (or Socket.IO event) by its column's person on its
row's target. Allowed calls succeed; refused ones answer their cell's status and code; no
answer gives the owner's strings to anyone without a right to them; each cell's audit rows
(told apart by the cell's own client address) are those its cell says. The data is built once
per backend (tests/matrix/world.py); the cells run at once (tests/matrix/walk.py).

tests/unit/test_access_matrix.py fails first when a route or event has no row."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio
import sqlalchemy as sa
from aiohttp.test_utils import TestServer
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from consult.app import create_app
from consult.clock import ManualClock
from consult.storage import tables as t
from tests import backends
from tests.integration.conftest import settings_for
from tests.matrix.cells import COLUMN_KEYS, Kind
from tests.matrix.table import ROWS
from tests.matrix.walk import (
    as_laboratory,
    audit_by_address,
    leaks,
    observed_token,
    problems,
    unseen,
    walk,
)
from tests.matrix.world import World, build_world

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module", params=backends.BACKENDS)
def matrix_database(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    sqlite_template: Path,
) -> Iterator[str]:
    """An empty, migrated database of this module's own, on each backend."""
    if request.param == "sqlite":
        yield backends.sqlite_copy(sqlite_template, tmp_path_factory.mktemp("matrix"))
    else:
        url = request.getfixturevalue("postgres_url")
        backends.off_loop(asyncio.run, backends.truncate_postgres(url))
        yield url


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def matrix(
    matrix_database: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[World, AsyncEngine]]:
    """A server, and the world built on it: once per backend."""
    folder = tmp_path_factory.mktemp("matrix-files")
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    settings = settings_for(
        matrix_database,
        folder,
        trusted_proxies="127.0.0.1",  # each cell speaks from its own X-Forwarded-For address
        max_parallel_chats=10,  # the consulting doctor holds eight consultations at once
        slot_days=0,  # no hourly slot generation: the demo's slots are enough
    )
    started = time.monotonic()
    server = TestServer(create_app(settings, clock=clock))
    await server.start_server()  # the demo's accounts, the catalogue, ICD-10
    engine = create_async_engine(matrix_database)
    base_url = str(server.make_url("/")).rstrip("/")
    world = None
    try:
        begun = time.monotonic()
        world = await build_world(base_url, engine, clock, settings.recordings_path())
        world.values["took"] = (begun - started, time.monotonic() - begun)
        yield world, engine
    finally:
        sockets = world.values["sockets"] if world is not None else []
        await asyncio.gather(*(ws.close() for ws in sockets if ws.sio.connected))
        await engine.dispose()
        await server.close()


async def test_every_cell_is_what_the_table_says(matrix: tuple[World, AsyncEngine]) -> None:
    world, engine = matrix
    started = time.monotonic()
    sent = await walk(world, ROWS)
    audit = await audit_by_address(engine)
    observed: dict[str, dict[str, str]] = {}
    failures: dict[str, list[str]] = {}
    for one in sent:
        rows = audit.get(one.address, [])
        observed.setdefault(one.row.name, {})[one.column] = observed_token(one, rows)
        for problem in problems(one, rows):
            failures.setdefault(one.row.name, []).append(f"{one.column}: {problem}")
    took = time.monotonic() - started
    start, build = world.values["took"]
    print(f"server {start:.1f} s, world {build:.1f} s, {len(sent)} cells {took:.1f} s")
    report = []
    for row in ROWS:
        if row.name in failures:
            got = " ".join(observed[row.name].get(c, "-") for c in COLUMN_KEYS)
            report += [f"{row.name}", f"  table: {row.tokens}", f"  got:   {got}"]
            report += [f"  {line}" for line in failures[row.name]]
    assert not report, "cells that do not hold (got: in table.py's syntax):\n" + "\n".join(report)
    assert unseen(world, sent) == [], "the owner's strings that no allowed answer shows"


async def test_the_integration_credential_posts_and_reads_nothing(
    matrix: tuple[World, AsyncEngine],
) -> None:
    """The laboratory's credential posted the owner's result (world.py: 201, its push heard);
    it is no session: every GET row answers it 401 `session_expired` (a row open to anonymous
    callers, as it answers them), audited nowhere, with none of the owner's strings, and
    Socket.IO refuses it."""
    world, engine = matrix
    owner = world.people["owner"]
    a = t.audit_log.c
    async with engine.connect() as conn:
        received = await conn.execute(
            sa.select(a.actor_id, a.actor_role, a.patient_id, a.allowed).where(
                a.action == "result.receive", a.allowed
            )
        )
        assert [tuple(r) for r in received] == [(None, "integration", owner.id, True)]
    sent, refused = await as_laboratory(world, ROWS)
    audit = await audit_by_address(engine)
    wrong = []
    for one in sent:
        anonymous = one.row.cell("anon").kind is Kind.ALLOWED
        expected = "ok" if anonymous else "401:session_expired"
        got = "ok" if one.allowed else f"{one.status}:{one.code}"
        found = [f"expected {expected}, got {got}"] if got != expected else []
        if one.address in audit:
            found.append(f"audited {[e.action for e in audit[one.address]]}")
        found += leaks(one)
        wrong += [f"{one.row.name}: {problem}" for problem in found]
    assert wrong == [], "GET rows that answer the integration credential otherwise"
    assert refused is not None, "Socket.IO took the integration credential as a session"
