"""The scheduler page's renewal requests: a patient's request waiting for Dr House is listed
with the doctor it waits for; the scheduler hands it to Dr Grey (same specialty), and Dr Grey's
inbox holds it."""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from consult.outcome.validity import clinic_day
from tests.e2e.helpers import OpenPage, assert_no_problems, log_in
from tests.integration.test_outcome import outcome_body
from tests.support import ApiClient, Server, SocketClient, start_and_accept


async def renewal_waiting_for_house(url: str) -> int:
    """Over HTTP and Socket.IO: Dr House issues aspirin to Anna, who asks for its renewal."""
    patient = await ApiClient(url).login("anna@demo.test")
    doctor = await ApiClient(url).login("dr.house@demo.test")
    ws = await SocketClient().connect(url, doctor.token)
    try:
        await ws.emit("presence:online", {"specialties": ["internal-medicine"], "forms": ["chat"]})
        cid = await start_and_accept(patient, ws, "internal-medicine")
        body = outcome_body(clinic_day(datetime.now(UTC)), referrals=[], sick_leave=None)
        out = await doctor.call(
            "POST",
            f"/api/consultations/{cid}/outcome",
            body,
            expect=201,
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        aspirin = out["packages"][0]["prescriptions"][0]["id"]
        asked = await patient.call("POST", f"/api/prescriptions/{aspirin}/renewal", {}, expect=201)
        return int(asked["id"])
    finally:
        await ws.close()
        for client in (patient, doctor):
            await client.close()


async def inbox(url: str, email: str) -> list[int]:
    client = await ApiClient(url).login(email)
    try:
        return [r["id"] for r in (await client.call("GET", "/api/renewals"))["renewals"]]
    finally:
        await client.close()


def run(coroutine: object) -> object:
    # Playwright's sync API runs its own loop in this thread: the async clients get another.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()  # type: ignore[arg-type]


@pytest.mark.e2e
def test_a_scheduler_hands_a_renewal_request_to_another_doctor(
    open_page: OpenPage, server: Server
) -> None:
    renewal = run(renewal_waiting_for_house(server.url))
    page, problems = open_page("scheduler")
    page.goto("/scheduler/")
    log_in(page, "scheduler@demo.test")
    row = page.get_by_test_id("renewal-row")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Anna Kowalska")
    expect(row).to_contain_text("Acard")
    expect(row.get_by_test_id("renewal-waiting-for")).to_have_text("Dr Gregory House")
    row.get_by_test_id("renewal-doctor").select_option(label="Dr Meredith Grey")
    row.get_by_test_id("renewal-reassign").click()
    expect(row.get_by_test_id("renewal-waiting-for")).to_have_text("Dr Meredith Grey")
    assert run(inbox(server.url, "dr.grey@demo.test")) == [renewal]
    assert run(inbox(server.url, "dr.house@demo.test")) == []
    assert_no_problems(problems)
