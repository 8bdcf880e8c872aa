"""The notifications' outbox against a real SMTP server (aiosmtpd): nothing is lost when no
server is configured or the server is down (retried with a growing delay), a refused
recipient ends as failed (kept), and several workers send each notification once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from consult.app import create_app
from consult.clock import ManualClock
from consult.events import EventBus
from consult.notify import messages
from consult.notify.outbox import enqueue
from consult.notify.smtp import SmtpSender
from consult.notify.worker import OutboxWorker, backoff
from consult.settings import Settings
from consult.storage import tables as t
from consult.storage.engine import create_engine
from consult.storage.uow import Database
from tests.integration.conftest import settings_for
from tests.mail_server import Mailbox, body, mailbox
from tests.support import count, rows

PASSWORD = "a long enough passphrase"


def _sender(port: int) -> SmtpSender:
    settings = Settings(smtp_host="127.0.0.1", smtp_port=port, smtp_tls="none")
    sender = SmtpSender.from_settings(settings)
    assert sender is not None
    return sender


async def _start(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    database_url: str,
    tmp_path: Path,
    clock: ManualClock,
    **smtp: object,
) -> TestServer:
    settings = settings_for(database_url, tmp_path, outbox_interval=0.05, **smtp)
    return await aiohttp_server(create_app(settings, clock=clock))


async def _sign_up(server: TestServer, email: str) -> None:
    async with aiohttp.ClientSession() as session:
        body = {"email": email, "name": "Ola", "password": PASSWORD, "accept_terms": True}
        async with session.post(server.make_url("/api/signup"), json=body) as response:
            assert response.status == 202


async def test_without_smtp_notifications_are_kept_and_logged_then_sent(
    aiohttp_server, database_url, tmp_path, clock, caplog
):
    server = await _start(aiohttp_server, database_url, tmp_path, clock)
    with caplog.at_level(logging.WARNING, "consult.notify.worker"):
        await _sign_up(server, "ola@example.org")
        await asyncio.sleep(0.3)
    (row,) = await rows(database_url, t.notifications)
    assert row.status == "pending" and row.attempts == 0
    assert f"notification {row.id} (email_confirm) kept in the outbox" in caplog.text
    assert "#token=" not in caplog.text  # the link is never logged
    for box in mailbox():  # an SMTP server configured later gets it
        db = Database(create_engine(database_url), EventBus())
        try:
            assert await OutboxWorker(db, clock, _sender(box.port)).run_once() == 1
        finally:
            await db.dispose()
        message = await box.wait("ola@example.org")
        assert "#token=" in body(message)


async def test_a_server_that_is_down_is_retried_with_a_growing_delay(
    aiohttp_server, database_url, tmp_path, clock
):
    box = Mailbox()  # its port, not yet listening
    server = await _start(
        aiohttp_server,
        database_url,
        tmp_path,
        clock,
        smtp_host="127.0.0.1",
        smtp_port=box.port,
        smtp_tls="none",
    )
    await _sign_up(server, "ola@example.org")
    for attempts in (1, 2):
        await _until(lambda: _attempts(database_url), attempts)
        (row,) = await rows(database_url, t.notifications)
        assert row.status == "pending" and "Connect" in row.last_error
        due = datetime.fromisoformat(str(row.next_attempt_at)).replace(tzinfo=None)
        assert abs((due - clock.now().replace(tzinfo=None)).total_seconds() - backoff(attempts)) < 1
        clock.advance(backoff(attempts) + 0.1)
    box.start()
    try:
        clock.advance(backoff(3) + 0.1)
        message = await box.wait("ola@example.org")
        (row,) = await rows(database_url, t.notifications)
        assert message["Message-ID"] == f"<{row.id}@consult.invalid>"
        await _until(lambda: _status(database_url), "sent")
    finally:
        box.stop()


async def test_a_refused_recipient_ends_as_failed_and_is_kept(
    aiohttp_server, database_url, tmp_path, clock
):
    for box in mailbox():
        await _start(aiohttp_server, database_url, tmp_path, clock)  # its worker sends nothing
        await _enqueue(database_url, clock, ["ghost@refused.test"])
        db = Database(create_engine(database_url), EventBus())
        try:
            await OutboxWorker(db, clock, _sender(box.port)).run_once()
        finally:
            await db.dispose()
        (row,) = await rows(database_url, t.notifications)
        assert row.status == "failed" and "550" in row.last_error and row.body is not None


async def test_several_workers_send_each_notification_once(
    aiohttp_server, database_url, tmp_path, clock
):
    await _start(aiohttp_server, database_url, tmp_path, clock)  # migrated and seeded
    recipients = [f"p{n}@example.org" for n in range(60)]
    await _enqueue(database_url, clock, recipients)
    for box in mailbox():
        databases = [Database(create_engine(database_url), EventBus()) for _ in range(3)]
        try:
            workers = [OutboxWorker(db, clock, _sender(box.port)) for db in databases]
            sent = await asyncio.gather(*(w.run_once() for w in workers))
        finally:
            for db in databases:
                await db.dispose()
        assert sum(sent) == 60
        await box.wait(recipients[-1])
        assert sorted(m["To"] for m in box.messages) == sorted(recipients)
    assert await count(database_url, t.notifications, t.notifications.c.status == "sent") == 60


async def _enqueue(database_url: str, clock: ManualClock, recipients: list[str]) -> None:
    db = Database(create_engine(database_url), EventBus())
    try:
        async with db.uow() as uow:
            for to in recipients:
                mail = messages.follow_up_answered(None, to, "Ola", "Dr House")  # type: ignore[arg-type]
                await enqueue(uow, mail, clock.now())
            await uow.commit()
    finally:
        await db.dispose()


async def _attempts(database_url: str) -> int:
    (row,) = await rows(database_url, t.notifications)
    return int(row.attempts)


async def _status(database_url: str) -> str:
    (row,) = await rows(database_url, t.notifications)
    return str(row.status)


async def _until(read: Callable[[], Awaitable[object]], value: object, timeout: float = 10) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (seen := await read()) != value:
        if loop.time() > deadline:
            pytest.fail(f"still {seen!r}, not {value!r}, after {timeout} s")
        await asyncio.sleep(0.05)
