"""Prescription renewals over real HTTP and Socket.IO, on each backend: the patient asks to
renew a prescription of theirs and its doctor is told live; asking again (even ten times at
once) gives the one open request; antibiotics, psychotropics, products not for long-term
treatment, cancelled prescriptions and those expired 120 days ago or more are refused; the
doctor approves (a new package, the patient told live) or declines with a reason; a scheduler
hands a request to another doctor of the same specialty; strangers get nothing (audited)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Any

from consult.clock import ManualClock
from consult.storage import tables as t
from tests.integration.test_outcome import (
    ANTIBIOTIC,
    ASPIRIN,
    INSULIN,
    consulting,
    issue,
    outcome_body,
    today_of,
)
from tests.support import ApiClient, SocketClient, count, execute, rows

XANAX = 97  # psychotropic, packs of 30
APAP = 59  # standard, not for long-term treatment, packs of 12, 24 or 50
DAY = 86400.0

Api = Callable[..., Awaitable[ApiClient]]
Sockets = Callable[..., Awaitable[SocketClient]]


async def with_aspirin(
    api: Api, sockets: Sockets, clock: ManualClock
) -> tuple[ApiClient, SocketClient, ApiClient, SocketClient, dict[str, Any]]:
    """A finished consultation whose package holds aspirin for 180 days (long-term, 120 days
    of therapy) and an antibiotic; the aspirin's prescription last."""
    patient, patient_ws, doctor, doctor_ws, cid = await consulting(api, sockets)
    out = await issue(doctor, cid, outcome_body(today_of(clock)))
    await patient_ws.next("outcome:issued")
    return patient, patient_ws, doctor, doctor_ws, out["packages"][0]


async def ask(client: ApiClient, prescription_id: int, note: str = "") -> tuple[int, Any]:
    """The status and body of a renewal request (201 new, 200 the open one, or an error)."""
    url = f"{client.base_url}/api/prescriptions/{prescription_id}/renewal"
    headers = {"Authorization": f"Bearer {client.token}"}
    async with client.session.post(url, json={"note": note}, headers=headers) as response:
        return response.status, await response.json()


async def test_the_request_reaches_the_doctor_live_and_a_repeat_gets_it_again(
    api, sockets, clock, database_url
):
    patient, _, doctor, doctor_ws, package = await with_aspirin(api, sockets, clock)
    aspirin = package["prescriptions"][0]
    assert aspirin["renewal_status"] is None

    status, asked = await ask(patient, aspirin["id"], "Running out next week")
    assert status == 201, asked
    assert asked["status"] == "open" and asked["note"] == "Running out next week"
    assert asked["doctor"] == {"id": doctor.user["id"], "name": "Dr Gregory House"}
    assert asked["patient"]["id"] == patient.user["id"]
    assert asked["specialty"]["code"] == "internal-medicine"
    assert asked["prescription"]["id"] == aspirin["id"] and asked["package"] is None
    told = await doctor_ws.next("renewal:requested")
    assert told["renewal"]["id"] == asked["id"]

    status, again = await ask(patient, aspirin["id"], "Please!")
    assert status == 200 and again["id"] == asked["id"] and again["note"] == "Running out next week"
    await asyncio.sleep(0.2)
    assert doctor_ws.pending("renewal:requested") == 0  # nobody told again
    inbox = await doctor.call("GET", "/api/renewals")
    assert [r["id"] for r in inbox["renewals"]] == [asked["id"]]
    mine = await patient.call("GET", "/api/renewals")
    assert [r["id"] for r in mine["renewals"]] == [asked["id"]]
    issued = await patient.call("GET", "/api/patients/me/issued")
    assert issued["packages"][0]["prescriptions"][0]["renewal_status"] == "open"
    assert await count(database_url, t.renewal_requests) == 1
    audited = t.audit_log.c.action == "renewal.request"
    assert await count(database_url, t.audit_log, audited) == 1
    # Each list read is audited, one row per patient listed (test_audit_coverage.py).
    reads = await rows(database_url, t.audit_log, t.audit_log.c.action == "renewal.read")
    assert [(r.actor_id, r.patient_id) for r in reads] == [
        (doctor.user["id"], patient.user["id"]),
        (patient.user["id"], patient.user["id"]),
    ]


