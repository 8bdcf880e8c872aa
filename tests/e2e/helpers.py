"""What the browser tests do on the pages, named for what a user does."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from playwright.sync_api import Locator, Page, expect

PASSWORD = "demo1234"


@dataclass
class PageProblems:
    """What went wrong inside one browser page: console errors, uncaught exceptions, dialogs."""

    name: str
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


# The ``open_page`` fixture: ``open_page(name)`` -> a page in a browser context of its own.
OpenPage = Callable[[str], tuple[Page, PageProblems]]


def assert_no_problems(*pages: PageProblems) -> None:
    for page in pages:
        assert page.errors == [], f"{page.name} page: {page.errors}"
        assert page.dialogs == [], f"{page.name} page opened dialogs: {page.dialogs}"


def log_in(page: Page, email: str, password: str = PASSWORD) -> None:
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_test_id("login-submit").click()


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
