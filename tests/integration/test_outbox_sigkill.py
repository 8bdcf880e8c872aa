"""A real ``consult serve`` process killed with SIGKILL loses no notification: what was
committed before the kill (sign-ups whose 202 came back while the SMTP server was down) is
sent after a restart; one killed while an SMTP server was receiving a message sends it again
with the same Message-ID (so each recipient sees one message however many copies arrive).
A real SMTP server (aiosmtpd) receives them."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from consult.storage import tables as t
from tests.integration.test_process_lifecycle import Servers
from tests.mail_server import Mailbox
from tests.support import ApiClient, count

SIGN_UPS = 5


@pytest.fixture
def box() -> Iterator[Mailbox]:
    made = Mailbox()  # not listening until the test starts it
    yield made
    made.stop()


def _settings(box: Mailbox) -> dict[str, str]:
    return {
        "CONSULT_SLOT_DAYS": "0",
        "CONSULT_SMTP_HOST": "127.0.0.1",
        "CONSULT_SMTP_PORT": str(box.port),
        "CONSULT_SMTP_TLS": "none",
        "CONSULT_OUTBOX_INTERVAL": "0.2",
        # A killed worker's claim lapses after this: the restart retries within the test.
        "CONSULT_OUTBOX_LEASE": "2",
    }


async def _sign_up(url: str, email: str) -> None:
    client = ApiClient(url)
    try:
        body = {
            "email": email,
            "name": "Ola",
            "password": "a long passphrase",
            "accept_terms": True,
        }
        await client.call("POST", "/api/signup", body, expect=202)
    finally:
        await client.close()


async def _wait(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


async def test_no_notification_is_lost_across_sigkills(
    database_url: str, tmp_path: Path, box: Mailbox
) -> None:
    servers = Servers(database_url, tmp_path, _settings(box))
    try:
        first = servers.start("first", demo=True)
        emails = [f"ola{n}@example.org" for n in range(SIGN_UPS)]
        await asyncio.gather(*(_sign_up(first.url, e) for e in emails))
        first.popen.kill()  # committed, never delivered (no SMTP server listens yet)
        first.popen.wait()
        assert await count(database_url, t.notifications, t.notifications.c.status == "pending")

        box.hold = 3.0  # the next server is killed while the SMTP server takes a message in
        box.start()
        second = servers.start("second")
        await _wait(lambda: box.receiving >= 1, 30, "a message on its way")
        second.popen.kill()
        second.popen.wait()

        box.hold = None
        servers.start("third")
        await _wait(lambda: {m["To"] for m in box.messages} >= set(emails), 60, "every e-mail")
        await asyncio.sleep(1.0)  # a duplicate would come now
    finally:
        servers.stop_all()
    ids_by_recipient: dict[str, set[str]] = defaultdict(set)
    for message in box.messages:
        ids_by_recipient[message["To"]].add(message["Message-ID"])
    # One message per recipient: copies (after the kill during DATA) share its Message-ID.
    assert {to: len(ids) for to, ids in ids_by_recipient.items()} == {e: 1 for e in emails}
    assert await count(database_url, t.notifications, t.notifications.c.status == "sent") == len(
        emails
    )
