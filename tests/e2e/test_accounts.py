"""A new patient in the browser: signs up, opens the confirmation link from the e-mail a real
SMTP server (aiosmtpd) received, asks to be verified with her PESEL; the scheduler, logging
in with a TOTP code, confirms her identity; she then has her first online consultation with
Dr House (who also logs in with his TOTP code). English pages only for now."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from playwright.sync_api import expect

from consult.outcome.pesel import make_pesel
from tests.e2e.helpers import OpenPage, assert_no_problems, go_online, log_in, take_patient
from tests.mail_server import Mailbox, body
from tests.support import Server, demo_server

EMAIL = "zofia@example.org"
NAME = "Zofia Nowicka"
PASSWORD = "four words make a password"
PESEL = make_pesel(date(1992, 7, 21), 412, "female")


@pytest.fixture
def mail() -> Iterator[Mailbox]:
    box = Mailbox().start()
    yield box
    box.stop()


@pytest.fixture
def server(tmp_path: Path, demo_database: Path, mail: Mailbox) -> Iterator[Server]:
    """The demo server, its e-mail going to the test's SMTP server."""
    settings = {
        "CONSULT_SMTP_HOST": "127.0.0.1",
        "CONSULT_SMTP_PORT": str(mail.port),
        "CONSULT_SMTP_TLS": "none",
        "CONSULT_OUTBOX_INTERVAL": "0.2",
    }
    with demo_server(tmp_path, template=demo_database, settings=settings) as server:
        yield server


def _link_path(mail: Mailbox, recipient: str) -> str:
    deadline = time.monotonic() + 15
    while not mail.to(recipient):
        assert time.monotonic() < deadline, f"no e-mail to {recipient}"
        time.sleep(0.1)
    found = re.search(
        r"https?://[^/\s]+(/account/confirm\.html#token=[\w-]+)", body(mail.to(recipient)[0])
    )
    assert found, body(mail.to(recipient)[0])
    return found.group(1)


def test_sign_up_confirm_verify_and_consult_online(open_page: OpenPage, mail: Mailbox) -> None:
    patient, patient_problems = open_page("patient")
    patient.goto("/patient/")
    patient.get_by_test_id("signup-link").click()
    patient.get_by_label("Name").fill(NAME)
    patient.get_by_label("Email").fill(EMAIL)
    patient.get_by_label("Password").fill("password1234")  # common: refused
    patient.get_by_label("I accept the terms of service").check()
    patient.get_by_test_id("signup-submit").click()
    patient_problems.expect_error(r"status of 400", "the common password is refused (400)")
    expect(patient.get_by_test_id("error")).to_contain_text("most common")
    patient.get_by_label("Password").fill(PASSWORD)
    patient.get_by_test_id("signup-submit").click()
    expect(patient.get_by_test_id("signup-done")).to_be_visible()

    patient.goto(_link_path(mail, EMAIL))
    expect(patient.get_by_test_id("confirm-done")).to_be_visible()

    patient.goto("/patient/")
    log_in(patient, EMAIL, PASSWORD)
    expect(patient.get_by_test_id("whoami")).to_contain_text(NAME)
    # Connected before leaving: a socket closed while connecting is a console error.
    expect(patient.get_by_test_id("connection")).to_have_attribute("data-state", "on")
    patient.get_by_test_id("verify-link").click()
    patient.get_by_label("PESEL (11 digits)").fill(PESEL)
    patient.get_by_test_id("identity-submit").click()
    expect(patient.get_by_test_id("identity-status")).to_contain_text("waits for the clinic")

    scheduler, scheduler_problems = open_page("scheduler")
    scheduler.goto("/scheduler/")
    log_in(scheduler, "scheduler@demo.test")  # then the TOTP code of the demo secret
    request = scheduler.get_by_test_id("identity-request")
    expect(request).to_have_count(1)
    expect(request).to_contain_text(NAME)
    expect(request).to_contain_text("1992-07-21")
    request.get_by_test_id("identity-document").fill("ID card, number ending 7731")
    request.get_by_test_id("identity-confirm").click()
    expect(scheduler.get_by_test_id("identity-empty")).to_be_visible()

    doctor, doctor_problems = open_page("doctor")
    go_online(doctor)  # Dr House logs in with his TOTP code
    patient.goto("/patient/")
    expect(patient.get_by_test_id("identity-note")).to_be_hidden()
    patient.get_by_label("Specialist").select_option("internal-medicine")
    patient.get_by_test_id("form-chat").check()
    patient.get_by_test_id("start").click()
    card = doctor.get_by_test_id("consultation-card")
    expect(card.get_by_test_id("patient-name")).to_have_text(NAME)
    take_patient(card)
    expect(patient.get_by_test_id("consultation")).to_have_attribute("data-status", "active")
    assert_no_problems(patient_problems, scheduler_problems, doctor_problems)
