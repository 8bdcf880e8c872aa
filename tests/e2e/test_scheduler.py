"""The scheduler dashboard in the browser: the queues change live as patients join (one on the
patient page, one over the API), a patient is moved to another specialty, a stale ticket is
dropped and a doctor marked away, and the patient's page and the doctor's console follow."""

from __future__ import annotations

import json
import re
import urllib.request
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.e2e.conftest import Server
from tests.e2e.helpers import PASSWORD, OpenPage, assert_no_problems, log_in


def call(server: Server, method: str, path: str, body: Any, token: str | None = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        server.url + path, data=json.dumps(body).encode(), headers=headers, method=method
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def card(page: Page, specialty: str) -> Locator:
    return page.locator(f'[data-testid="specialty-card"][data-specialty="{specialty}"]')


def waiting(page: Page, specialty: str) -> Locator:
    return card(page, specialty).get_by_test_id("figures-all").get_by_test_id("waiting-count")


@pytest.mark.e2e
def test_the_dashboard_follows_the_queues_live_and_acts_on_them(
    open_page: OpenPage, server: Server
) -> None:
    scheduler, scheduler_problems = open_page("scheduler")
    patient, patient_problems = open_page("patient")

    scheduler.goto("/scheduler/")
    log_in(scheduler, "scheduler@demo.test")
    expect(scheduler.get_by_test_id("whoami")).to_have_text("Sam Scheduler")
    expect(scheduler.get_by_test_id("connection")).to_have_attribute("data-state", "on")
    expect(scheduler.get_by_test_id("specialty-card")).to_have_count(7)
    expect(scheduler.get_by_test_id("wait-chart")).to_have_count(7)
    expect(waiting(scheduler, "dermatology")).to_have_text("0")
    expect(scheduler.get_by_test_id("summary")).to_contain_text("0 patients waiting")

    # Piotr joins the dermatology queue on the patient page: the dashboard shows him at once.
    patient.goto("/patient/")
    log_in(patient, "piotr@demo.test")
    expect(patient.get_by_test_id("connection")).to_have_attribute("data-state", "on")
    patient.get_by_label("Specialist").select_option("dermatology")
    patient.get_by_test_id("start").click()
    expect(patient.get_by_test_id("consultation")).to_have_attribute("data-status", "waiting")
    derm = card(scheduler, "dermatology")
    expect(waiting(scheduler, "dermatology")).to_have_text("1")
    expect(derm.get_by_test_id("ticket-patient")).to_have_text(["Piotr Nowak"])

    # Anna joins over the API: the dashboard follows without a reload.
    anna = call(server, "POST", "/api/login", {"email": "anna@demo.test", "password": PASSWORD})
    call(
        server,
        "POST",
        "/api/consultations",
        {"specialty": "dermatology", "form": "chat"},
        anna["token"],
    )
    expect(waiting(scheduler, "dermatology")).to_have_text("2")
    expect(derm.get_by_test_id("ticket-patient")).to_have_text(["Piotr Nowak", "Anna Kowalska"])
    expect(scheduler.get_by_test_id("summary")).to_contain_text("2 patients waiting")
    expect(derm.get_by_test_id("ticket-waited").first).to_have_text(re.compile(r"^\d+ s$"))

    # Move Anna to psychiatry (her premium plan covers it).
    anna_row = derm.get_by_test_id("ticket-row").filter(has_text="Anna Kowalska")
    anna_row.get_by_test_id("move-select").select_option("psychiatry")
    anna_row.get_by_test_id("move-ticket").click()
    expect(scheduler.get_by_test_id("notice")).to_have_text("Anna Kowalska moved to Psychiatry.")
    expect(waiting(scheduler, "psychiatry")).to_have_text("1")
    expect(card(scheduler, "psychiatry").get_by_test_id("ticket-patient")).to_have_text(
        ["Anna Kowalska"]
    )
    expect(waiting(scheduler, "dermatology")).to_have_text("1")

    # Moving Piotr to cardiology is refused: his basic plan does not cover it.
    scheduler_problems.expect_error(
        r"status of 409 .* @ .*/api/scheduler/tickets/\d+/move$",
        "Chromium logs the refused move's 409 answer",
    )
    piotr_row = derm.get_by_test_id("ticket-row").filter(has_text="Piotr Nowak")
    piotr_row.get_by_test_id("move-select").select_option("cardiology")
    piotr_row.get_by_test_id("move-ticket").click()
    expect(scheduler.get_by_test_id("error")).to_contain_text("does not cover cardiology")
    expect(waiting(scheduler, "dermatology")).to_have_text("1")

    # Drop Piotr's stale ticket: gone from the dashboard, and his page says so.
    piotr_row.get_by_test_id("drop-ticket").click()
    expect(scheduler.get_by_test_id("notice")).to_have_text(
        "The ticket of Piotr Nowak was dropped."
    )
    expect(waiting(scheduler, "dermatology")).to_have_text("0")
    expect(derm.get_by_test_id("no-tickets")).to_be_visible()
    expect(patient.get_by_test_id("consultation")).to_have_attribute("data-status", "cancelled")
    expect(patient.get_by_test_id("start")).to_be_enabled()

    # Dr Skóra goes online in her console; the scheduler marks her away, and her console says so.
    doctor, doctor_problems = open_page("doctor")
    doctor.goto("/doctor/")
    log_in(doctor, "dr.skin@demo.test")
    expect(doctor.get_by_test_id("connection")).to_have_attribute("data-state", "on")
    doctor.get_by_test_id("specialty-dermatology").check()
    doctor.get_by_test_id("go-online").click()
    expect(doctor.get_by_test_id("presence-status")).to_have_attribute("data-state", "online")
    skin = derm.get_by_test_id("doctor-row")
    expect(skin).to_have_attribute("data-state", "free")
    skin.get_by_test_id("mark-away").click()
    expect(scheduler.get_by_test_id("notice")).to_have_text("Dr Iwona Skóra is away.")
    expect(derm.get_by_test_id("doctor-row")).to_have_attribute("data-state", "away")
    expect(derm.get_by_test_id("mark-away")).to_be_hidden()
    expect(doctor.get_by_test_id("presence-status")).to_have_attribute("data-state", "away")
    expect(doctor.get_by_test_id("presence-status")).to_contain_text("marked away by a scheduler")

    assert_no_problems(scheduler_problems, patient_problems, doctor_problems)


@pytest.mark.e2e
def test_the_dashboard_is_for_schedulers_only(open_page: OpenPage) -> None:
    page, problems = open_page("doctor")
    page.goto("/scheduler/")
    log_in(page, "dr.house@demo.test")
    expect(page.get_by_test_id("wrong-role")).to_be_visible()
    expect(page.get_by_test_id("dashboard")).to_be_hidden()
    assert_no_problems(problems)
