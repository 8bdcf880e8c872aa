"""The scheduler page's renewal requests: a patient's request waiting for Dr House is listed
with the doctor it waits for; the scheduler hands it to Dr Grey (same specialty), and Dr Grey's
inbox holds it."""

from __future__ import annotations

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


async def renewal_waiting_for_house(url: str) -> int:
    """Over HTTP and Socket.IO: Dr House issues aspirin to Anna, who asks for its renewal."""
    async with anna_and_house_online(url) as (patient, doctor, ws):
        cid = await start_and_accept(patient, ws, "internal-medicine")
        out = await issue_outcome(doctor, cid, referrals=[], sick_leave=None)
        aspirin = out["packages"][0]["prescriptions"][0]["id"]
        asked = await patient.call("POST", f"/api/prescriptions/{aspirin}/renewal", {}, expect=201)
        return int(asked["id"])


async def inbox(url: str, email: str) -> list[int]:
    async with logged_in(url, email) as client:
        return [r["id"] for r in (await client.call("GET", "/api/renewals"))["renewals"]]


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
