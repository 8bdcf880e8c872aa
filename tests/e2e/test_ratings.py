"""Ratings in the browser: the patient rates a finished consultation in their record and the
scheduler's page shows the average move live; a past booked visit is rated under "Cancelled and
past visits"; the doctor sees the comment in their console, without the patient's name."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Locator, Page, expect

from consult.storage import tables as t
from tests.e2e.helpers import OpenPage, assert_no_problems, log_in
from tests.support import ApiClient, Server, SocketClient, start_and_accept

IM = {"specialties": ["internal-medicine"], "forms": ["chat"]}


async def two_consultations_one_rated(url: str) -> tuple[int, int]:
    """Over HTTP and Socket.IO: Dr House consults Anna twice; she rates the first 2 of 5."""
    anna = await ApiClient(url).login("anna@demo.test")
    house = await ApiClient(url).login("dr.house@demo.test")
    ws = await SocketClient().connect(url, house.token)
    try:
        await ws.emit("presence:online", IM)
        ended = []
        for _ in range(2):
            cid = await start_and_accept(anna, ws, "internal-medicine")
            await house.call("POST", f"/api/consultations/{cid}/end", {})
            ended.append(cid)
        await anna.call("PUT", f"/api/consultations/{ended[0]}/rating", {"score": 2}, expect=201)
        return ended[0], ended[1]
    finally:
        await ws.close()
        for client in (anna, house):
            await client.close()


def run(coroutine: object) -> object:
    # Playwright's sync API runs its own loop in this thread: the async clients get another.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()  # type: ignore[arg-type]


def im_row(page: Page, kind: str = "consultation") -> Locator:
    row = page.locator("[data-testid=ratings-specialty][data-specialty=internal-medicine]")
    return row.locator(f"td[data-kind={kind}]")


@pytest.mark.e2e
def test_the_scheduler_sees_a_new_rating_move_the_average_live(
    open_page: OpenPage, server: Server
) -> None:
    first, second = run(two_consultations_one_rated(server.url))  # type: ignore[misc]
    scheduler, scheduler_problems = open_page("scheduler")
    scheduler.goto("/scheduler/")
    log_in(scheduler, "scheduler@demo.test")
    cell = im_row(scheduler)
    expect(cell.get_by_test_id("rating-average")).to_have_text("2.00")
    expect(cell.get_by_test_id("rating-count")).to_have_text(" (1)")

    patient, patient_problems = open_page("patient")
    patient.goto("/patient/")
    log_in(patient, "anna@demo.test")
    rated = patient.locator(f"[data-testid=record-entry][data-consultation-id='{first}']")
    earlier = rated.locator("[data-testid=rating-form][data-kind=consultation]")
    expect(earlier.get_by_test_id("rating-status")).to_contain_text("You rated it 2 of 5")
    expect(earlier.locator("input[value='2']")).to_be_checked()
    expect(earlier.get_by_test_id("rating-save")).to_have_text("Change")

    entry = patient.locator(f"[data-testid=record-entry][data-consultation-id='{second}']")
    form = entry.locator("[data-testid=rating-form][data-kind=consultation]")
    form.locator("input[value='5']").check()
    form.get_by_test_id("rating-comment").fill("Quick and clear.")
    form.get_by_test_id("rating-save").click()
    expect(form.get_by_test_id("rating-status")).to_contain_text("You rated it 5 of 5")
    expect(form.get_by_test_id("rating-status")).to_contain_text("You can change it until")

    # Live on the scheduler's page, no reload: (2 + 5) / 2.
    expect(cell.get_by_test_id("rating-average")).to_have_text("3.50")
    expect(cell.get_by_test_id("rating-count")).to_have_text(" (2)")
    spread = cell.get_by_test_id("rating-distribution")
    expect(spread).to_have_attribute("data-distribution", "0,1,0,0,1")
    doctor = scheduler.get_by_test_id("ratings-doctor")
    expect(doctor).to_contain_text("Dr Gregory House")
    expect(
        doctor.locator("td[data-kind=consultation]").get_by_test_id("rating-average")
    ).to_have_text("3.50")

    # The service rating of the same consultation moves the service column.
    service = entry.locator("[data-testid=rating-form][data-kind=service]")
    service.locator("input[value='4']").check()
    service.get_by_test_id("rating-save").click()
    expect(im_row(scheduler, "service").get_by_test_id("rating-average")).to_have_text("4.00")

    # The doctor reads the comment in the console, with no name.
    console, console_problems = open_page("doctor")
    console.goto("/doctor/")
    log_in(console, "dr.house@demo.test")
    comments = console.get_by_test_id("my-rating-comment")
    expect(comments).to_have_count(1)
    expect(comments).to_contain_text("Quick and clear.")
    expect(comments).not_to_contain_text("Anna")
    mine = console.locator("[data-testid=my-rating][data-kind=consultation]")
    expect(mine.get_by_test_id("rating-average")).to_have_text("3.50 of 5")
    assert_no_problems(scheduler_problems, patient_problems, console_problems)


def past_booking(database: Path) -> int:
    """A visit Anna booked with Dr Grey that ended an hour ago, straight into the server's
    database (a booking is only made for a slot to come)."""
    engine = sa.create_engine(f"sqlite:///{database}")
    try:
        with engine.begin() as conn:
            users = dict(conn.execute(sa.select(t.users.c.email, t.users.c.id)).all())
            start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
            slot = conn.execute(
                t.slots.insert()
                .values(
                    doctor_id=users["dr.grey@demo.test"],
                    specialty_code="paediatrics",
                    kind="stationary",
                    starts_at=start,
                    ends_at=start + timedelta(minutes=20),
                    created_at=start - timedelta(days=3),
                )
                .returning(t.slots.c.id)
            ).scalar_one()
            return int(
                conn.execute(
                    t.bookings.insert()
                    .values(
                        slot_id=slot,
                        patient_id=users["anna@demo.test"],
                        status="active",
                        created_at=start - timedelta(days=2),
                    )
                    .returning(t.bookings.c.id)
                ).scalar_one()
            )
    finally:
        engine.dispose()


@pytest.mark.e2e
def test_a_past_booked_visit_is_rated_on_the_patients_page(
    open_page: OpenPage, server: Server
) -> None:
    booking = past_booking(server.log.parent / "consult.db")
    patient, problems = open_page("patient")
    patient.goto("/patient/")
    log_in(patient, "anna@demo.test")
    past = patient.get_by_test_id("bookings-past")
    past.locator(":scope > summary").click()  # its own, not a rating form's
    item = past.locator(f"[data-booking-id='{booking}']")
    form = item.locator("[data-testid=rating-form][data-kind=booking]")
    form.locator("input[value='3']").check()
    form.get_by_test_id("rating-comment").fill("The phone line was busy.")
    form.get_by_test_id("rating-save").click()
    expect(form.get_by_test_id("rating-status")).to_contain_text("You rated it 3 of 5")

    # After a reload the form shows the rating, and saving again changes it.
    patient.reload()
    past.locator(":scope > summary").click()  # its own, not a rating form's
    form = item.locator("[data-testid=rating-form][data-kind=booking]")
    expect(form.locator("input[value='3']")).to_be_checked()
    expect(form.get_by_test_id("rating-comment")).to_have_value("The phone line was busy.")
    form.locator("input[value='4']").check()
    form.get_by_test_id("rating-save").click()
    expect(form.get_by_test_id("rating-status")).to_contain_text("You rated it 4 of 5")
    assert_no_problems(problems)
