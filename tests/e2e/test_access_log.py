"""Who saw my data, in the browser: the doctor takes the patient, his console reads her record,
and her page's access history lists him, what he read and from which kind of client."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import OpenPage, assert_no_problems, go_online, log_in, take_patient

DOCTOR = "Dr Gregory House"


@pytest.mark.e2e
def test_the_patient_sees_the_doctor_who_just_read_her_record(open_page: OpenPage) -> None:
    doctor, doctor_problems = open_page("doctor")
    patient, patient_problems = open_page("patient")
    go_online(doctor)

    patient.goto("/patient/")
    log_in(patient, "anna@demo.test")
    history = patient.get_by_test_id("access-log-details")
    # Before any doctor: nobody else has seen her data.
    history.locator("summary").click()
    expect(patient.get_by_test_id("access-log-empty")).to_be_visible()

    patient.get_by_label("Specialist").select_option("internal-medicine")
    patient.get_by_test_id("form-chat").check()
    patient.get_by_test_id("start").click()
    card = doctor.get_by_test_id("consultation-card")
    take_patient(card)
    # Once he has taken her, the console reads her record (the patient timeline on his card).
    expect(card.get_by_test_id("patient-history")).to_be_attached()
    expect(patient.get_by_test_id("consultation")).to_have_attribute("data-status", "active")

    patient.get_by_test_id("access-log-refresh").click()
    entries = patient.get_by_test_id("access-entry")
    record_read = entries.filter(has_text="timeline read")
    expect(record_read.first).to_be_visible()
    expect(record_read.first.get_by_test_id("access-who")).to_have_text(DOCTOR)
    expect(record_read.first.get_by_test_id("access-client")).to_have_text("· web page")
    expect(record_read.first).to_have_attribute("data-by", "doctor")
    expect(patient.get_by_test_id("access-log-empty")).to_be_hidden()
    # Only others' accesses unless she asks for her own too.
    expect(entries.and_(patient.locator("[data-by=you]"))).to_have_count(0)
    patient.get_by_test_id("access-log-own").check()
    expect(entries.and_(patient.locator("[data-by=you]")).first).to_be_visible()
    assert_no_problems(doctor_problems, patient_problems)