async def test_ten_concurrent_requests_store_one(api, sockets, clock, database_url):
    patient, _, _, doctor_ws, package = await with_aspirin(api, sockets, clock)
    aspirin = package["prescriptions"][0]["id"]
    answers = await asyncio.gather(*(ask(patient, aspirin) for _ in range(10)))
    assert sorted(status for status, _ in answers) == [200] * 9 + [201], answers
    assert len({body["id"] for _, body in answers}) == 1
    assert await count(database_url, t.renewal_requests) == 1
    await doctor_ws.next("renewal:requested")
    await asyncio.sleep(0.2)
    assert doctor_ws.pending("renewal:requested") == 0


async def test_what_may_not_be_renewed_is_refused_with_its_reason(
    api, sockets, clock, database_url
):
    # Days here are Warsaw's: from late evening UTC, 151 days on crosses into summer time and
    # the clinic's day moved by one (failed between 22:00 and 23:00 UTC). Noon UTC is the same
    # Warsaw day in either season.
    clock.advance((12 * 3600 - clock.now().hour * 3600 - clock.now().minute * 60) % DAY)
    patient, _, doctor, _, cid = await consulting(api, sockets)
    prescriptions = [
        {"product_id": ASPIRIN, "pack_size": 30, "dosage_instruction": "1 daily"},
        {"product_id": ANTIBIOTIC, "pack_size": 10, "dosage_instruction": "1 every 12 h"},
        {"product_id": XANAX, "pack_size": 30, "dosage_instruction": "1 at night"},
        {"product_id": APAP, "pack_size": 12, "dosage_instruction": "1 if in pain"},
        {"product_id": INSULIN, "pack_size": 5, "dosage_instruction": "10 units at night"},
    ]
    body = outcome_body(today_of(clock), prescriptions=prescriptions)
    out = await issue(doctor, cid, body)
    aspirin, antibiotic, xanax, apap, insulin = (
        p["id"] for p in out["packages"][0]["prescriptions"]
    )
    await doctor.call("POST", f"/api/prescriptions/{insulin}/cancel", {"reason": "Wrong dose"})
    for prescription, code in (
        (antibiotic, "renewal_antibiotic"),
        (xanax, "renewal_psychotropic_narcotic"),
        (apap, "renewal_not_long_term"),
        (insulin, "renewal_cancelled"),
    ):
        status, refused = await ask(patient, prescription)
        assert (status, refused["error"]["code"]) == (409, code)

    # 30 days' validity: the last day is today + 30. Expired 120 days ago is too long ago;
    # 119 days is not. The session ends long before: log in again.
    clock.advance((30 + 1 + 120) * DAY)
    patient = await api("anna@demo.test")
    status, refused = await ask(patient, aspirin)
    assert (status, refused["error"]["code"]) == (409, "renewal_expired_too_long")
    assert await count(database_url, t.renewal_requests) == 0
    clock.advance(-DAY)
    status, asked = await ask(patient, aspirin)
    assert status == 201 and asked["prescription"]["status"] == "expired"


