"""The scheduler page's weekly hours: a scheduler picks a doctor, adds hours (their slots open
for booking at once), is told clearly when new hours overlap, and removes hours again; the
doctor's open console follows live under "My weekly hours", beside their upcoming
appointments."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import OpenPage, assert_no_problems, log_in


@pytest.mark.e2e
def test_a_scheduler_adds_and_removes_a_doctors_weekly_hours(open_page: OpenPage) -> None:
    page, problems = open_page("scheduler")
    page.goto("/scheduler/")
    log_in(page, "scheduler@demo.test")
    hours = page.get_by_test_id("hours")
    expect(hours.get_by_test_id("hours-doctor")).to_contain_text("Dr Adam Serce")
    hours.get_by_test_id("hours-doctor").select_option(label="Dr Adam Serce")
    rows = hours.get_by_test_id("hours-row")
    expect(rows).to_have_count(10)  # the demo's weekday mornings and afternoons
    expect(rows.first).to_contain_text("Monday")
    expect(rows.first).to_contain_text("08:00–12:00")
    expect(hours.get_by_test_id("hours-timezone")).to_have_value("Europe/Warsaw")

    # A Saturday morning of online consultations: added, and its slots open at once.
    hours.get_by_test_id("hours-weekday").select_option(label="Saturday")
    hours.get_by_test_id("hours-start").fill("09:00")
    hours.get_by_test_id("hours-end").fill("11:00")
    hours.get_by_test_id("hours-specialty").select_option(label="Cardiology")
    hours.get_by_test_id("hours-kind").select_option(label="Online")
    hours.get_by_test_id("hours-slot-minutes").fill("30")
    hours.get_by_test_id("hours-add").click()
    notice = hours.get_by_test_id("hours-notice")
    expect(notice).to_have_text(
        re.compile(r"^Added Saturday 09:00–11:00 \(Cardiology, online\): [4-8] slots open")
    )
    expect(rows).to_have_count(11)
    saturday = rows.filter(has_text="Saturday")
    expect(saturday).to_contain_text("30 min")
    found = re.search(r": (\d) slots", notice.inner_text())
    assert found is not None
    created = int(found.group(1))

    # Monday 11:00-13:00 overlaps his Monday morning: refused, saying which hours, nothing added.
    problems.expect_error(
        r"status of 409 .* @ .*/api/doctors/\d+/schedule$",
        "Chromium logs the refused overlap's 409 answer",
    )
    hours.get_by_test_id("hours-weekday").select_option(label="Monday")
    hours.get_by_test_id("hours-start").fill("11:00")
    hours.get_by_test_id("hours-end").fill("13:00")
    hours.get_by_test_id("hours-add").click()
    expect(hours.get_by_test_id("hours-error")).to_contain_text("overlap the doctor's hours")
    expect(hours.get_by_test_id("hours-error")).to_contain_text("Mon 08:00-12:00")
    expect(rows).to_have_count(11)

    # Removing the Saturday hours takes their free slots away.
    saturday.get_by_test_id("hours-remove").click()
    expect(notice).to_have_text(
        f"Removed Saturday 09:00–11:00 (Cardiology, online): {created} free slots removed."
    )
    expect(rows).to_have_count(10)
    expect(rows.filter(has_text="Saturday")).to_have_count(0)
    assert_no_problems(problems)


@pytest.mark.e2e
def test_a_doctors_console_shows_their_weekly_hours_as_a_scheduler_changes_them(
    open_page: OpenPage,
) -> None:
    doctor, doctor_problems = open_page("doctor")
    doctor.goto("/doctor/")
    log_in(doctor, "dr.heart@demo.test")
    mine = doctor.get_by_test_id("my-hours")
    my_rows = mine.get_by_test_id("my-hours-row")
    expect(my_rows).to_have_count(10)  # the demo's weekday mornings and afternoons
    expect(my_rows.first).to_contain_text("Monday")
    expect(my_rows.first).to_contain_text("08:00–12:00")
    expect(my_rows.first).to_contain_text("Europe/Warsaw")  # the clinic's clock, as given
    expect(my_rows.first).to_contain_text("At the clinic")
    expect(mine.get_by_test_id("my-hours-empty")).to_be_hidden()

    # Upcoming appointments: none, until a patient books one of his slots.
    appointments = doctor.get_by_test_id("appointments")
    expect(appointments.get_by_test_id("appointments-empty")).to_have_text(
        "No booked appointments coming up."
    )
    patient, patient_problems = open_page("patient")
    login = {"email": "anna@demo.test", "password": "demo1234"}
    assert patient.request.post("/api/login", data=login).ok
    slots = patient.request.get("/api/slots?specialty=cardiology&kind=online&limit=50").json()
    slot = next(s for s in slots["slots"] if s["doctor"]["name"] == "Dr Adam Serce")
    # With the cookie, as the pages send it: from the server's own origin (else 403 cross_origin).
    origin = {"Origin": "/".join(doctor.url.split("/")[:3])}
    booking = patient.request.post("/api/bookings", data={"slot_id": slot["id"]}, headers=origin)
    assert booking.status == 201
    appointments.get_by_test_id("appointments-refresh").click()
    booked = appointments.get_by_test_id("appointment")
    expect(booked).to_have_count(1)
    expect(booked).to_contain_text("Anna Kowalska")
    expect(booked).to_contain_text("Online")
    expect(appointments.get_by_test_id("appointments-empty")).to_be_hidden()

    # A scheduler adds a Saturday morning: the open console shows it without a reload.
    scheduler, scheduler_problems = open_page("scheduler")
    scheduler.goto("/scheduler/")
    log_in(scheduler, "scheduler@demo.test")
    hours = scheduler.get_by_test_id("hours")
    expect(hours.get_by_test_id("hours-doctor")).to_contain_text("Dr Adam Serce")
    hours.get_by_test_id("hours-doctor").select_option(label="Dr Adam Serce")
    rows = hours.get_by_test_id("hours-row")
    expect(rows).to_have_count(10)
    hours.get_by_test_id("hours-weekday").select_option(label="Saturday")
    hours.get_by_test_id("hours-start").fill("09:00")
    hours.get_by_test_id("hours-end").fill("11:00")
    hours.get_by_test_id("hours-specialty").select_option(label="Cardiology")
    hours.get_by_test_id("hours-kind").select_option(label="Online")
    hours.get_by_test_id("hours-timezone").fill("Europe/Warsaw")
    hours.get_by_test_id("hours-add").click()
    expect(rows).to_have_count(11)
    expect(my_rows).to_have_count(11)
    saturday = my_rows.filter(has_text="Saturday")
    expect(saturday).to_contain_text("09:00–11:00")
    expect(saturday).to_contain_text("Cardiology")
    expect(saturday).to_contain_text("Online")
    expect(my_rows.last).to_contain_text("Saturday")  # by weekday, then start
    notice = mine.get_by_test_id("my-hours-notice")
    expect(notice).to_have_text(
        "A scheduler added your hours on Saturday 09:00–11:00 Europe/Warsaw (Cardiology, online)."
    )

    # Removed: gone from the console, again without a reload.
    rows.filter(has_text="Saturday").get_by_test_id("hours-remove").click()
    expect(my_rows).to_have_count(10)
    expect(my_rows.filter(has_text="Saturday")).to_have_count(0)
    expect(notice).to_contain_text("A scheduler removed your hours on Saturday 09:00–11:00")

    # All of his hours removed: the console says so. The booked visit stays.
    for left in range(10, 0, -1):
        expect(rows).to_have_count(left)
        rows.first.get_by_test_id("hours-remove").click()
    expect(rows).to_have_count(0)
    expect(my_rows).to_have_count(0)
    expect(mine.get_by_test_id("my-hours-table")).to_be_hidden()
    expect(mine.get_by_test_id("my-hours-empty")).to_have_text(
        "No weekly hours yet — ask a scheduler."
    )
    appointments.get_by_test_id("appointments-refresh").click()
    expect(booked).to_have_count(1)
    assert_no_problems(doctor_problems, patient_problems, scheduler_problems)
