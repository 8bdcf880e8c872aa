"""Health, the API description, migrations and the audit log's guarantees."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from consult.app import create_app
from consult.clock import as_utc
from consult.http.routes_system import redis_reachable
from consult.settings import Settings
from consult.storage import tables as t
from consult.storage.migrate import alembic_config, upgrade
from tests import backends
from tests.support import free_port


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


async def test_healthz_reports_the_database(api):
    client = await api()
    body = await client.call("GET", "/healthz")
    assert body == {"status": "ok", "database": "ok", "bus": "in-process"}


REDIS_URL = os.environ.get("CONSULT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def test_healthz_checks_redis_when_it_is_configured(database_url, aiohttp_server):
    settings = Settings(
        database_url=database_url,
        migrate_on_start=False,
        sweep_interval=0,
        redis_url=REDIS_URL,
        redis_channel=f"consult-test-{secrets.token_hex(4)}",
    )
    server = await aiohttp_server(create_app(settings))
    async with aiohttp.ClientSession() as http:
        async with http.get(server.make_url("/healthz")) as response:
            assert response.status == 200
            assert await response.json() == {"status": "ok", "database": "ok", "bus": "redis"}
    # A Redis that does not answer is reported, quickly (the load balancer takes the process out).
    assert await redis_reachable(REDIS_URL)
    started = time.monotonic()
    assert not await redis_reachable(f"redis://127.0.0.1:{free_port()}/0")
    assert time.monotonic() - started < 2


async def test_openapi_describes_every_http_route(api, server):
    spec = await (await api()).call("GET", "/api/openapi.json")
    described = {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}
    served = {
        (route.method, route.resource.canonical)
        for route in server.app.router.routes()
        if route.resource is not None
        and (
            route.resource.canonical.startswith("/api")
            or route.resource.canonical in ("/healthz", "/metrics")
        )
        and route.method != "HEAD"
    }
    assert served and served == described
    start = spec["paths"]["/api/consultations"]["post"]
    schema = start["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert schema == "#/components/schemas/StartConsultationIn"
    assert "identity_not_verified" in start["responses"]["4XX"]["description"]


async def test_migrations_build_exactly_the_declared_schema(database_url):
    engine = create_async_engine(database_url)
    async with engine.connect() as conn:

        def diff(sync_conn: sa.Connection) -> list:
            return compare_metadata(MigrationContext.configure(sync_conn), t.metadata)

        assert await conn.run_sync(diff) == []
    await engine.dispose()


@pytest.fixture(params=backends.BACKENDS)
def database_at_0008(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of its own, migrated up to 0008 only."""
    yield from backends.database_at(request.param, "0008", tmp_path)


async def test_migration_0009_moves_the_exclusions_in_flight_to_their_table(database_at_0008):
    """Before 0009 a waiting ticket kept one exclusion in its row (``declined_by`` and, as its
    end, ``offer_expires_at``); 0009 moves it to ``ticket_exclusions``, leaving
    ``offer_expires_at`` to offers, and its downgrade puts the one that ends last back."""
    now = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    ends, later = now + timedelta(minutes=5), now + timedelta(minutes=6)
    url = database_at_0008
    engine = create_async_engine(url)
    c = t.consultations.c

    async def deadlines() -> list[tuple[int, int | None, datetime | None]]:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.select(c.id, c.declined_by, c.offer_expires_at).order_by(c.id)
            )
            return [(r.id, r.declined_by, r[2] and as_utc(r[2])) for r in rows]

    try:
        async with engine.begin() as conn:
            await conn.execute(t.specialties.insert().values(code="im", name="Internal"))
            for uid in (1, 2, 3, 5, 6):
                role = "doctor" if uid >= 5 else "patient"
                await conn.execute(
                    t.users.insert().values(
                        id=uid,
                        email=f"u{uid}@migration.test",
                        password_hash="x",
                        role=role,
                        identity="verified",
                        name=f"user {uid}",
                        created_at=now,
                    )
                )
            ticket = {"specialty_code": "im", "form": "chat", "created_at": now, "rank_at": now}
            for cid, status, doctor, declined_by, expires in (
                (1, "waiting", None, 5, ends),  # declined by 5, excluded until ``ends``
                (2, "offered", 5, None, now),  # an offer's deadline, which stays
                (3, "waiting", None, 5, None),  # declined before exclusions had an end
            ):
                await conn.execute(
                    t.consultations.insert().values(
                        id=cid,
                        patient_id=cid,
                        status=status,
                        doctor_id=doctor,
                        declined_by=declined_by,
                        offer_expires_at=expires,
                        **ticket,
                    )
                )
        await engine.dispose()
        backends.off_loop(upgrade, url, "0009")
        async with engine.begin() as conn:
            moved = (await conn.execute(sa.select(t.ticket_exclusions))).all()
            assert [(r.consultation_id, r.doctor_id, as_utc(r.ends_at)) for r in moved] == [
                (1, 5, ends)
            ]
            # A second decliner, whose exclusion ends later: the downgrade keeps theirs.
            await conn.execute(
                t.ticket_exclusions.insert().values(consultation_id=1, doctor_id=6, ends_at=later)
            )
        assert await deadlines() == [(1, 5, None), (2, None, now), (3, 5, None)]
        await engine.dispose()
        backends.off_loop(downgrade, url, "0008")
        assert await deadlines() == [(1, 6, later), (2, None, now), (3, 5, None)]
        await engine.dispose()
        backends.off_loop(upgrade, url, "head")
        async with engine.connect() as conn:
            assert len((await conn.execute(sa.select(t.ticket_exclusions))).all()) == 1
    finally:
        await engine.dispose()


async def test_the_audit_log_is_append_only(database_url):
    engine = create_async_engine(database_url)
    async with engine.begin() as conn:
        await conn.execute(
            t.audit_log.insert().values(
                at=sa.func.now(), action="test", allowed=True, actor_id=None
            )
        )
    for statement in (t.audit_log.update().values(action="rewritten"), t.audit_log.delete()):
        with pytest.raises(DBAPIError, match="append-only"):
            async with engine.begin() as conn:
                await conn.execute(statement)
    async with engine.connect() as conn:
        assert (await conn.execute(sa.select(t.audit_log.c.action))).scalars().all() == ["test"]
    await engine.dispose()


async def test_the_cli_migrates_seeds_and_serves(tmp_path: Path):
    db = tmp_path / "cli.db"
    port = free_port()
    env = {**os.environ, "CONSULT_DATABASE_URL": f"sqlite+aiosqlite:///{db}"}
    process = subprocess.Popen(
        [sys.executable, "-m", "consult", "serve", "--demo", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        async with aiohttp.ClientSession() as http:
            while True:
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                        assert response.status == 200
                        break
                except aiohttp.ClientConnectionError:
                    assert time.monotonic() < deadline, "server did not start"
                    await asyncio.sleep(0.2)
            async with http.post(
                f"http://127.0.0.1:{port}/api/login",
                json={"email": "anna@demo.test", "password": "demo1234"},
            ) as response:
                assert response.status == 200
                assert "HttpOnly" in response.headers["Set-Cookie"]
    finally:
        process.terminate()
        output = process.communicate(timeout=10)[0].decode()
    assert "demo1234" not in output and "password" not in output.lower()


def test_a_bad_database_url_gives_a_clear_start_up_error():
    result = subprocess.run(
        [sys.executable, "-m", "consult", "migrate", "--database-url", "mysql://x@y/z"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "unsupported database URL" in result.stderr
    assert "Traceback" not in result.stderr
