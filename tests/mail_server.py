"""A real SMTP server for tests (aiosmtpd, on loopback in a thread of its own) that keeps
every message it accepts, parsed, for the test to read."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.support import free_port


class _Keeper:
    def __init__(self, mailbox: Mailbox) -> None:
        self._mailbox = mailbox

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address.endswith("@refused.test"):  # a mailbox that does not exist
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self._mailbox.receiving += 1
        if self._mailbox.hold is not None:
            await asyncio.sleep(self._mailbox.hold)
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        with self._mailbox.lock:
            self._mailbox.messages.append(parsed)
            self._mailbox.arrived.append(time.monotonic())
        return "250 OK"


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.arrived: list[float] = []  # time.monotonic() of each message's arrival
        self.lock = threading.Lock()
        self.hold: float | None = None  # seconds each DATA waits before its answer
        self.receiving = 0  # messages whose data has come in (kept once the hold is over)
        self.port = free_port()
        self._controller = Controller(_Keeper(self), hostname="127.0.0.1", port=self.port)

    def start(self) -> Mailbox:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def settings(self) -> dict[str, Any]:
        return {"smtp_host": "127.0.0.1", "smtp_port": self.port, "smtp_tls": "none"}

    def to(self, recipient: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if m["To"] == recipient]

    async def wait(self, recipient: str, count: int = 1, timeout: float = 10) -> EmailMessage:
        """The ``count``-th message to ``recipient``, once it has arrived."""
        deadline = time.monotonic() + timeout
        while len(self.to(recipient)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"no {count}th e-mail to {recipient} in {timeout} s")
            await asyncio.sleep(0.05)
        return self.to(recipient)[count - 1]


def body(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def link_token(message: EmailMessage) -> str:
    """The token of the single-use link in the message."""
    found = re.search(r"#token=([A-Za-z0-9_-]+)", body(message))
    assert found, body(message)
    return found.group(1)


def mailbox() -> Iterator[Mailbox]:
    box = Mailbox().start()
    try:
        yield box
    finally:
        box.stop()
