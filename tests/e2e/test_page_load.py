"""What every page does on load, seen in the browser: no error in the console, logged out or
in (the session probe answers 200 either way); and the doctor console ticks no specialty the
first time, then the doctor's own last choice."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.helpers import OpenPage, PageProblems, assert_no_problems, log_in

PAGES = [
    ("/patient/", "anna@demo.test"),
    ("/doctor/", "dr.house@demo.test"),
    ("/scheduler/", "scheduler@demo.test"),
]


def loaded(page: Page) -> None:
    """The page has settled: nothing in flight on the network."""
    page.wait_for_load_state("networkidle")


@pytest.mark.e2e
def test_pages_load_logged_out_and_in_with_no_console_error(open_page: OpenPage) -> None:
    landing, landing_problems = open_page("landing")
    landing.goto("/")
    expect(landing.get_by_test_id("demo-accounts")).to_be_visible()
    loaded(landing)
    assert landing_problems.errors == []
    for path, email in PAGES:
        page, problems = open_page(path)
        page.goto(path)
        expect(page.get_by_test_id("login-form")).to_be_visible()
        loaded(page)
        assert problems.errors == [], (path, problems.errors)
        log_in(page, email)
        expect(page.get_by_test_id("whoami")).to_be_visible()
        page.reload()  # the probe finds the session this time
        expect(page.get_by_test_id("whoami")).to_be_visible()
        expect(page.get_by_test_id("login-form")).to_be_hidden()
        loaded(page)
        assert problems.errors == [], (path, problems.errors)
        assert_no_problems(problems)


@pytest.mark.e2e
def test_the_console_watch_sees_an_http_error_answer(open_page: OpenPage) -> None:
    """What made the probe's 401 go unnoticed: the fixture dropped "Failed to load resource".
    A route that needs a session still answers 401, and the watch now sees it."""
    page, problems = open_page("patient")
    page.goto("/patient/")
    expect(page.get_by_test_id("login-form")).to_be_visible()
    status = page.evaluate("async () => (await fetch('/api/me')).status")
    assert status == 401
    wait_for_error(page, problems, "401")
    assert any("/api/me" in line for line in problems.unexpected()), problems.errors
    # Made on purpose here, to show the watch sees it: the only console error this test allows.
    problems.expect_error(r"status of 401 .* @ .*/api/me$", "the 401 this test asks for")
    assert problems.unexpected() == []


def wait_for_error(page: Page, problems: PageProblems, text: str) -> None:
    for _ in range(100):  # console messages arrive asynchronously: up to 10 s
        if any(text in line for line in problems.errors):
            return
        page.wait_for_timeout(100)
    pytest.fail(f"no console error with {text!r}: {problems.errors}")


@pytest.mark.e2e
def test_the_console_ticks_no_specialty_at_first_then_the_doctors_last_choice(
    open_page: OpenPage,
) -> None:
    doctor, problems = open_page("doctor")
    doctor.goto("/doctor/")
    log_in(doctor, "dr.house@demo.test")
    house = ("internal-medicine", "cardiology")
    for code in house:
        expect(doctor.get_by_test_id(f"specialty-{code}")).not_to_be_checked()
    expect(doctor.get_by_test_id("form-chat")).to_be_checked()
    expect(doctor.get_by_test_id("form-voice")).not_to_be_checked()

    # The README's tour: tick Internal medicine, go online: for internal medicine only.
    doctor.get_by_test_id("specialty-internal-medicine").check()
    doctor.get_by_test_id("form-voice").check()
    doctor.get_by_test_id("go-online").click()
    presence = doctor.get_by_test_id("presence-status")
    expect(presence).to_have_attribute("data-state", "online")
    expect(presence).to_contain_text("Online for Internal medicine (chat, voice)")
    expect(presence).not_to_contain_text("Cardiology")

    # Back in the console later (a reload, or another login): his last choice is ticked.
    doctor.reload()
    expect(doctor.get_by_test_id("specialty-internal-medicine")).to_be_checked()
    expect(doctor.get_by_test_id("specialty-cardiology")).not_to_be_checked()
    expect(doctor.get_by_test_id("form-voice")).to_be_checked()
    expect(doctor.get_by_test_id("form-video")).not_to_be_checked()

    # Remembered per doctor: Dr Grey, in the same browser, starts with nothing ticked.
    doctor.get_by_test_id("logout").click()
    log_in(doctor, "dr.grey@demo.test")
    expect(doctor.get_by_test_id("whoami")).to_have_text("Dr Meredith Grey")
    for code in ("internal-medicine", "paediatrics"):
        expect(doctor.get_by_test_id(f"specialty-{code}")).not_to_be_checked()
    expect(doctor.get_by_test_id("form-voice")).not_to_be_checked()
    doctor.get_by_test_id("logout").click()
    log_in(doctor, "dr.house@demo.test")
    expect(doctor.get_by_test_id("specialty-internal-medicine")).to_be_checked()
    expect(doctor.get_by_test_id("specialty-cardiology")).not_to_be_checked()
    assert_no_problems(problems)
