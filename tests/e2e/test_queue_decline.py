"""The patient page when the only doctor online declines the patient: it says that nobody else
can take them now rather than "less than a minute", keeps their place and offers slots; the
decline's end and a second doctor are covered over Socket.IO in tests/integration/test_queue.py."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import OpenPage, assert_no_problems, log_in


@pytest.mark.e2e
def test_a_patient_declined_by_the_only_doctor_online_is_told_so(open_page: OpenPage) -> None:
    patient, patient_problems = open_page("patient")
    doctor, doctor_problems = open_page("doctor")

    doctor.goto("/doctor/")
    log_in(doctor, "dr.skin@demo.test")
    expect(doctor.get_by_test_id("connection")).to_have_attribute("data-state", "on")
    doctor.get_by_test_id("specialty-dermatology").check()
    doctor.get_by_test_id("go-online").click()
    expect(doctor.get_by_test_id("presence-status")).to_have_attribute("data-state", "online")

    patient.goto("/patient/")
    log_in(patient, "piotr@demo.test")
    expect(patient.get_by_test_id("connection")).to_have_attribute("data-state", "on")
    patient.get_by_label("Specialist").select_option("dermatology")
    patient.get_by_test_id("form-chat").check()
    patient.get_by_test_id("start").click()
    card = doctor.get_by_test_id("consultation-card")
    expect(card).to_have_attribute("data-status", "offered")
    card.get_by_test_id("decline-offer").click()

    expect(patient.get_by_test_id("consultation")).to_have_attribute("data-status", "waiting")
    expect(patient.get_by_test_id("ticket-place")).to_have_text("You are 1st in line")
    expect(patient.get_by_test_id("ticket-eta")).to_have_text("no other doctor online now")
    expect(patient.get_by_test_id("ticket-doctors")).to_have_text("1 online, 0 busy")
    expect(patient.get_by_test_id("ticket-next")).to_contain_text(
        "The doctor online cannot take you just now."
    )
    expect(patient.get_by_test_id("alternatives").get_by_test_id("slot")).to_have_count(5)

    for page in (patient, doctor):
        expect(page.get_by_test_id("error")).to_be_hidden()
    assert_no_problems(patient_problems, doctor_problems)
