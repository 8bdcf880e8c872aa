"""Browser tests: the real server in a subprocess (demo data, a fresh SQLite file) and Debian's
headless Chromium driven by Playwright.

Each browser page records console errors, uncaught exceptions and dialogs (a Content-Security-
Policy violation is a console error, and so is an HTTP error answer). The test fails on any
console error or uncaught exception it did not declare expected (``PageProblems.expect_error``).
When a test fails (or with ``CONSULT_E2E_SCREENSHOTS=1``), each page's screenshot and the
server's log go to ``test-artifacts/e2e/<test>/``.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Dialog,
    Page,
    expect,
    sync_playwright,
)

from tests.e2e.helpers import OpenPage, PageProblems
from tests.support import Server, demo_server, demo_template

CHROMIUM = Path(os.environ.get("CONSULT_E2E_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-gpu",
    "--no-first-run",
    # A fake camera (a moving test pattern) and microphone (a beep), granted without a prompt;
    # autoplay without a gesture: the call tests check that media flows, not Chrome's policy.
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "e2e"

expect.set_options(timeout=10_000)


@pytest.fixture(scope="session")
def demo_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_template(tmp_path_factory.mktemp("demo"))


@pytest.fixture
def server(tmp_path: Path, demo_database: Path) -> Iterator[Server]:
    """``consult serve --demo`` on a free port, with a fresh copy of the seeded demo database."""
    with demo_server(tmp_path, template=demo_database) as server:
        yield server


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium. Missing Chromium fails the run: it is not a reason to skip."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}: the browser tests need it. "
            "Install Debian's package (`apt-get install chromium`; scripts/test does) "
            "or point CONSULT_E2E_CHROMIUM at a Chromium binary."
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Remembers whether the test itself failed, for ``open_page`` to keep screenshots."""
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


@pytest.fixture
def open_page(
    request: pytest.FixtureRequest, browser: Browser, server: Server
) -> Iterator[OpenPage]:
    """``open_page(name)``: a page in a browser context of its own (its own cookies), watched
    for console errors, uncaught exceptions and dialogs."""
    contexts: list[tuple[str, BrowserContext]] = []
    problems: list[PageProblems] = []

    def open_(name: str) -> tuple[Page, PageProblems]:
        context = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 900})
        context.set_default_timeout(10_000)
        page = context.new_page()
        seen = PageProblems(name)
        # A patient page asks for its ticket when its consultation looks queued; a doctor's
        # accept can come first, and GET /api/queue/ticket then answers 404 no_ticket, which
        # the page reads as "not waiting" (protocol.md). Chromium logs that 404 as an error.
        seen.expect_error(r"404 .*/api/queue/ticket$", "matched before the page read its ticket")

        def on_console(message: ConsoleMessage) -> None:
            # Every error counts, an HTTP error answer too ("Failed to load resource: ... 401"
            # on a normal load was how the session probe went unnoticed); a test that expects
            # one says so with seen.expect_error.
            if message.type == "error":
                url = message.location.get("url", "")
                seen.errors.append(f"console error: {message.text} @ {url}")

        def on_dialog(dialog: Dialog) -> None:
            seen.dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("console", on_console)
        page.on("pageerror", lambda exc: seen.errors.append(f"uncaught: {exc}"))
        page.on("dialog", on_dialog)
        contexts.append((name, context))
        problems.append(seen)
        return page, seen

    yield open_

    failed = request.node.stash.get(_FAILED, False)
    unexpected = [f"[{seen.name}] {line}" for seen in problems for line in seen.unexpected()]
    # CONSULT_E2E_SCREENSHOTS=1 keeps the final screenshots of a passing test too.
    keep = failed or bool(unexpected) or bool(os.environ.get("CONSULT_E2E_SCREENSHOTS"))
    folder = ARTIFACTS / request.node.name
    if keep:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "server.log").write_text(server.log_tail(400))
    for name, context in contexts:
        if keep:
            for i, page in enumerate(context.pages):
                page.screenshot(path=str(folder / f"{name}-{i}.png"), full_page=True)
        context.close()
    if failed:
        for seen in problems:
            for line in seen.errors:
                print(f"[{seen.name}] {line}")
        print(f"screenshots and server log: {folder}")
    elif unexpected:
        # A test that passed otherwise still fails on a console error nobody expected.
        pytest.fail("console errors or uncaught exceptions:\n" + "\n".join(unexpected))
