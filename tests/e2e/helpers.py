"""What the browser tests do on the pages, named for what a user does; and what they set up
beforehand over HTTP and Socket.IO, with the async test clients (``run``)."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from playwright.sync_api import Locator, Page, expect

from consult.outcome.validity import clinic_day
from tests.integration.test_outcome import outcome_body
from tests.support import ApiClient, SocketClient, demo_totp_code

PASSWORD = "demo1234"

# JavaScript for a page.evaluate body: a ChatPanel (web/common/chat.js, imported as ChatPanel)
# for consultation 7 between patient 1 (me) and doctor 2, on a stand-in ``socket`` defined
# before it.
STAND_IN_PANEL = """
  const panel = new ChatPanel({
    consultation: { id: 7, status: "active", patient: { id: 1, name: "Anna" },
                    doctor: { id: 2, name: "Dr House" } },
    me: { id: 1 },
    socket: () => socket,
    onError: (err) => { throw err; },
  });
"""
T = TypeVar("T")


@dataclass
class PageProblems:
    """What went wrong inside one browser page: console errors, uncaught exceptions, dialogs.

    Every console error fails the test (the ``open_page`` fixture checks at the end), except
    those a test declares expected with :meth:`expect_error`, saying why."""

    name: str
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    expected: list[tuple[re.Pattern[str], str]] = field(default_factory=list)

    def expect_error(self, pattern: str, why: str) -> None:
        """Console errors matching ``pattern`` (a regex searched in "text @ url") are expected:
        e.g. Chromium logs "Failed to load resource" for every HTTP error answer, so a test of a
        refused action sees one. ``why`` is for the reader; it must not be empty."""
        assert why.strip(), "say why this console error is expected"
        self.expected.append((re.compile(pattern), why))

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p, _ in self.expected)]


# The ``open_page`` fixture: ``open_page(name)`` -> a page in a browser context of its own.
OpenPage = Callable[[str], tuple[Page, PageProblems]]


def assert_no_problems(*pages: PageProblems) -> None:
    for page in pages:
        assert page.unexpected() == [], f"{page.name} page: {page.unexpected()}"
        assert page.dialogs == [], f"{page.name} page opened dialogs: {page.dialogs}"


def log_in(page: Page, email: str, password: str = PASSWORD) -> None:
    """Email and password; for the demo staff (who log in with TOTP) the code too."""
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_test_id("login-submit").click()
    if email.startswith(("dr.", "scheduler@")):
        code = page.get_by_label("Authentication code")
        expect(code).to_be_visible()
        code.fill(demo_totp_code())
        page.get_by_test_id("login-submit").click()


def go_online(doctor: Page) -> None:
    """Dr House logs in to the console and goes online for internal medicine (chat)."""
    doctor.goto("/doctor/")
    log_in(doctor, "dr.house@demo.test")
    expect(doctor.get_by_test_id("connection")).to_have_attribute("data-state", "on")
    doctor.get_by_test_id("specialty-internal-medicine").check()
    doctor.get_by_test_id("go-online").click()
    expect(doctor.get_by_test_id("presence-status")).to_have_attribute("data-state", "online")


def chat_bodies(where: Page | Locator) -> Locator:
    """The message texts in the live chat panel(s) under ``where``, in transcript order."""
    return where.get_by_test_id("chat-transcript").get_by_test_id("message-body")


def say(where: Page | Locator, text: str, *, with_enter: bool = False) -> None:
    box = where.get_by_test_id("chat-input")
    box.fill(text)
    if with_enter:
        box.press("Enter")
    else:
        where.get_by_test_id("chat-send").click()


def take_patient(card: Locator) -> None:
    """The doctor takes the patient shown on a consultation card. With the walk-in queue the
    patient is first offered and the doctor accepts; a server that assigns at once (status
    active straight away) needs no click."""
    expect(card).to_have_attribute("data-status", re.compile(r"^(offered|active)$"))
    if card.get_attribute("data-status") == "offered":
        card.get_by_test_id("accept-offer").click()
    expect(card).to_have_attribute("data-status", "active")


# --- set-up over HTTP and Socket.IO -----------------------------------------------------------


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to its end from a test. Playwright's sync API runs its own loop in this
    thread: the async clients get another, in a thread of their own."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@asynccontextmanager
async def logged_in(url: str, email: str) -> AsyncIterator[ApiClient]:
    client = await ApiClient(url).login(email)
    try:
        yield client
    finally:
        await client.close()


@asynccontextmanager
async def anna_and_house_online(
    url: str,
) -> AsyncIterator[tuple[ApiClient, ApiClient, SocketClient]]:
    """Anna's and Dr House's clients, and his socket, online for internal medicine (chat)."""
    patient = await ApiClient(url).login("anna@demo.test")
    doctor = await ApiClient(url).login("dr.house@demo.test")
    ws = await SocketClient().connect(url, doctor.token)
    try:
        await ws.emit("presence:online", {"specialties": ["internal-medicine"], "forms": ["chat"]})
        yield patient, doctor, ws
    finally:
        await ws.close()
        for client in (patient, doctor):
            await client.close()


async def issue_outcome(doctor: ApiClient, consultation_id: int, **changes: Any) -> Any:
    """The doctor issues the consultation's outcome: tests/integration/test_outcome.py's body for
    today, with ``changes``; the issued outcome."""
    body = outcome_body(clinic_day(datetime.now(UTC)), **changes)
    return await doctor.call(
        "POST",
        f"/api/consultations/{consultation_id}/outcome",
        body,
        expect=201,
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
