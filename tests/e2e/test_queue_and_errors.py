"""The patient page's other paths: a wrong password, specialties the plan does not cover,
waiting for a doctor, leaving the queue, being connected when a doctor comes online, logging
out, and an unverified account refused."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import OpenPage, assert_no_problems, chat_bodies, log_in, say, take_patient


@pytest.mark.e2e
def test_waiting_patient_is_connected_when_a_doctor_comes_online(open_page: OpenPage) -> None:
    patient, patient_problems = open_page("patient")
    doctor, doctor_problems = open_page("doctor")

    # A wrong password: the server's message is shown and the login form stays.
    patient_problems.expect_error(
        r"status of 401 .* @ .*/api/login$", "Chromium logs the refused login's 401 answer"
    )
    patient.goto("/patient/")
    log_in(patient, "piotr@demo.test", "not-the-password")
    expect(patient.get_by_test_id("error")).to_contain_text(
        "wrong email or password", ignore_case=True
    )
    expect(patient.get_by_test_id("login-form")).to_be_visible()

    # Piotr's basic plan: specialties it does not cover cannot be chosen, and say why.
    log_in(patient, "piotr@demo.test")
    expect(patient.get_by_test_id("error")).to_be_hidden()
    expect(patient.get_by_test_id("whoami")).to_contain_text("Piotr Nowak")
    uncovered = patient.locator("#specialty option:disabled")
    expect(uncovered).to_have_count(4)
    expect(uncovered.filter(has_text="Cardiology")).to_have_text(
        "Cardiology — not covered by your plan"
    )
    expect(patient.locator("#specialty option:enabled")).to_have_text(
        ["Dermatology", "Internal medicine", "Paediatrics"]
    )

    # Nobody is online: he waits, and may leave the queue.
    patient.get_by_label("Specialist").select_option("paediatrics")
    patient.get_by_test_id("start").click()
    consultation = patient.get_by_test_id("consultation")
    expect(consultation).to_have_attribute("data-status", "waiting")
    expect(patient.get_by_test_id("consultation-status")).to_contain_text("Waiting for a doctor")
    expect(patient.get_by_test_id("start")).to_be_disabled()
    expect(patient.get_by_test_id("chat-input")).to_have_count(0)
    patient.get_by_test_id("end-consultation").click()
    expect(consultation).to_have_attribute("data-status", "cancelled")
    expect(patient.get_by_test_id("start")).to_be_enabled()

    # He queues again; the waiting consultation survives a reload of the page.
    patient.get_by_test_id("start").click()
    expect(consultation).to_have_attribute("data-status", "waiting")
    patient.reload()
    expect(consultation).to_have_attribute("data-status", "waiting")
    expect(patient.get_by_test_id("connection")).to_have_attribute("data-state", "on")

    # Dr Grey comes online for paediatrics and takes him: both pages show the consultation.
    doctor.goto("/doctor/")
    log_in(doctor, "dr.grey@demo.test")
    expect(doctor.get_by_test_id("connection")).to_have_attribute("data-state", "on")
    doctor.get_by_test_id("specialty-paediatrics").check()
    doctor.get_by_test_id("go-online").click()
    expect(doctor.get_by_test_id("presence-status")).to_have_attribute("data-state", "online")
    card = doctor.get_by_test_id("consultation-card")
    expect(card.get_by_test_id("patient-name")).to_have_text("Piotr Nowak")
    take_patient(card)
    expect(consultation).to_have_attribute("data-status", "active")
    expect(patient.get_by_test_id("consultation-status")).to_contain_text("With Dr Meredith Grey")

    # The patient ends it himself; the doctor's console follows.
    say(patient, "Thank you, it is already better.")
    expect(chat_bodies(card)).to_have_text(["Thank you, it is already better."])
    patient.get_by_test_id("end-consultation").click()
    expect(consultation).to_have_attribute("data-status", "ended")
    expect(card).to_have_attribute("data-status", "ended")
    expect(card.get_by_test_id("save-recommendation")).to_be_hidden()
    entry = patient.get_by_test_id("record-entry")
    expect(entry).to_have_count(1)
    entry.get_by_test_id("record-transcript-toggle").click()
    expect(entry.get_by_test_id("message-body")).to_have_text(["Thank you, it is already better."])

    # Going offline is acknowledged.
    doctor.get_by_test_id("go-offline").click()
    expect(doctor.get_by_test_id("presence-status")).to_have_attribute("data-state", "offline")

    # Barbara's account is not verified: the page says so, and so does the server on Start.
    patient.get_by_test_id("logout").click()
    expect(patient.get_by_test_id("login-form")).to_be_visible()
    log_in(patient, "basia@demo.test")
    expect(patient.get_by_test_id("whoami")).to_contain_text("Barbara")
    expect(patient.get_by_test_id("identity-note")).to_be_visible()
    expect(patient.get_by_test_id("record-empty")).to_be_visible()
    patient_problems.expect_error(
        r"status of 403 .* @ .*/api/consultations$", "Chromium logs the refused Start's 403"
    )
    patient.get_by_test_id("start").click()
    expect(patient.get_by_test_id("error")).to_contain_text(
        "need a verified account", ignore_case=True
    )
    expect(patient.get_by_test_id("consultation")).to_be_hidden()

    assert_no_problems(doctor_problems, patient_problems)
