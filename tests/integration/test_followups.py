""" "Ask the doctor" over real HTTP and Socket.IO, on each backend: a question after a finished
consultation reaches that doctor's inbox live; the answer reaches the patient live and stays in
their record; the window, the doctor, the state and the text are checked with clear errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from consult.app import create_app
from consult.clock import ManualClock
from consult.settings import Settings
from consult.storage import tables as t
from tests.support import ApiClient, SocketClient, rows, start_and_accept

DAY = 24 * 3600


async def finished_consultation(
    api: Callable[..., Awaitable[ApiClient]],
    sockets: Callable[..., Awaitable[SocketClient]],
    patient_email: str = "anna@demo.test",
    doctor_email: str = "dr.house@demo.test",
) -> tuple[ApiClient, ApiClient, SocketClient, int]:
    """The patient consults the doctor, who ends the visit; the doctor stays connected."""
    patient = await api(patient_email)
    doctor = await api(doctor_email)
    doctor_ws = await sockets(doctor.token)
    ack = await doctor_ws.emit(
        "presence:online", {"specialties": ["internal-medicine"], "forms": ["chat"]}
    )
    assert ack["ok"], ack
    cid = await start_and_accept(patient, doctor_ws, "internal-medicine")
    await doctor.call("POST", f"/api/consultations/{cid}/end", {})
    return patient, doctor, doctor_ws, cid


async def test_a_question_reaches_the_doctor_and_the_answer_reaches_the_patient_live(
    api, sockets, database_url
):
    anna, house, house_ws, cid = await finished_consultation(api, sockets)
    anna_ws = await sockets(anna.token)
    asked = await anna.call(
        "POST",
        f"/api/consultations/{cid}/follow-ups",
        {"question": "Should I keep taking ibuprofen after the fever is gone?"},
        expect=201,
    )
    assert asked["doctor"]["name"] == "Dr Gregory House" and asked["answer"] is None
    # It lands in the doctor's console inbox, live and over HTTP.
    live = (await house_ws.next("follow-up:asked"))["follow_up"]
    assert live["id"] == asked["id"] and live["patient"]["name"] == "Anna Kowalska"
    inbox = (await house.call("GET", "/api/follow-ups"))["follow_ups"]
    assert [(f["id"], f["question"]) for f in inbox] == [(asked["id"], asked["question"])]
    # No other doctor sees it.
    grey = await api("dr.grey@demo.test")
    assert (await grey.call("GET", "/api/follow-ups"))["follow_ups"] == []

    answered = await house.call(
        "POST",
        f"/api/follow-ups/{asked['id']}/answer",
        {"answer": "No, stop once you have had no fever for a day."},
    )
    assert answered["answer"].startswith("No, stop") and answered["answered_at"]
    pushed = (await anna_ws.next("follow-up:answered"))["follow_up"]
    assert pushed["id"] == asked["id"] and pushed["answer"] == answered["answer"]
    assert (await anna_ws.next("record:changed"))["consultation_id"] == cid
    # Out of the inbox; in the answered list; in the patient's record and list.
    assert (await house.call("GET", "/api/follow-ups"))["follow_ups"] == []
    done = (await house.call("GET", "/api/follow-ups?answered=true"))["follow_ups"]
    assert [f["id"] for f in done] == [asked["id"]]
    mine = (await anna.call("GET", "/api/follow-ups"))["follow_ups"]
    assert [(f["question"], f["answer"]) for f in mine] == [(asked["question"], answered["answer"])]
    record = await anna.call("GET", "/api/patients/me/record")
    (entry,) = record["entries"]
    assert [(f["question"], f["answer"]) for f in entry["follow_ups"]] == [
        (asked["question"], answered["answer"])
    ]

    entries = {
        (r.action, r.actor_id, r.patient_id, r.allowed)
        for r in await rows(database_url, t.audit_log)
    }
    pid, did = anna.user["id"], house.user["id"]
    assert ("follow_up.ask", pid, pid, True) in entries
    assert ("follow_up.read", did, pid, True) in entries
    assert ("follow_up.answer", did, pid, True) in entries


async def test_an_answer_is_kept_when_the_patient_is_offline(api, sockets):
    anna, house, _, cid = await finished_consultation(api, sockets)
    await anna.call("POST", f"/api/consultations/{cid}/follow-ups", {"question": "Q?"}, expect=201)
    (question,) = (await house.call("GET", "/api/follow-ups"))["follow_ups"]
    await house.call("POST", f"/api/follow-ups/{question['id']}/answer", {"answer": "A."})
    # Anna was not connected: she finds the answer when she comes back.
    record = await anna.call("GET", "/api/patients/me/record")
    assert record["entries"][0]["follow_ups"][0]["answer"] == "A."


async def test_questions_are_accepted_for_fourteen_days_after_the_end(api, sockets, clock):
    anna, _, _, cid = await finished_consultation(api, sockets)
    clock.advance(14 * DAY - 60)
    await anna.login("anna@demo.test")  # sessions last hours, not days
    await anna.call(
        "POST", f"/api/consultations/{cid}/follow-ups", {"question": "Still ok?"}, expect=201
    )
    clock.advance(120)
    late = await anna.call(
        "POST", f"/api/consultations/{cid}/follow-ups", {"question": "And now?"}, expect=409
    )
    assert late["error"]["code"] == "follow_up_window_closed"
    assert "14 days" in late["error"]["message"]
    assert late["error"]["details"]["closed_at"]


async def test_the_window_is_configurable(
    database_url: str, aiohttp_server: Callable[..., Awaitable[TestServer]], tmp_path
):
    clock = ManualClock()
    settings = Settings(
        database_url=database_url,
        demo=True,
        migrate_on_start=False,
        sweep_interval=0,
        follow_up_days=2,
        documents_dir=str(tmp_path / "documents"),
    )
    server = await aiohttp_server(create_app(settings, clock=clock))
    base = str(server.make_url("/")).rstrip("/")
    made: list[Any] = []

    async def api(email: str) -> ApiClient:
        client = ApiClient(base)
        made.append(client)
        return await client.login(email)

    async def sockets(token: str) -> SocketClient:
        client = SocketClient()
        made.append(client)
        return await client.connect(base, token)

    try:
        anna, _, _, cid = await finished_consultation(api, sockets)
        clock.advance(2 * DAY + 1)
        await anna.login("anna@demo.test")
        late = await anna.call(
            "POST", f"/api/consultations/{cid}/follow-ups", {"question": "Q?"}, expect=409
        )
        assert late["error"]["code"] == "follow_up_window_closed"
        assert "2 days" in late["error"]["message"]
    finally:
        for client in made:
            await client.close()


async def test_only_a_finished_consultation_of_ones_own_to_its_own_doctor(
    api, sockets, database_url
):
    anna = await api("anna@demo.test")
    house = await api("dr.house@demo.test")
    house_ws = await sockets(house.token)
    await house_ws.emit(
        "presence:online", {"specialties": ["internal-medicine"], "forms": ["chat"]}
    )
    cid = await start_and_accept(anna, house_ws, "internal-medicine")
    active = await anna.call(
        "POST", f"/api/consultations/{cid}/follow-ups", {"question": "Now?"}, expect=409
    )
    assert active["error"]["code"] == "consultation_not_finished"
    await house.call("POST", f"/api/consultations/{cid}/end", {})

    # Another patient; the doctor himself; another doctor named as the addressee.
    piotr = await api("piotr@demo.test")
    stranger = await piotr.call(
        "POST", f"/api/consultations/{cid}/follow-ups", {"question": "Hi?"}, expect=403
    )
    assert stranger["error"]["code"] == "not_participant"
    denied = [r for r in await rows(database_url, t.audit_log) if r.action == "follow_up.ask"]
    assert [(r.actor_id, r.allowed) for r in denied] == [(piotr.user["id"], False)]
    by_doctor = await house.call(
        "POST", f"/api/consultations/{cid}/follow-ups", {"question": "Hi?"}, expect=403
    )
    assert by_doctor["error"]["code"] == "not_a_patient"
    grey = await api("dr.grey@demo.test")
    other_doctor = await anna.call(
        "POST",
        f"/api/consultations/{cid}/follow-ups",
        {"question": "Dr Grey, what do you think?", "doctor_id": grey.user["id"]},
        expect=403,
    )
    assert other_doctor["error"]["code"] == "not_the_consulting_doctor"
    missing = await anna.call(
        "POST", "/api/consultations/9999/follow-ups", {"question": "?"}, expect=404
    )
    assert missing["error"]["code"] == "consultation_not_found"
    # A ticket cancelled in the queue was never a consultation with a doctor.
    ticket = await piotr.call(
        "POST", "/api/consultations", {"specialty": "dermatology", "form": "chat"}, expect=201
    )
    tid = ticket["consultation"]["id"]
    await piotr.call("POST", f"/api/consultations/{tid}/end", {})
    cancelled = await piotr.call(
        "POST", f"/api/consultations/{tid}/follow-ups", {"question": "?"}, expect=409
    )
    assert cancelled["error"]["code"] == "consultation_not_finished"
    # Nothing reached any inbox.
    assert (await house.call("GET", "/api/follow-ups"))["follow_ups"] == []
    assert (await grey.call("GET", "/api/follow-ups"))["follow_ups"] == []


@pytest.mark.parametrize(
    ("question", "problem"),
    [("", "at least 1 character"), ("   ", "at least 1 character"), ("x" * 2001, "at most 2000")],
)
async def test_an_empty_or_too_long_question_is_refused(api, sockets, question, problem):
    anna, house, _, cid = await finished_consultation(api, sockets)
    body = await anna.call(
        "POST", f"/api/consultations/{cid}/follow-ups", {"question": question}, expect=400
    )
    assert body["error"]["code"] == "invalid_payload"
    assert "question" in body["error"]["message"] and problem in body["error"]["message"]
    assert (await house.call("GET", "/api/follow-ups"))["follow_ups"] == []


async def test_only_the_asked_doctor_answers_and_only_once(api, sockets, database_url):
    anna, house, _, cid = await finished_consultation(api, sockets)
    asked = await anna.call(
        "POST", f"/api/consultations/{cid}/follow-ups", {"question": "x" * 2000}, expect=201
    )
    grey = await api("dr.grey@demo.test")
    other = await grey.call(
        "POST", f"/api/follow-ups/{asked['id']}/answer", {"answer": "Me?"}, expect=403
    )
    assert other["error"]["code"] == "not_your_follow_up"
    assert any(
        r.action == "follow_up.answer" and r.actor_id == grey.user["id"] and not r.allowed
        for r in await rows(database_url, t.audit_log)
    )
    by_patient = await anna.call(
        "POST", f"/api/follow-ups/{asked['id']}/answer", {"answer": "Me?"}, expect=403
    )
    assert by_patient["error"]["code"] == "not_a_doctor"
    empty = await house.call(
        "POST", f"/api/follow-ups/{asked['id']}/answer", {"answer": ""}, expect=400
    )
    assert empty["error"]["code"] == "invalid_payload"

    await house.call("POST", f"/api/follow-ups/{asked['id']}/answer", {"answer": "First."})
    twice = await house.call(
        "POST", f"/api/follow-ups/{asked['id']}/answer", {"answer": "Second."}, expect=409
    )
    assert twice["error"]["code"] == "follow_up_already_answered"
    (kept,) = (await anna.call("GET", "/api/follow-ups"))["follow_ups"]
    assert kept["answer"] == "First."
    missing = await house.call("POST", "/api/follow-ups/9999/answer", {"answer": "?"}, expect=404)
    assert missing["error"]["code"] == "follow_up_not_found"
    bad = await house.call("GET", "/api/follow-ups?answered=maybe", expect=400)
    assert bad["error"]["code"] == "invalid_answered"
