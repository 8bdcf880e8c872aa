""" "Ask the doctor" over real HTTP and Socket.IO, on each backend: a question after a finished
consultation reaches that doctor's inbox live; the answer reaches the patient live and stays in
their record; the window, the doctor, the state and the text are checked with clear errors."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from consult.app import create_app
from consult.clock import ManualClock
from consult.followups import repository as follow_up_repo
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


async def ask(
    patient: ApiClient,
    consultation_id: int,
    question: str,
    *,
    client_id: str | None = None,
    expect: int = 201,
    **extra: Any,
) -> Any:
    """The patient posts a follow-up question (with a new client id unless one is given)."""
    body = {"question": question, "client_id": client_id or str(uuid.uuid4()), **extra}
    return await patient.call(
        "POST", f"/api/consultations/{consultation_id}/follow-ups", body, expect=expect
    )


async def answer(
    doctor: ApiClient,
    follow_up_id: int,
    text: str,
    *,
    client_id: str | None = None,
    expect: int = 200,
) -> Any:
    """The doctor posts an answer (with a new client id unless one is given)."""
    body = {"answer": text, "client_id": client_id or str(uuid.uuid4())}
    return await doctor.call("POST", f"/api/follow-ups/{follow_up_id}/answer", body, expect=expect)


async def test_a_question_reaches_the_doctor_and_the_answer_reaches_the_patient_live(
    api, sockets, database_url
):
    anna, house, house_ws, cid = await finished_consultation(api, sockets)
    anna_ws = await sockets(anna.token)
    asked = await ask(anna, cid, "Should I keep taking ibuprofen after the fever is gone?")
    assert asked["doctor"]["name"] == "Dr Gregory House" and asked["answer"] is None
    # It lands in the doctor's console inbox, live and over HTTP.
    live = (await house_ws.next("follow-up:asked"))["follow_up"]
    assert live["id"] == asked["id"] and live["patient"]["name"] == "Anna Kowalska"
    inbox = (await house.call("GET", "/api/follow-ups"))["follow_ups"]
    assert [(f["id"], f["question"]) for f in inbox] == [(asked["id"], asked["question"])]
    # No other doctor sees it.
    grey = await api("dr.grey@demo.test")
    assert (await grey.call("GET", "/api/follow-ups"))["follow_ups"] == []

    answered = await answer(house, asked["id"], "No, stop once you have had no fever for a day.")
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
    await ask(anna, cid, "Q?")
    (question,) = (await house.call("GET", "/api/follow-ups"))["follow_ups"]
    await answer(house, question["id"], "A.")
    # Anna was not connected: she finds the answer when she comes back.
    record = await anna.call("GET", "/api/patients/me/record")
    assert record["entries"][0]["follow_ups"][0]["answer"] == "A."


async def test_questions_are_accepted_for_fourteen_days_after_the_end(api, sockets, clock):
    anna, _, _, cid = await finished_consultation(api, sockets)
    clock.advance(14 * DAY - 60)
    await anna.login("anna@demo.test")  # sessions last hours, not days
    await ask(anna, cid, "Still ok?")
    clock.advance(120)
    late = await ask(anna, cid, "And now?", expect=409)
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
        late = await ask(anna, cid, "Q?", expect=409)
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
    active = await ask(anna, cid, "Now?", expect=409)
    assert active["error"]["code"] == "consultation_not_finished"
    await house.call("POST", f"/api/consultations/{cid}/end", {})

    # Another patient; the doctor himself; another doctor named as the addressee.
    piotr = await api("piotr@demo.test")
    stranger = await ask(piotr, cid, "Hi?", expect=403)
    assert stranger["error"]["code"] == "not_participant"
    denied = [r for r in await rows(database_url, t.audit_log) if r.action == "follow_up.ask"]
    assert [(r.actor_id, r.allowed) for r in denied] == [(piotr.user["id"], False)]
    by_doctor = await ask(house, cid, "Hi?", expect=403)
    assert by_doctor["error"]["code"] == "not_a_patient"
    grey = await api("dr.grey@demo.test")
    other_doctor = await ask(
        anna, cid, "Dr Grey, what do you think?", doctor_id=grey.user["id"], expect=403
    )
    assert other_doctor["error"]["code"] == "not_the_consulting_doctor"
    missing = await ask(anna, 9999, "?", expect=404)
    assert missing["error"]["code"] == "consultation_not_found"
    # A ticket cancelled in the queue was never a consultation with a doctor.
    ticket = await piotr.call(
        "POST", "/api/consultations", {"specialty": "dermatology", "form": "chat"}, expect=201
    )
    tid = ticket["consultation"]["id"]
    await piotr.call("POST", f"/api/consultations/{tid}/end", {})
    cancelled = await ask(piotr, tid, "?", expect=409)
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
    body = await ask(anna, cid, question, expect=400)
    assert body["error"]["code"] == "invalid_payload"
    assert "question" in body["error"]["message"] and problem in body["error"]["message"]
    assert (await house.call("GET", "/api/follow-ups"))["follow_ups"] == []


async def test_only_the_asked_doctor_answers_and_only_once(api, sockets, database_url):
    anna, house, _, cid = await finished_consultation(api, sockets)
    asked = await ask(anna, cid, "x" * 2000)
    grey = await api("dr.grey@demo.test")
    other = await answer(grey, asked["id"], "Me?", expect=403)
    assert other["error"]["code"] == "not_your_follow_up"
    assert any(
        r.action == "follow_up.answer" and r.actor_id == grey.user["id"] and not r.allowed
        for r in await rows(database_url, t.audit_log)
    )
    by_patient = await answer(anna, asked["id"], "Me?", expect=403)
    assert by_patient["error"]["code"] == "not_a_doctor"
    empty = await answer(house, asked["id"], "", expect=400)
    assert empty["error"]["code"] == "invalid_payload"

    await answer(house, asked["id"], "First.")
    twice = await answer(house, asked["id"], "Second.", expect=409)
    assert twice["error"]["code"] == "follow_up_already_answered"
    (kept,) = (await anna.call("GET", "/api/follow-ups"))["follow_ups"]
    assert kept["answer"] == "First."
    missing = await answer(house, 9999, "?", expect=404)
    assert missing["error"]["code"] == "follow_up_not_found"
    bad = await house.call("GET", "/api/follow-ups?answered=maybe", expect=400)
    assert bad["error"]["code"] == "invalid_answered"


# --- repeats: a client id per question and per answer --------------------------------------


def asks_audited(entries: list[Any]) -> list[Any]:
    return [r for r in entries if r.action == "follow_up.ask" and r.allowed]


async def test_a_repeated_question_is_stored_once_and_answered_the_same(
    api, sockets, database_url, clock
):
    anna, house, house_ws, cid = await finished_consultation(api, sockets)
    first = await ask(anna, cid, "Is a rash normal after the antibiotic?", client_id="q-1")
    # A double click, or a retry after a lost response: the stored question, the same status.
    again = await ask(anna, cid, "Is a rash normal after the antibiotic?", client_id="q-1")
    assert again == first
    # What else a repeat carries is ignored, as for chat messages.
    edited = await ask(anna, cid, "Is a rash normal at all?", client_id="q-1")
    assert edited == first
    # Even once the window has closed: the question was asked in time.
    clock.advance(15 * DAY)
    await anna.login("anna@demo.test")  # sessions last hours, not days
    await house.login("dr.house@demo.test")
    assert await ask(anna, cid, "Is a rash normal?", client_id="q-1") == first
    late = await ask(anna, cid, "A new question?", client_id="q-2", expect=409)
    assert late["error"]["code"] == "follow_up_window_closed"

    stored = await rows(database_url, t.follow_ups)
    assert [(r.id, r.client_id, r.question) for r in stored] == [
        (first["id"], "q-1", "Is a rash normal after the antibiotic?")
    ]
    (inbox_item,) = (await house.call("GET", "/api/follow-ups"))["follow_ups"]
    assert inbox_item == first
    # Told to the doctor once, audited once.
    assert (await house_ws.next("follow-up:asked"))["follow_up"] == first
    await asyncio.sleep(0.2)
    assert house_ws.pending("follow-up:asked") == 0
    audited = asks_audited(await rows(database_url, t.audit_log))
    assert [(r.actor_id, r.consultation_id) for r in audited] == [(anna.user["id"], cid)]


async def test_concurrent_repeats_store_one_question(api, sockets, database_url):
    anna, house, _, cid = await finished_consultation(api, sockets)
    answers = await asyncio.gather(
        *(ask(anna, cid, "Can I fly next week?", client_id="dbl") for _ in range(8))
    )
    assert all(a == answers[0] for a in answers)
    assert len(await rows(database_url, t.follow_ups)) == 1
    assert [f["id"] for f in (await house.call("GET", "/api/follow-ups"))["follow_ups"]] == [
        answers[0]["id"]
    ]
    assert len(asks_audited(await rows(database_url, t.audit_log))) == 1


async def test_a_repeat_that_the_lookup_missed_is_kept_out_by_the_unique_index(
    api, sockets, database_url, monkeypatch
):
    """The race the unique index is for: a repeat that did not find the stored question (it
    was not committed yet) inserts nothing and is answered with the stored question."""
    anna, _, _, cid = await finished_consultation(api, sockets)
    first = await ask(anna, cid, "Q?", client_id="race")
    looked_up = follow_up_repo.by_client_id
    lookups: list[str] = []

    async def misses_once(*args: Any) -> Any:
        lookups.append(args[-1])
        return None if len(lookups) == 1 else await looked_up(*args)

    monkeypatch.setattr(follow_up_repo, "by_client_id", misses_once)
    assert await ask(anna, cid, "Q?", client_id="race") == first
    assert lookups == ["race", "race"]
    assert [r.id for r in await rows(database_url, t.follow_ups)] == [first["id"]]
    assert len(asks_audited(await rows(database_url, t.audit_log))) == 1


async def test_the_same_client_id_elsewhere_is_another_question(api, sockets, database_url):
    anna, house, house_ws, first_cid = await finished_consultation(api, sockets)
    second_cid = await start_and_accept(anna, house_ws, "internal-medicine")
    await house.call("POST", f"/api/consultations/{second_cid}/end", {})
    piotr = await api("piotr@demo.test")
    piotr_cid = await start_and_accept(piotr, house_ws, "internal-medicine")
    await house.call("POST", f"/api/consultations/{piotr_cid}/end", {})

    # Another consultation of the same patient; another patient's own consultation.
    first = await ask(anna, first_cid, "About the first visit?", client_id="same")
    second = await ask(anna, second_cid, "About the second visit?", client_id="same")
    piotrs = await ask(piotr, piotr_cid, "About my visit?", client_id="same")
    assert len({first["id"], second["id"], piotrs["id"]}) == 3
    # Another patient reusing Anna's id on her consultation gets a refusal, not her question.
    stranger = await ask(piotr, first_cid, "Hi?", client_id="same", expect=403)
    assert stranger["error"]["code"] == "not_participant"
    stored = await rows(database_url, t.follow_ups)
    assert sorted((r.consultation_id, r.patient_id, r.question) for r in stored) == sorted(
        [
            (first_cid, anna.user["id"], "About the first visit?"),
            (second_cid, anna.user["id"], "About the second visit?"),
            (piotr_cid, piotr.user["id"], "About my visit?"),
        ]
    )


BAD_CLIENT_IDS: list[tuple[Any, str]] = [
    ("", "at least 1 character"),
    ("   ", "at least 1 character"),
    ("x" * 65, "at most 64 characters"),
    ("two words", "visible ASCII"),
    ("nul\u0000byte", "visible ASCII"),
    ("zażółć", "visible ASCII"),
    (42, "valid string"),
    (None, "valid string"),
    ({"id": 1}, "valid string"),
]


async def test_a_missing_or_malformed_client_id_is_refused_and_nothing_is_stored(
    api, sockets, database_url
):
    anna, house, _, cid = await finished_consultation(api, sockets)
    path = f"/api/consultations/{cid}/follow-ups"
    missing = await anna.call("POST", path, {"question": "Q?"}, expect=400)
    assert missing["error"]["code"] == "invalid_payload"
    assert missing["error"]["message"] == "the payload is not valid: client_id: Field required"
    assert missing["error"]["details"]["problems"] == [
        {"field": "client_id", "problem": "Field required"}
    ]
    for client_id, problem in BAD_CLIENT_IDS:
        bad = await anna.call("POST", path, {"question": "Q?", "client_id": client_id}, expect=400)
        assert bad["error"]["code"] == "invalid_payload", client_id
        assert "client_id:" in bad["error"]["message"], client_id
        assert problem in bad["error"]["message"], (client_id, bad)
    nul = await anna.call("POST", path, {"question": "Q?\x00", "client_id": "q-nul"}, expect=400)
    assert nul["error"]["details"]["problems"][0]["field"] == "question"
    assert await rows(database_url, t.follow_ups) == []
    assert asks_audited(await rows(database_url, t.audit_log)) == []

    # The same for an answer: refused, and the question stays unanswered.
    asked = await ask(anna, cid, "Q?")
    path = f"/api/follow-ups/{asked['id']}/answer"
    missing = await house.call("POST", path, {"answer": "A."}, expect=400)
    assert missing["error"]["message"] == "the payload is not valid: client_id: Field required"
    for client_id, problem in BAD_CLIENT_IDS:
        bad = await house.call("POST", path, {"answer": "A.", "client_id": client_id}, expect=400)
        assert bad["error"]["code"] == "invalid_payload", client_id
        assert "client_id:" in bad["error"]["message"] and problem in bad["error"]["message"]
    nul = await house.call("POST", path, {"answer": "A\x00", "client_id": "a-nul"}, expect=400)
    assert nul["error"]["details"]["problems"][0]["field"] == "answer"
    (kept,) = await rows(database_url, t.follow_ups)
    assert kept.answer is None and kept.answer_client_id is None


async def test_a_repeated_answer_is_stored_once_and_answered_the_same(api, sockets, database_url):
    anna, house, _, cid = await finished_consultation(api, sockets)
    anna_ws = await sockets(anna.token)
    asked = await ask(anna, cid, "Q1?", client_id="q-1")
    first = await answer(house, asked["id"], "A1.", client_id="a-1")
    assert await answer(house, asked["id"], "A1.", client_id="a-1") == first
    # A repeat's text is ignored; another answer (another id) is refused as before.
    assert await answer(house, asked["id"], "A1, edited.", client_id="a-1") == first
    other = await answer(house, asked["id"], "Another.", client_id="a-2", expect=409)
    assert other["error"]["code"] == "follow_up_already_answered"
    # The patient repeating her question now gets it with its answer.
    assert await ask(anna, cid, "Q1?", client_id="q-1") == first

    # Concurrent repeats of another answer: one stored, the same reply to each.
    second = await ask(anna, cid, "Q2?", client_id="q-2")
    replies = await asyncio.gather(
        *(answer(house, second["id"], "A2.", client_id="a-3") for _ in range(6))
    )
    assert all(r == replies[0] for r in replies) and replies[0]["answer"] == "A2."

    stored = {r.id: r for r in await rows(database_url, t.follow_ups)}
    assert [(r.answer, r.answer_client_id) for r in stored.values()] == [
        ("A1.", "a-1"),
        ("A2.", "a-3"),
    ]
    # Told to the patient once each (the next push is the other answer's), audited once each.
    pushed = [(await anna_ws.next("follow-up:answered"))["follow_up"] for _ in range(2)]
    assert pushed == [first, replies[0]]
    await asyncio.sleep(0.2)
    assert anna_ws.pending("follow-up:answered") == 0
    answers_audited = [
        r
        for r in await rows(database_url, t.audit_log)
        if r.action == "follow_up.answer" and r.allowed
    ]
    assert len(answers_audited) == 2
