"""A whole chat consultation in two browsers: the doctor goes online, the patient starts a
consultation, they chat both ways, the doctor writes a recommendation and ends the visit, and
the patient's record shows the consultation, its transcript and the recommendation."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import OpenPage, assert_no_problems, chat_bodies, log_in, say, take_patient

DOCTOR = "Dr Gregory House"
PATIENT = "Anna Kowalska"
HOSTILE = "<b>bold</b><img src=x onerror=alert(1)>"
RECOMMENDATION = "Rest, drink plenty of fluids; paracetamol 500 mg up to 4 times a day."


@pytest.mark.e2e
def test_chat_consultation_from_start_to_record(open_page: OpenPage) -> None:
    doctor, doctor_problems = open_page("doctor")
    patient, patient_problems = open_page("patient")

    # The doctor logs in and goes online for internal medicine, chat.
    doctor.goto("/doctor/")
    log_in(doctor, "dr.house@demo.test")
    expect(doctor.get_by_test_id("whoami")).to_have_text(DOCTOR)
    expect(doctor.get_by_test_id("connection")).to_have_attribute("data-state", "on")
    doctor.get_by_test_id("specialty-cardiology").uncheck()
    expect(doctor.get_by_test_id("specialty-internal-medicine")).to_be_checked()
    expect(doctor.get_by_test_id("form-chat")).to_be_checked()
    doctor.get_by_test_id("go-online").click()
    presence = doctor.get_by_test_id("presence-status")
    expect(presence).to_have_attribute("data-state", "online")
    expect(presence).to_contain_text("Internal medicine")
    expect(doctor.get_by_test_id("no-consultations")).to_be_visible()

    # The patient logs in: an empty record; every specialty is covered by her premium plan.
    patient.goto("/patient/")
    log_in(patient, "anna@demo.test")
    expect(patient.get_by_test_id("whoami")).to_contain_text(PATIENT)
    expect(patient.get_by_test_id("record-empty")).to_be_visible()
    expect(patient.locator("#specialty option:disabled")).to_have_count(0)

    # She starts a chat consultation with internal medicine; the free doctor takes her at once.
    patient.get_by_label("Specialist").select_option("internal-medicine")
    patient.get_by_test_id("form-chat").check()
    patient.get_by_test_id("start").click()
    card = doctor.get_by_test_id("consultation-card")
    expect(card).to_have_count(1)
    expect(card.get_by_test_id("patient-name")).to_have_text(PATIENT)
    take_patient(card)
    consultation = patient.get_by_test_id("consultation")
    expect(consultation).to_have_attribute("data-status", "active")
    expect(patient.get_by_test_id("consultation-status")).to_contain_text(f"With {DOCTOR}")
    expect(card.get_by_test_id("consultation-meta")).to_contain_text("Internal medicine")

    # They chat both ways; each message shows on the other's page.
    say(patient, "Hello doctor, I have had a sore throat since Monday.")
    expect(chat_bodies(card)).to_have_text(["Hello doctor, I have had a sore throat since Monday."])
    say(card, "Hello Anna. Any fever?", with_enter=True)
    expect(chat_bodies(patient)).to_have_text(
        ["Hello doctor, I have had a sore throat since Monday.", "Hello Anna. Any fever?"]
    )

    # Reloading the patient's page restores the open consultation and its transcript.
    patient.reload()
    expect(consultation).to_have_attribute("data-status", "active")
    expect(chat_bodies(patient)).to_have_count(2)

    # Markup in a message is shown as literal text on both pages, never interpreted.
    say(patient, HOSTILE)
    say(patient, "38.2 °C last night.")
    expected = [
        "Hello doctor, I have had a sore throat since Monday.",
        "Hello Anna. Any fever?",
        HOSTILE,
        "38.2 °C last night.",
    ]
    for page in (patient, doctor):
        expect(chat_bodies(page)).to_have_text(expected)
        expect(page.locator("[data-testid=chat-transcript] :is(img, b)")).to_have_count(0)

    # The doctor writes a recommendation and ends the consultation.
    card.get_by_label("Recommendation for the patient's record").fill(RECOMMENDATION)
    card.get_by_test_id("save-recommendation").click()
    expect(card.get_by_test_id("saved-recommendation")).to_contain_text(RECOMMENDATION)
    card.get_by_test_id("end-consultation").click()
    expect(card).to_have_attribute("data-status", "ended")
    expect(card.get_by_test_id("chat-input")).to_be_hidden()

    # The patient sees that it ended, and her record shows it with transcript and recommendation.
    expect(consultation).to_have_attribute("data-status", "ended")
    expect(patient.get_by_test_id("consultation-status")).to_contain_text("has ended")
    expect(patient.get_by_test_id("chat-input")).to_be_hidden()
    entry = patient.get_by_test_id("record-entry")
    expect(entry).to_have_count(1)
    expect(entry).to_have_attribute("data-status", "ended")
    expect(entry).to_contain_text("Internal medicine")
    expect(entry).to_contain_text(DOCTOR)
    expect(entry.get_by_test_id("message-body")).to_have_text(expected)
    expect(entry.get_by_test_id("record-recommendation")).to_have_count(1)
    expect(entry.get_by_test_id("record-recommendation")).to_contain_text(RECOMMENDATION)
    expect(patient.locator("[data-testid=record] :is(img, b)")).to_have_count(0)
    expect(patient.get_by_test_id("start")).to_be_enabled()
    expect(patient.get_by_test_id("error")).to_be_hidden()
    expect(doctor.get_by_test_id("error")).to_be_hidden()

    assert_no_problems(doctor_problems, patient_problems)
