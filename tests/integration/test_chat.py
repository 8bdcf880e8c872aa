"""The chat's rules over real Socket.IO, on each backend: acks after commit, one order, retries
stored once, resume from the last seq, read receipts, typing notices, length and rate limits,
and the transcript in the patient's record."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from consult.chat.batch_postgres import PostgresStore
from consult.chat.batch_store import Draft
from consult.errors import Conflict
from consult.http.routing import SERVICES
from consult.storage import tables as t
from tests.support import ApiClient, SocketClient, rows, start_and_accept

IM = {"specialties": ["internal-medicine"], "forms": ["chat"]}
PAED = {"specialties": ["paediatrics"], "forms": ["chat"]}


async def consultation(
    api: Any, sockets: Any, doctor_email: str, patient_email: str, presence: dict, specialty: str
) -> tuple[ApiClient, SocketClient, ApiClient, SocketClient, int]:
    doctor = await api(doctor_email)
    doctor_ws = await sockets(doctor.token)
    assert (await doctor_ws.emit("presence:online", presence))["ok"]
    patient = await api(patient_email)
    patient_ws = await sockets(patient.token)
    cid = await start_and_accept(patient, doctor_ws, specialty)
    return doctor, doctor_ws, patient, patient_ws, cid


async def house_and_anna(
    api: Any, sockets: Any
) -> tuple[Any, SocketClient, Any, SocketClient, int]:
    return await consultation(
        api, sockets, "dr.house@demo.test", "anna@demo.test", IM, "internal-medicine"
    )


def send(ws: SocketClient, cid: int, client_id: str, body: str) -> Any:
    return ws.emit("chat:send", {"consultation_id": cid, "client_id": client_id, "body": body})


async def drain(ws: SocketClient, event: str, count: int) -> list[Any]:
    return [await ws.next(event) for _ in range(count)]


async def test_concurrent_senders_get_one_gapless_order_seen_alike_by_both(
    api, sockets, database_url
):
    _, doctor_ws, _, patient_ws, cid = await house_and_anna(api, sockets)
    # 15 messages from each side at once: they land in the same group commits.
    acks = await asyncio.gather(
        *(send(patient_ws, cid, f"p{i}", f"patient {i}") for i in range(15)),
        *(send(doctor_ws, cid, f"d{i}", f"doctor {i}") for i in range(15)),
    )
    assert all(a["ok"] for a in acks), acks
    seqs = sorted(a["data"]["seq"] for a in acks)
    assert seqs == list(range(1, 31))
    stored = await rows(database_url, t.messages, t.messages.c.consultation_id == cid)
    assert sorted(r.seq for r in stored) == seqs
    # The ack is the stored message.
    by_client = {r.client_id: r for r in stored}
    for a in acks:
        assert by_client[a["data"]["client_id"]].seq == a["data"]["seq"]
        assert by_client[a["data"]["client_id"]].body == a["data"]["body"]
    # Each side receives every message once, and both see the same order.
    acked = {a["data"]["client_id"]: a["data"] for a in acks}
    for ws in (patient_ws, doctor_ws):
        got = [e["message"] for e in await drain(ws, "chat:message", 30)]
        assert sorted(m["seq"] for m in got) == seqs
        assert ws.pending("chat:message") == 0
        # What is pushed is what is acknowledged (built apart, from the same values).
        assert all(m == acked[m["client_id"]] for m in got)
    audit = await rows(database_url, t.audit_log, t.audit_log.c.action == "chat.write")
    assert len(audit) == 30 and all(r.allowed for r in audit)


async def test_messages_arriving_a_few_loop_turns_apart_share_one_transaction(
    api, sockets, server, monkeypatch
):
    doctor, _, patient, _, cid = await house_and_anna(api, sockets)
    services = server.app[SERVICES]
    senders = [
        await services.accounts.authenticate(patient.token),
        await services.accounts.authenticate(doctor.token),
    ]
    writer = services.chat._writer
    batches: list[int] = []
    attempt = writer._write_batch

    async def counted(batch: list[Any]) -> Any:
        batches.append(len(batch))
        return await attempt(batch)

    monkeypatch.setattr(writer, "_write_batch", counted)

    async def arrive(i: int) -> Any:
        # As from sockets: each message reaches the writer a few tasks after its read, so one
        # that was read a little later reaches it a loop turn or two later.
        for _ in range(i % 3):
            await asyncio.sleep(0)
        return await services.chat.post(senders[i % 2], cid, f"m{i}", f"message {i}")

    messages = await asyncio.gather(*(arrive(i) for i in range(12)))
    # SQLite runs a transaction without yielding: a leader that did not let the loop turn
    # first wrote one message per transaction here.
    assert batches == [12]
    assert sorted(m.seq for m in messages) == list(range(1, 13))


async def test_a_sender_gone_while_its_batch_gathers_does_not_stop_the_writer(
    api, sockets, server, database_url
):
    doctor, _, patient, _, cid = await house_and_anna(api, sockets)
    services = server.app[SERVICES]
    anna = await services.accounts.authenticate(patient.token)
    house = await services.accounts.authenticate(doctor.token)
    gone = asyncio.create_task(services.chat.post(anna, cid, "gone", "never stored"))
    await asyncio.sleep(0)  # it leads the next batch and lets the loop turn: cancelled there
    gone.cancel()
    await asyncio.gather(gone, return_exceptions=True)
    # The lead passed on: the next message is written, and the cancelled one never was.
    message = await asyncio.wait_for(services.chat.post(house, cid, "next", "hello"), 5)
    assert message.seq == 1
    assert [r.client_id for r in await rows(database_url, t.messages)] == ["next"]


async def test_a_retry_while_the_first_is_in_flight_is_stored_once(api, sockets, database_url):
    _, doctor_ws, _, patient_ws, cid = await house_and_anna(api, sockets)
    first, second, third = await asyncio.gather(
        *(send(patient_ws, cid, "same", "only once") for _ in range(3))
    )
    assert first["ok"] and second["ok"] and third["ok"]
    assert first["data"] == second["data"] == third["data"]
    assert len(await rows(database_url, t.messages)) == 1
    await doctor_ws.next("chat:message")
    await asyncio.sleep(0.1)
    assert doctor_ws.pending("chat:message") == 0  # told once, not three times


async def test_two_batches_racing_with_one_message_store_it_once(
    api, sockets, server, database_url
):
    if not database_url.startswith("postgresql"):
        pytest.skip("one statement a batch is PostgreSQL's path; SQLite has one writer")
    doctor, doctor_ws, patient, _, cid = await house_and_anna(api, sockets)
    services = server.app[SERVICES]
    anna = await services.accounts.authenticate(patient.token)
    # Two processes' batches with the same retried message: the second waits for the first's
    # row lock, then meets the stored client id. It must store nothing, not even the sequence
    # number it reserved (a gap the transcript would show).
    store = PostgresStore(services.db, services.clock, services.audit)
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as holder:
            # Both statements start while the row is locked, so both see no stored message.
            await holder.execute(
                sa.select(t.consultations.c.id).where(t.consultations.c.id == cid).with_for_update()
            )
            racing = [
                asyncio.create_task(
                    store.post_new([Draft(anna, cid, "same", "raced")], services.clock.now())
                )
                for _ in range(2)
            ]
            await asyncio.sleep(0.3)
            assert not any(task.done() for task in racing)
        results = await asyncio.gather(*racing)
    finally:
        await engine.dispose()
    stored, refused = sorted(results, key=lambda r: r is None)
    assert stored is not None and [r["seq"] for r in stored] == [1]
    assert refused is None
    assert [r.seq for r in await rows(database_url, t.messages)] == [1]
    consultation_row = (await rows(database_url, t.consultations, t.consultations.c.id == cid))[0]
    assert consultation_row.last_seq == 1
    audit = await rows(database_url, t.audit_log, t.audit_log.c.action == "chat.write")
    assert len(audit) == 1
    # The writer then answers the retry with the stored message, and goes on from seq 2.
    retried = await services.chat.post(anna, cid, "same", "raced")
    assert retried.seq == 1
    doctor_actor = await services.accounts.authenticate(doctor.token)
    assert (await services.chat.post(doctor_actor, cid, "next", "hello")).seq == 2


async def test_a_message_waiting_on_a_consultation_that_ends_is_refused(
    api, sockets, server, database_url
):
    _, _, patient, _, cid = await house_and_anna(api, sockets)
    services = server.app[SERVICES]
    anna = await services.accounts.authenticate(patient.token)
    engine = create_async_engine(database_url)
    try:
        # The consultation ends in a transaction that holds the row (on SQLite, the write
        # lock) while the message waits for it: the message must be judged on the row as it
        # is after the end.
        async with engine.begin() as ending:
            await ending.execute(
                t.consultations.update().where(t.consultations.c.id == cid).values(status="ended")
            )
            posting = asyncio.create_task(services.chat.post(anna, cid, "late", "too late"))
            await asyncio.sleep(0.3)
            assert not posting.done()
        with pytest.raises(Conflict) as refused:
            await posting
    finally:
        await engine.dispose()
    assert refused.value.code == "consultation_not_active"
    assert await rows(database_url, t.messages) == []
    consultation_row = (await rows(database_url, t.consultations, t.consultations.c.id == cid))[0]
    assert consultation_row.last_seq == 0


async def test_resume_returns_everything_after_the_last_seq_in_order(api, sockets, base_url):
    doctor, doctor_ws, patient, patient_ws, cid = await house_and_anna(api, sockets)
    for i in range(3):
        assert (await send(patient_ws, cid, f"a{i}", f"before {i}"))["ok"]
    # The doctor's connection drops; the patient goes on writing.
    await doctor_ws.close()
    for i in range(3, 6):
        assert (await send(patient_ws, cid, f"a{i}", f"while away {i}"))["ok"]
    again = await SocketClient().connect(base_url, doctor.token)
    try:
        resumed = await again.emit("chat:resume", {"consultation_id": cid, "after_seq": 3})
        assert resumed["ok"], resumed
        data = resumed["data"]
        assert [m["seq"] for m in data["messages"]] == [4, 5, 6]
        assert [m["body"] for m in data["messages"]] == [f"while away {i}" for i in range(3, 6)]
        assert data["last_seq"] == 6 and data["status"] == "active"
        assert data["read"] == {"patient_read_seq": 0, "doctor_read_seq": 0}
        everything = await again.emit("chat:resume", {"consultation_id": cid})
        assert [m["seq"] for m in everything["data"]["messages"]] == [1, 2, 3, 4, 5, 6]
        nothing = await again.emit("chat:resume", {"consultation_id": cid, "after_seq": 6})
        assert nothing["data"]["messages"] == [] and nothing["data"]["last_seq"] == 6
    finally:
        await again.close()


async def test_reading_the_transcript_does_not_wait_for_a_row_lock(api, sockets, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("row locks are PostgreSQL's; SQLite has one writer lock for everything")
    _, _, patient, patient_ws, cid = await house_and_anna(api, sockets)
    assert (await send(patient_ws, cid, "p1", "hello"))["ok"]
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as other:
            # Another transaction (a batch of messages, a read receipt) holds the row.
            await other.execute(
                sa.select(t.consultations.c.id).where(t.consultations.c.id == cid).with_for_update()
            )
            got = await asyncio.wait_for(
                patient.call("GET", f"/api/consultations/{cid}/messages"), timeout=5
            )
            await other.rollback()
    finally:
        await engine.dispose()
    assert [m["client_id"] for m in got["messages"]] == ["p1"]


async def test_resume_is_refused_to_others_and_bad_input(api, sockets, database_url):
    _, _, patient, patient_ws, cid = await house_and_anna(api, sockets)
    assert (await send(patient_ws, cid, "x", "private"))["ok"]
    intruder = await api("piotr@demo.test")
    intruder_ws = await sockets(intruder.token)
    ack = await intruder_ws.emit("chat:resume", {"consultation_id": cid, "after_seq": 0})
    assert ack["error"]["code"] == "not_participant"
    ack = await intruder_ws.emit("chat:resume", {"consultation_id": 9999, "after_seq": 0})
    assert ack["error"]["code"] == "consultation_not_found"
    for payload in ({"consultation_id": cid, "after_seq": -1}, {"after_seq": 0}, "x"):
        ack = await patient_ws.emit("chat:resume", payload)
        assert ack["ok"] is False and ack["error"]["code"] == "invalid_payload", payload
    denied = await rows(
        database_url, t.audit_log, t.audit_log.c.action == "chat.read", ~t.audit_log.c.allowed
    )
    assert [(r.actor_id, r.consultation_id) for r in denied] == [(intruder.user["id"], cid)]


async def test_message_length_limit(api, sockets, database_url):
    _, _, _, patient_ws, cid = await house_and_anna(api, sockets)
    ack = await send(patient_ws, cid, "long", "x" * 4001)
    assert ack["ok"] is False
    assert ack["error"]["code"] == "message_too_long"
    assert "4000" in ack["error"]["message"]
    assert ack["error"]["details"] == {"max_length": 4000, "length": 4001}
    assert await rows(database_url, t.messages) == []
    ok = await send(patient_ws, cid, "exact", "é" * 4000)
    assert ok["ok"] and len(ok["data"]["body"]) == 4000


async def test_a_flood_is_throttled_without_slowing_other_consultations(
    api, sockets, database_url, clock
):
    _, house_ws, _, anna_ws, flooded = await house_and_anna(api, sockets)
    _, grey_ws, _, piotr_ws, calm = await consultation(
        api, sockets, "dr.grey@demo.test", "piotr@demo.test", PAED, "paediatrics"
    )
    # Anna floods (the server's clock stands still, so her bucket does not refill);
    # Piotr writes in his own consultation meanwhile.
    flood = asyncio.gather(*(send(anna_ws, flooded, f"f{i}", f"spam {i}") for i in range(60)))
    calm_acks = await asyncio.gather(
        *(send(piotr_ws, calm, f"c{i}", f"calm {i}") for i in range(10))
    )
    flood_acks = await flood
    assert all(a["ok"] for a in calm_acks)
    ok = [a for a in flood_acks if a["ok"]]
    limited = [a for a in flood_acks if not a["ok"]]
    assert len(ok) == 20 and len(limited) == 40  # the burst, then refused
    for a in limited:
        assert a["error"]["code"] == "rate_limited"
        assert a["error"]["retry_after"] > 0
        assert a["error"]["retry_after"] == a["error"]["details"]["retry_after"]
    stored = await rows(database_url, t.messages, t.messages.c.consultation_id == flooded)
    assert len(stored) == 20
    # The doctor in the flooded consultation is limited separately and may still answer.
    assert (await send(house_ws, flooded, "d1", "please slow down"))["ok"]
    # The bucket refills at 10 a second.
    assert (await send(anna_ws, flooded, "late-1", "sorry"))["error"]["code"] == "rate_limited"
    clock.advance(0.1)
    assert (await send(anna_ws, flooded, "late-1", "sorry"))["ok"]
    assert (await send(anna_ws, flooded, "late-2", "sorry"))["error"]["code"] == "rate_limited"
    clock.advance(1)
    assert all([(await send(anna_ws, flooded, f"l{i}", "ok"))["ok"] for i in range(10)])
    assert len(await rows(database_url, t.messages, t.messages.c.consultation_id == calm)) == 10
    del grey_ws


async def test_read_receipts_move_forward_and_reach_both_sides(api, sockets, database_url):
    _, doctor_ws, patient, patient_ws, cid = await house_and_anna(api, sockets)
    for i in range(3):
        assert (await send(doctor_ws, cid, f"d{i}", f"question {i}"))["ok"]
    ack = await patient_ws.emit("chat:read", {"consultation_id": cid, "seq": 2})
    assert ack["ok"], ack
    assert ack["data"]["read_seq"] == 2 and ack["data"]["reader_role"] == "patient"
    receipt = await doctor_ws.next("chat:read")
    assert receipt == {
        "consultation_id": cid,
        "reader_id": patient.user["id"],
        "reader_role": "patient",
        "read_seq": 2,
        "read": {"patient_read_seq": 2, "doctor_read_seq": 0},
    }
    assert (await patient_ws.next("chat:read"))["read_seq"] == 2  # the patient's other tabs
    # An older receipt (another tab, late) does not move it back, and tells nobody.
    back = await patient_ws.emit("chat:read", {"consultation_id": cid, "seq": 1})
    assert back["data"]["read_seq"] == 2
    # Never past the last message.
    beyond = await patient_ws.emit("chat:read", {"consultation_id": cid, "seq": 99})
    assert beyond["data"]["read_seq"] == 3
    assert (await doctor_ws.next("chat:read"))["read_seq"] == 3
    await asyncio.sleep(0.1)
    assert doctor_ws.pending("chat:read") == 0
    resumed = await doctor_ws.emit("chat:resume", {"consultation_id": cid, "after_seq": 3})
    assert resumed["data"]["read"] == {"patient_read_seq": 3, "doctor_read_seq": 0}
    audited = await rows(database_url, t.audit_log, t.audit_log.c.action == "chat.receipt")
    assert [r.detail for r in audited] == ["read up to 2", "read up to 3"]
    intruder = await api("piotr@demo.test")
    intruder_ws = await sockets(intruder.token)
    refused = await intruder_ws.emit("chat:read", {"consultation_id": cid, "seq": 3})
    assert refused["error"]["code"] == "not_participant"
    bad = await patient_ws.emit("chat:read", {"consultation_id": cid, "seq": -1})
    assert bad["error"]["code"] == "invalid_payload"


async def test_typing_notices_reach_only_the_other_participant(api, sockets, clock):
    doctor, doctor_ws, patient, patient_ws, cid = await house_and_anna(api, sockets)
    ack = await patient_ws.emit("chat:typing", {"consultation_id": cid, "typing": True})
    assert ack["ok"], ack
    notice = await doctor_ws.next("chat:typing")
    assert notice == {
        "consultation_id": cid,
        "user_id": patient.user["id"],
        "role": "patient",
        "typing": True,
    }
    await doctor_ws.emit("chat:typing", {"consultation_id": cid, "typing": False})
    assert (await patient_ws.next("chat:typing"))["typing"] is False
    await asyncio.sleep(0.1)
    assert patient_ws.pending("chat:typing") == 0 and doctor_ws.pending("chat:typing") == 0

    intruder = await api("piotr@demo.test")
    intruder_ws = await sockets(intruder.token)
    ack = await intruder_ws.emit("chat:typing", {"consultation_id": cid, "typing": True})
    assert ack["error"]["code"] == "not_participant"
    ack = await patient_ws.emit("chat:typing", {"consultation_id": cid, "typing": "maybe"})
    assert ack["error"]["code"] == "invalid_payload"
    # Typing notices have a rate limit of their own (the clock stands still: no refill).
    codes = [
        (await patient_ws.emit("chat:typing", {"consultation_id": cid, "typing": True}))
        for _ in range(6)
    ]
    assert [c["ok"] for c in codes].count(False) >= 1
    assert {c["error"]["code"] for c in codes if not c["ok"]} == {"rate_limited"}
    clock.advance(5)
    await doctor.call("POST", f"/api/consultations/{cid}/end", {})
    ack = await patient_ws.emit("chat:typing", {"consultation_id": cid, "typing": True})
    assert ack["error"]["code"] == "consultation_not_active"


async def test_one_batch_keeps_each_message_outcome_apart(api, sockets, database_url):
    _, house_ws, _, anna_ws, one = await house_and_anna(api, sockets)
    _, grey_ws, _, piotr_ws, two = await consultation(
        api, sockets, "dr.grey@demo.test", "piotr@demo.test", PAED, "paediatrics"
    )
    # Sent together, so several land in one transaction: a refused one fails alone.
    acks = await asyncio.gather(
        send(anna_ws, one, "a", "to House"),
        send(piotr_ws, one, "intrude", "not mine"),
        send(piotr_ws, two, "b", "to Grey"),
        send(grey_ws, 9999, "c", "nowhere"),
        send(house_ws, one, "d", "from House"),
    )
    assert [a["ok"] for a in acks] == [True, False, True, False, True]
    assert acks[1]["error"]["code"] == "not_participant"
    assert acks[3]["error"]["code"] == "consultation_not_found"
    assert sorted(
        a["data"]["seq"] for a in acks if a["ok"] and a["data"]["consultation_id"] == one
    ) == [1, 2]
    assert acks[2]["data"]["seq"] == 1
    stored = await rows(database_url, t.messages)
    assert sorted(r.client_id for r in stored) == ["a", "b", "d"]
    denied = await rows(database_url, t.audit_log, ~t.audit_log.c.allowed)
    # The stranger's refusal is the writer's own row; the unknown consultation is refused at
    # the Socket.IO edge (no service row), so it gets a ``refused`` row.
    assert sorted((r.action, r.consultation_id) for r in denied) == [
        ("chat.write", one),
        ("refused", 9999),
    ]


async def test_after_the_end_the_transcript_is_in_the_record_and_closed(api, sockets):
    doctor, doctor_ws, patient, patient_ws, cid = await house_and_anna(api, sockets)
    first = await send(patient_ws, cid, "p1", "<script>alert(1)</script> hello")
    assert (await send(doctor_ws, cid, "d1", "hello"))["ok"]
    await doctor.call("POST", f"/api/consultations/{cid}/end", {})
    late = await send(patient_ws, cid, "p2", "one more thing")
    assert late["error"]["code"] == "consultation_not_active"
    # A retry of a message stored before the end still gets its ack (same seq).
    assert (await send(patient_ws, cid, "p1", "<script>alert(1)</script> hello")) == first
    record = await patient.call("GET", "/api/patients/me/record")
    (entry,) = [e for e in record["entries"] if e["consultation"]["id"] == cid]
    assert [(m["seq"], m["body"]) for m in entry["transcript"]] == [
        (1, "<script>alert(1)</script> hello"),
        (2, "hello"),
    ]
    resumed = await patient_ws.emit("chat:resume", {"consultation_id": cid})
    assert resumed["data"]["status"] == "ended" and len(resumed["data"]["messages"]) == 2