async def test_the_doctor_approves_and_the_patient_gets_a_new_package_live(
    api, sockets, clock, database_url
):
    patient, patient_ws, doctor, doctor_ws, package = await with_aspirin(api, sockets, clock)
    original = package["prescriptions"][0]
    _, asked = await ask(patient, original["id"])
    rid = asked["id"]

    other = await api("dr.grey@demo.test")
    refused = await other.call("POST", f"/api/renewals/{rid}/approve", {}, expect=403)
    assert refused["error"]["code"] == "not_your_renewal"
    denied = await rows(
        database_url,
        t.audit_log,
        t.audit_log.c.action == "renewal.approve",
        t.audit_log.c.allowed.is_(False),
    )
    assert [(d.actor_id, d.patient_id) for d in denied] == [(other.user["id"], patient.user["id"])]
    by_patient = await patient.call("POST", f"/api/renewals/{rid}/approve", {}, expect=403)
    assert by_patient["error"]["code"] == "not_a_doctor"
    bad = await doctor.call(
        "POST", f"/api/renewals/{rid}/approve", {"validity_days": 20}, expect=400
    )
    assert bad["error"]["code"] == "validity_out_of_range"
    assert await count(database_url, t.prescription_packages) == 1  # nothing written

    # The original was issued ten days ago: the renewal is issued today, valid from today.
    await execute(
        database_url,
        t.prescriptions.update()
        .where(t.prescriptions.c.id == original["id"])
        .values(
            issued_on=date.fromisoformat(original["issued_on"]) - timedelta(days=10),
            valid_until=date.fromisoformat(original["valid_until"]) - timedelta(days=10),
        ),
    )
    change = {"dosage_instruction": "1 tablet every other day", "packs": 1}
    approved = await doctor.call("POST", f"/api/renewals/{rid}/approve", change)
    assert approved["status"] == "approved" and approved["decided_at"] is not None
    new = approved["package"]
    assert new["renewal_of"] == original["id"] and new["key"] != package["key"]
    assert len(new["key"]) == 44 and len(new["access_code"]) == 4
    assert new["consultation_id"] == package["consultation_id"]
    (renewed,) = new["prescriptions"]
    today = today_of(clock)
    assert renewed["issued_on"] == today.isoformat()
    assert renewed["valid_until"] == (today + timedelta(days=180)).isoformat()
    assert (renewed["therapy_days"], renewed["packs"]) == (120, 1)
    assert renewed["dosage_instruction"] == "1 tablet every other day"
    assert renewed["product_id"] == ASPIRIN and renewed["pack_size"] == 60

    told = await patient_ws.until("renewal:decided", lambda d: d["renewal"]["id"] == rid)
    assert told["renewal"]["package"]["access_code"] == new["access_code"]
    await doctor_ws.next("renewal:decided")
    issued = await patient.call("GET", "/api/patients/me/issued")
    assert [p["id"] for p in issued["packages"]] == [new["id"], package["id"]]
    assert issued["packages"][1]["prescriptions"][0]["renewal_status"] == "approved"
    again = await doctor.call("POST", f"/api/renewals/{rid}/approve", {}, expect=409)
    assert again["error"]["code"] == "renewal_decided"
    decided = await doctor.call("GET", "/api/renewals?status=decided")
    assert [r["id"] for r in decided["renewals"]] == [rid]
    assert (await doctor.call("GET", "/api/renewals"))["renewals"] == []
    audited = t.audit_log.c.action == "renewal.approve", t.audit_log.c.allowed.is_(True)
    assert await count(database_url, t.audit_log, *audited) == 1


async def test_the_doctor_declines_with_a_reason(api, sockets, clock, database_url):
    patient, patient_ws, doctor, _, package = await with_aspirin(api, sockets, clock)
    aspirin = package["prescriptions"][0]["id"]
    _, asked = await ask(patient, aspirin)
    rid = asked["id"]
    empty = await doctor.call("POST", f"/api/renewals/{rid}/decline", {"reason": " "}, expect=400)
    assert empty["error"]["code"] == "invalid_payload"
    reason = "Your blood pressure needs checking first: book a visit."
    declined = await doctor.call("POST", f"/api/renewals/{rid}/decline", {"reason": reason})
    assert declined["status"] == "declined" and declined["decline_reason"] == reason
    assert declined["package"] is None
    told = await patient_ws.until("renewal:decided", lambda d: d["renewal"]["id"] == rid)
    assert told["renewal"]["decline_reason"] == reason
    mine = await patient.call("GET", "/api/renewals?status=decided")
    assert [r["status"] for r in mine["renewals"]] == ["declined"]
    assert await count(database_url, t.prescription_packages) == 1
    # Declined is not open: the patient may ask again.
    status, second = await ask(patient, aspirin)
    assert status == 201 and second["id"] != rid
    bad = await patient.call("GET", "/api/renewals?status=closed", expect=400)
    assert bad["error"]["code"] == "invalid_query"


