"""Booking from a referral on the patient's page: Dr House issues Anna a rehabilitation
referral; the ordinary booking list says rehabilitation needs one and refuses a booking without
it, pointing at the referral; the referral's "Book a visit" lists Dr Ola Ruch's rehabilitation
hours (weekdays 16:00-18:00 Warsaw), books one, then reads "Used by your booking on …"; the
booking is under My bookings; cancelling it frees the referral."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import (
    OpenPage,
    anna_and_house_online,
    assert_no_problems,
    issue_outcome,
    log_in,
    logged_in,
    run,
)
from tests.support import Server, start_and_accept

WARSAW = ZoneInfo("Europe/Warsaw")


async def rehabilitation_referral(url: str) -> int:
    """Over HTTP and Socket.IO: Dr House ends Anna's visit with a rehabilitation referral."""
    async with anna_and_house_online(url) as (patient, doctor, ws):
        cid = await start_and_accept(patient, ws, "internal-medicine")
        referral = {
            "kind": "rehabilitation",
            "target": "rehabilitation",
            "diagnosis": "M54.5",
            "reason": "Low back pain for six weeks.",
        }
        out = await issue_outcome(
            doctor, cid, prescriptions=[], sick_leave=None, referrals=[referral]
        )
        return int(out["referrals"][0]["id"])


async def used_by(url: str, referral_id: int) -> Any:
    async with logged_in(url, "anna@demo.test") as client:
        issued = await client.call("GET", "/api/patients/me/issued")
        return next(r["used_by_booking"] for r in issued["referrals"] if r["id"] == referral_id)


@pytest.mark.e2e
def test_a_referral_books_a_rehabilitation_visit_and_cancelling_frees_it(
    open_page: OpenPage, server: Server
) -> None:
    referral_id = run(rehabilitation_referral(server.url))
    page, problems = open_page("patient")
    problems.expect_error(
        r"Failed to load resource: .* 409",
        "booking rehabilitation without a referral is refused (409 referral_required)",
    )
    page.goto("/patient/")
    log_in(page, "anna@demo.test")
    # The documents panel (the record below shows the visit's referral too, without actions).
    referral = page.get_by_test_id("issued").locator(f'[data-referral-id="{referral_id}"]')
    expect(referral).to_contain_text("Referral: Rehabilitation")
    book_button = referral.get_by_test_id("referral-book")
    expect(book_button).to_have_text("Book a visit")

    # The ordinary list: rehabilitation's slots need a referral; booking one without it is
    # refused with the server's reason and where to book from.
    page.get_by_test_id("book-specialty").select_option("rehabilitation")
    page.get_by_test_id("find-slots").click()
    plain = page.get_by_test_id("slots").get_by_test_id("slot").first
    expect(plain.get_by_test_id("slot-needs-referral")).to_have_text("Needs a referral")
    plain.get_by_test_id("book-slot").click()
    error = page.get_by_test_id("book-error")
    expect(error).to_contain_text("Rehabilitation is booked only with a referral")
    expect(error).to_contain_text('use "Book a visit" on it under Prescriptions and documents')
    expect(page.get_by_test_id("bookings").get_by_test_id("booking")).to_have_count(0)

    # From the referral: Dr Ola Ruch's rehabilitation hours, weekdays 16:00-18:00 in Warsaw.
    book_button.click()
    slots = referral.get_by_test_id("referral-slots").get_by_test_id("slot")
    expect(slots.first).to_be_visible()
    assert slots.count() == 10
    expect(referral.get_by_test_id("slot-needs-referral")).to_have_count(0)
    for i in range(slots.count()):
        expect(slots.nth(i).get_by_test_id("slot-doctor")).to_have_text("Dr Ola Ruch")
        starts = datetime.fromisoformat(
            str(slots.nth(i).get_by_test_id("slot-time").get_attribute("datetime"))
        ).astimezone(WARSAW)
        assert starts.weekday() < 5 and 16 <= starts.hour < 18, starts
    chosen = slots.first
    when = chosen.get_by_test_id("slot-time").inner_text()
    chosen.get_by_test_id("book-slot").click()

    used = referral.get_by_test_id("referral-used")
    expect(used).to_contain_text(f"Used by your booking on {when}")
    expect(book_button).to_have_count(0)
    expect(referral.get_by_test_id("referral-booking")).to_have_count(0)
    booking = page.get_by_test_id("bookings").get_by_test_id("booking")
    expect(booking).to_have_count(1)
    expect(booking.get_by_test_id("booking-time")).to_have_text(when)
    expect(booking).to_contain_text("Rehabilitation · Dr Ola Ruch")
    expect(booking.get_by_test_id("booking-referral")).to_have_text("Booked with your referral")
    booking_id = booking.get_attribute("data-booking-id")
    expect(used).to_have_attribute("data-booking-id", str(booking_id))
    assert run(used_by(server.url, referral_id)) == int(str(booking_id))

    # Cancelling the visit frees the referral: "Book a visit" is back.
    booking.get_by_test_id("cancel-booking").click()
    page.get_by_test_id("confirm-cancel-booking").click()
    expect(page.get_by_test_id("bookings").get_by_test_id("booking")).to_have_count(0)
    expect(page.get_by_test_id("bookings-past").get_by_test_id("booking-status")).to_have_text(
        "Cancelled"
    )
    expect(referral.get_by_test_id("referral-used")).to_have_count(0)
    expect(referral.get_by_test_id("referral-book")).to_have_text("Book a visit")
    assert run(used_by(server.url, referral_id)) is None
    assert_no_problems(problems)
