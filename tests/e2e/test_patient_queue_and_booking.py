"""The patient page while queued and when booking: the place in line and the wait estimate move
live; with no doctor online the patient is offered slots and books one in one click, downloads
it as iCalendar and cancels it; a basic (unverified) account books visits from the form, up to
its limit."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.helpers import OpenPage, assert_no_problems, log_in, take_patient

DR_SKIN = "Dr Iwona Skóra"


def enter_as(page: Page, email: str) -> None:
    page.goto("/patient/")
    log_in(page, email)
    expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "on")


def join_queue(page: Page, specialty: str) -> None:
    page.get_by_label("Specialist").select_option(specialty)
    page.get_by_test_id("form-chat").check()
    page.get_by_test_id("start").click()
    expect(page.get_by_test_id("consultation")).to_have_attribute(
        "data-status", re.compile(r"^(waiting|offered)$")
    )


@pytest.mark.e2e
def test_place_and_estimate_move_live(open_page: OpenPage) -> None:
    piotr, piotr_problems = open_page("piotr")
    anna, anna_problems = open_page("anna")
    doctor, doctor_problems = open_page("doctor")

    # Nobody is online for dermatology. Piotr queues first, then Anna.
    enter_as(piotr, "piotr@demo.test")
    join_queue(piotr, "dermatology")
    expect(piotr.get_by_test_id("ticket-place")).to_have_text("You are 1st in line")
    expect(piotr.get_by_test_id("ticket-eta")).to_have_text("no doctor online")
    expect(piotr.get_by_test_id("ticket-doctors")).to_have_text("none online")
    expect(piotr.get_by_test_id("ticket-next")).to_contain_text("No doctor of this specialty")

    enter_as(anna, "anna@demo.test")
    join_queue(anna, "dermatology")
    expect(anna.get_by_test_id("ticket-place")).to_have_text("You are 2nd in line")
    expect(anna.get_by_test_id("ticket-waiting")).to_have_text("2")
    # Piotr's page follows the queue too: two waiting now, he is still first.
    expect(piotr.get_by_test_id("ticket-waiting")).to_have_text("2")
    expect(piotr.get_by_test_id("ticket-place")).to_have_text("You are 1st in line")

    # Piotr leaves: Anna moves up, live, without a reload.
    piotr.get_by_role("button", name="Leave the queue").click()
    expect(piotr.get_by_test_id("consultation")).to_have_attribute("data-status", "cancelled")
    expect(piotr.get_by_test_id("ticket")).to_be_hidden()
    expect(anna.get_by_test_id("ticket-place")).to_have_text("You are 1st in line")
    expect(anna.get_by_test_id("ticket-waiting")).to_have_text("1")

    # Dr Skóra goes online: Anna is being connected; once he accepts, the consultation opens.
    doctor.goto("/doctor/")
    log_in(doctor, "dr.skin@demo.test")
    expect(doctor.get_by_test_id("connection")).to_have_attribute("data-state", "on")
    doctor.get_by_test_id("specialty-dermatology").check()
    doctor.get_by_test_id("go-online").click()
    expect(anna.get_by_test_id("consultation")).to_have_attribute("data-status", "offered")
    expect(anna.get_by_test_id("ticket-place")).to_have_text(
        "A doctor is being asked to take you now"
    )
    expect(anna.get_by_test_id("ticket-eta")).to_be_hidden()
    card = doctor.get_by_test_id("consultation-card")
    expect(card.get_by_test_id("patient-name")).to_have_text("Anna Kowalska")
    take_patient(card)
    expect(anna.get_by_test_id("consultation")).to_have_attribute("data-status", "active")
    expect(anna.get_by_test_id("consultation-status")).to_contain_text(f"With {DR_SKIN}")
    expect(anna.get_by_test_id("ticket")).to_be_hidden()
    expect(anna.get_by_test_id("chat-input")).to_be_editable()

    # Piotr queues again behind the busy doctor: now a range, and the doctors' state.
    piotr.get_by_test_id("start").click()
    expect(piotr.get_by_test_id("ticket-place")).to_have_text("You are 1st in line")
    expect(piotr.get_by_test_id("ticket-doctors")).to_have_text("1 online, 1 busy")
    expect(piotr.get_by_test_id("ticket-eta")).to_have_text(
        re.compile(r"^(about \d+–\d+ min|up to \d+ min|about \d+ min)$")
    )
    expect(piotr.get_by_test_id("ticket-next")).to_contain_text("You will be connected")

    # The doctor ends Anna's consultation and is free: Piotr is being connected, live.
    card.get_by_test_id("end-consultation").click()
    expect(anna.get_by_test_id("consultation")).to_have_attribute("data-status", "ended")
    expect(piotr.get_by_test_id("ticket-place")).to_have_text(
        "A doctor is being asked to take you now"
    )
    expect(doctor.locator("[data-testid=consultation-card][data-status=offered]")).to_have_count(1)

    for page in (piotr, anna, doctor):
        expect(page.get_by_test_id("error")).to_be_hidden()
    assert_no_problems(piotr_problems, anna_problems, doctor_problems)


@pytest.mark.e2e
def test_no_doctor_online_offers_slots_to_book_in_one_click(open_page: OpenPage) -> None:
    patient, problems = open_page("patient")

    enter_as(patient, "piotr@demo.test")
    expect(patient.get_by_test_id("bookings-empty")).to_be_visible()
    join_queue(patient, "dermatology")
    expect(patient.get_by_test_id("ticket-eta")).to_have_text("no doctor online")

    # The ticket offers the next free dermatology slots instead of waiting.
    alternatives = patient.get_by_test_id("alternatives")
    offered = alternatives.get_by_test_id("slot")
    expect(offered).to_have_count(5)
    expect(offered.get_by_test_id("slot-doctor")).to_have_text([DR_SKIN] * 5)
    expect(offered.first.get_by_test_id("slot-kind")).to_have_text(
        re.compile(r"^(At the clinic|By phone|Online)$")
    )
    first = offered.first
    first_id = first.get_attribute("data-slot-id")
    first_time = first.get_by_test_id("slot-time").inner_text()

    # One click books it; the patient is still in the queue and is asked what to do.
    first.get_by_test_id("book-slot").click()
    booked = patient.get_by_test_id("alternative-booked")
    expect(booked).to_be_visible()
    expect(booked).to_contain_text(first_time)
    expect(booked).to_contain_text(DR_SKIN)
    expect(patient.get_by_test_id("consultation")).to_have_attribute("data-status", "waiting")
    bookings = patient.get_by_test_id("bookings").get_by_test_id("booking")
    expect(bookings).to_have_count(1)
    expect(bookings.first).to_contain_text(first_time)
    expect(bookings.first).to_contain_text(f"Dermatology · {DR_SKIN}")
    expect(bookings.first.get_by_test_id("booking-status")).to_have_text("Booked")

    # The booking downloads as an iCalendar file.
    with patient.expect_download() as download_info:
        bookings.first.get_by_test_id("booking-ics").click()
    download = download_info.value
    assert re.fullmatch(r"booking-\d+\.ics", download.suggested_filename)
    calendar = Path(download.path()).read_text(encoding="utf-8")
    assert calendar.startswith("BEGIN:VCALENDAR")
    assert "STATUS:CONFIRMED" in calendar
    assert "SUMMARY:Dermatology: Dr Iwona Skóra" in calendar

    # He keeps waiting: the offer is shown again, without the slot he took.
    patient.get_by_test_id("keep-waiting").click()
    expect(booked).to_be_hidden()
    expect(offered).to_have_count(5)
    expect(alternatives.locator(f"[data-slot-id='{first_id}']")).to_have_count(0)

    # He books a second one and this time leaves the queue from the confirmation.
    second_time = offered.first.get_by_test_id("slot-time").inner_text()
    offered.first.get_by_test_id("book-slot").click()
    expect(booked).to_contain_text(second_time)
    patient.get_by_test_id("leave-after-booking").click()
    expect(patient.get_by_test_id("consultation")).to_have_attribute("data-status", "cancelled")
    expect(alternatives).to_be_hidden()
    expect(bookings).to_have_count(2)

    # He cancels the first visit (with a confirmation step): it moves to the cancelled ones.
    visit = bookings.filter(has_text=first_time)
    visit.get_by_test_id("cancel-booking").click()
    visit.get_by_test_id("confirm-cancel-booking").click()
    expect(bookings).to_have_count(1)
    expect(bookings.first).to_contain_text(second_time)
    past = patient.get_by_test_id("bookings-past")
    expect(past).to_be_visible()
    expect(past).to_contain_text("Cancelled and past visits (1)")
    expect(past.get_by_test_id("booking")).to_have_attribute("data-status", "cancelled")

    expect(patient.get_by_test_id("error")).to_be_hidden()
    assert_no_problems(problems)


@pytest.mark.e2e
def test_basic_account_books_visits_up_to_the_limit(open_page: OpenPage) -> None:
    patient, problems = open_page("patient")

    # Barbara cannot consult online (not verified), but she can book visits.
    enter_as(patient, "basia@demo.test")
    expect(patient.get_by_test_id("identity-note")).to_be_visible()
    usage = patient.get_by_test_id("bookings-usage")
    expect(usage).to_contain_text("0 of 10 active bookings")

    book = patient.get_by_test_id("book-section")
    book.get_by_label("Specialty").select_option("dermatology")
    book.get_by_label("Kind of visit").select_option("stationary")
    book.get_by_test_id("find-slots").click()
    slots = book.get_by_test_id("slot")
    expect(slots).to_have_count(10)
    expect(slots.get_by_test_id("slot-kind")).to_have_text(["At the clinic"] * 10)

    # One click books the first one; it is confirmed and listed under My bookings.
    first_time = slots.first.get_by_test_id("slot-time").inner_text()
    slots.first.get_by_test_id("book-slot").click()
    confirmation = book.get_by_test_id("book-confirmation")
    expect(confirmation).to_contain_text("Booked:")
    expect(confirmation).to_contain_text(first_time)
    bookings = patient.get_by_test_id("bookings").get_by_test_id("booking")
    expect(bookings).to_have_count(1)
    expect(bookings.first).to_contain_text(first_time)
    expect(usage).to_contain_text("1 of 10 active bookings")

    # She books nine more: the most a basic account may hold.
    for count in range(2, 11):
        slots.first.get_by_test_id("book-slot").click()
        expect(bookings).to_have_count(count)
    expect(usage).to_contain_text("10 of 10 active bookings")

    # The eleventh is refused, and the page says why.
    problems.expect_error(
        r"status of 4\d\d .* @ .*/api/bookings$", "Chromium logs the refused booking's answer"
    )
    book.get_by_test_id("find-slots").click()
    expect(slots).to_have_count(10)
    slots.first.get_by_test_id("book-slot").click()
    refusal = book.get_by_test_id("book-error")
    expect(refusal).to_contain_text("You already hold 10 active bookings")
    expect(refusal).to_contain_text("confirm your identity")
    expect(bookings).to_have_count(10)
    expect(confirmation).to_be_hidden()

    assert_no_problems(problems)