async def test_a_scheduler_hands_it_to_a_doctor_of_the_same_specialty(
    api, sockets, clock, database_url
):
    patient, _, house, house_ws, package = await with_aspirin(api, sockets, clock)
    _, asked = await ask(patient, package["prescriptions"][0]["id"])
    rid = asked["id"]
    grey = await api("dr.grey@demo.test")
    grey_ws = await sockets(grey.token)
    skin = await api("dr.skin@demo.test")
    scheduler = await api("scheduler@demo.test")
    seen = await scheduler.call("GET", "/api/renewals")
    assert [r["id"] for r in seen["renewals"]] == [rid]

    path = f"/api/renewals/{rid}/reassign"
    for body, status, code in (
        ({"doctor_id": skin.user["id"]}, 409, "doctor_not_in_specialty"),
        ({"doctor_id": patient.user["id"]}, 404, "doctor_not_found"),
        ({"doctor_id": house.user["id"]}, 409, "renewal_same_doctor"),
    ):
        refused = await scheduler.call("POST", path, body, expect=status)
        assert refused["error"]["code"] == code
    by_doctor = await house.call("POST", path, {"doctor_id": grey.user["id"]}, expect=403)
    assert by_doctor["error"]["code"] == "not_a_scheduler"

    moved = await scheduler.call("POST", path, {"doctor_id": grey.user["id"]})
    assert moved["doctor"]["id"] == grey.user["id"] and moved["status"] == "open"
    for ws in (house_ws, grey_ws):
        told = await ws.next("renewal:reassigned")
        assert (told["renewal"]["id"], told["from_doctor_id"]) == (rid, house.user["id"])
    assert (await house.call("GET", "/api/renewals"))["renewals"] == []
    assert [r["id"] for r in (await grey.call("GET", "/api/renewals"))["renewals"]] == [rid]
    no_longer = await house.call("POST", f"/api/renewals/{rid}/approve", {}, expect=403)
    assert no_longer["error"]["code"] == "not_your_renewal"
    approved = await grey.call("POST", f"/api/renewals/{rid}/approve", {})
    assert approved["package"]["doctor"]["name"] == "Dr Meredith Grey"
    late = await scheduler.call("POST", path, {"doctor_id": house.user["id"]}, expect=409)
    assert late["error"]["code"] == "renewal_decided"
    audited = t.audit_log.c.action == "renewal.reassign"
    assert await count(database_url, t.audit_log, audited) == 1


async def test_strangers_get_nothing(api, sockets, clock, database_url):
    patient, _, doctor, _, package = await with_aspirin(api, sockets, clock)
    aspirin = package["prescriptions"][0]["id"]
    stranger = await api("piotr@demo.test")
    status, refused = await ask(stranger, aspirin)
    assert (status, refused["error"]["code"]) == (404, "prescription_not_found")
    denied = await rows(
        database_url,
        t.audit_log,
        t.audit_log.c.action == "renewal.request",
        t.audit_log.c.allowed.is_(False),
    )
    assert [(d.actor_id, d.patient_id) for d in denied] == [
        (stranger.user["id"], patient.user["id"])
    ]
    status, missing = await ask(patient, 999_999)
    assert (status, missing["error"]["code"]) == (404, "prescription_not_found")
    status, by_doctor = await ask(doctor, aspirin)
    assert (status, by_doctor["error"]["code"]) == (403, "not_a_patient")
    _, asked = await ask(patient, aspirin)
    assert (await stranger.call("GET", "/api/renewals"))["renewals"] == []
    refused_decline = await stranger.call(
        "POST", f"/api/renewals/{asked['id']}/decline", {"reason": "no"}, expect=403
    )
    assert refused_decline["error"]["code"] == "not_a_doctor"
    assert await count(database_url, t.renewal_requests) == 1
