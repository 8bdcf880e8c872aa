"""Steps 2-5 of the walking skeleton over real HTTP and Socket.IO, on each backend."""

from __future__ import annotations

from consult.storage import tables as t
from tests.support import rows, start_and_accept


async def test_chat_consultation_end_to_end(api, sockets, database_url):
    doctor = await api("dr.house@demo.test")
    doctor_ws = await sockets(doctor.token)
    ack = await doctor_ws.emit(
        "presence:online", {"specialties": ["internal-medicine"], "forms": ["chat"]}
    )
    assert ack["ok"], ack
    assert ack["data"]["status"] == "online"

    patient = await api("anna@demo.test")
    patient_ws = await sockets(patient.token)
    ticket = await patient.call(
        "POST", "/api/consultations", {"specialty": "internal-medicine", "form": "chat"}, expect=201
    )
    # The doctor is free: the ticket is offered to them at once and they accept.
    started = ticket["consultation"]
    assert started["status"] == "offered" and ticket["place"] == 0
    assert started["doctor"]["name"] == "Dr Gregory House"
    cid = started["id"]
    offer = await doctor_ws.next("queue:offer")
    assert offer["consultation"]["id"] == cid and offer["expires_at"]
    accepted = await doctor_ws.emit("queue:accept", {"consultation_id": cid})
    assert accepted["ok"] and accepted["data"]["status"] == "active"

    # Both sides are told of the match, live.
    assert (await doctor_ws.next("consultation:matched"))["consultation"]["id"] == cid
    assert (await patient_ws.next("consultation:matched"))["consultation"]["id"] == cid
    assert (await doctor.call("GET", "/api/consultations/open"))["consultations"][0]["id"] == cid

    sent = await patient_ws.emit(
        "chat:send", {"consultation_id": cid, "client_id": "p-1", "body": "I have a headache"}
    )
    assert sent["ok"], sent
    assert sent["data"]["seq"] == 1
    received = (await doctor_ws.next("chat:message"))["message"]
    assert received["body"] == "I have a headache" and received["sender_role"] == "patient"

    reply = await doctor_ws.emit(
        "chat:send", {"consultation_id": cid, "client_id": "d-1", "body": "Since when?"}
    )
    assert reply["data"]["seq"] == 2
    # Each participant's own sockets get the message too (other tabs stay in step).
    echoed = [(await patient_ws.next("chat:message"))["message"]["body"] for _ in range(2)]
    assert echoed == ["I have a headache", "Since when?"]

    await doctor.call(
        "POST",
        f"/api/consultations/{cid}/recommendations",
        {"text": "Drink water, rest, ibuprofen 400 mg if needed."},
        expect=201,
    )
    ended = await doctor.call("POST", f"/api/consultations/{cid}/end", {})
    assert ended["status"] == "ended" and ended["ended_at"]
    assert (await patient_ws.next("consultation:ended"))["consultation"]["status"] == "ended"
    assert (await patient_ws.next("record:changed"))["consultation_id"] == cid

    record = await patient.call("GET", "/api/patients/me/record")
    (entry,) = record["entries"]
    assert entry["consultation"]["id"] == cid
    assert [m["body"] for m in entry["transcript"]] == ["I have a headache", "Since when?"]
    assert entry["recommendations"][0]["text"].startswith("Drink water")
    assert entry["recommendations"][0]["doctor"]["name"] == "Dr Gregory House"

    # The doctor, having consulted Anna, may read her record too.
    theirs = await doctor.call("GET", f"/api/patients/{patient.user['id']}/record")
    assert theirs["entries"][0]["consultation"]["id"] == cid

    actions = [
        (r.action, r.actor_id, r.patient_id, r.allowed)
        for r in await rows(database_url, t.audit_log)
    ]
    pid, did = patient.user["id"], doctor.user["id"]
    for expected in [
        ("consultation.start", pid, pid, True),
        ("chat.write", pid, pid, True),
        ("chat.write", did, pid, True),
        ("record.recommendation.write", did, pid, True),
        ("consultation.end", did, pid, True),
        ("record.read", pid, pid, True),
        ("record.read", did, pid, True),
    ]:
        assert expected in actions, expected
    assert all(r.ip == "127.0.0.1" for r in await rows(database_url, t.audit_log) if r.actor_id)


async def test_waiting_patient_is_matched_when_a_doctor_comes_online(api, sockets):
    patient = await api("anna@demo.test")
    patient_ws = await sockets(patient.token)
    ticket = await patient.call(
        "POST", "/api/consultations", {"specialty": "dermatology", "form": "chat"}, expect=201
    )
    started = ticket["consultation"]
    assert started["status"] == "waiting" and started["doctor"] is None
    assert ticket["place"] == 1 and ticket["doctors"]["online"] == 0
    assert ticket["eta"]["high_minutes"] is None

    doctor = await api("dr.skin@demo.test")
    doctor_ws = await sockets(doctor.token)
    ack = await doctor_ws.emit(
        "presence:online", {"specialties": ["dermatology"], "forms": ["chat"]}
    )
    assert ack["ok"]
    offer = await doctor_ws.next("queue:offer")
    assert offer["consultation"]["id"] == started["id"]
    await patient_ws.until("queue:ticket", lambda t: t["place"] == 0)
    await doctor_ws.emit("queue:accept", {"consultation_id": started["id"]})
    matched = (await patient_ws.next("consultation:matched"))["consultation"]
    assert matched["id"] == started["id"] and matched["doctor"]["name"] == "Dr Iwona Skóra"
    assert (await doctor_ws.next("consultation:matched"))["consultation"]["id"] == started["id"]


async def test_a_busy_doctor_gets_the_next_patient_when_the_consultation_ends(api, sockets):
    doctor = await api("dr.grey@demo.test")
    doctor_ws = await sockets(doctor.token)
    await doctor_ws.emit(
        "presence:online", {"specialties": ["internal-medicine", "paediatrics"], "forms": ["chat"]}
    )
    first = await api("anna@demo.test")
    one = await start_and_accept(first, doctor_ws, "paediatrics")
    # Capacity 1: the second patient waits, first in line, with a doctor online but busy.
    second = await api("piotr@demo.test")
    second_ws = await sockets(second.token)
    ticket = await second.call(
        "POST", "/api/consultations", {"specialty": "internal-medicine", "form": "chat"}, expect=201
    )
    assert ticket["consultation"]["status"] == "waiting" and ticket["place"] == 1
    assert ticket["doctors"] == {"online": 1, "busy": 1, "away": 0}
    assert ticket["eta"]["low_minutes"] is not None
    await first.call("POST", f"/api/consultations/{one}/end", {})
    offer = await doctor_ws.next("queue:offer")
    assert offer["consultation"]["id"] == ticket["consultation"]["id"]
    await second_ws.until("queue:ticket", lambda t: t["place"] == 0)


async def test_a_patient_may_leave_the_queue(api, sockets):
    patient = await api("piotr@demo.test")
    ticket = await patient.call(
        "POST", "/api/consultations", {"specialty": "dermatology", "form": "chat"}, expect=201
    )
    cid = ticket["consultation"]["id"]
    assert (await patient.call("GET", "/api/queue/ticket"))["consultation"]["id"] == cid
    cancelled = await patient.call("POST", f"/api/consultations/{cid}/end", {})
    assert cancelled["status"] == "cancelled"
    assert (await patient.call("GET", "/api/consultations/open"))["consultations"] == []
    assert (await patient.call("GET", "/api/queue/ticket", expect=404))["error"]["code"] == (
        "no_ticket"
    )


async def test_a_retried_message_is_stored_once_with_the_same_sequence_number(api, sockets):
    doctor = await api("dr.grey@demo.test")
    doctor_ws = await sockets(doctor.token)
    await doctor_ws.emit("presence:online", {"specialties": ["paediatrics"], "forms": ["chat"]})
    patient = await api("anna@demo.test")
    patient_ws = await sockets(patient.token)
    cid = await start_and_accept(patient, doctor_ws, "paediatrics")
    payload = {"consultation_id": cid, "client_id": "same-id", "body": "my son has a fever"}
    first = await patient_ws.emit("chat:send", payload)
    again = await patient_ws.emit("chat:send", payload)
    assert first["ok"] and again["ok"]
    assert first["data"]["seq"] == again["data"]["seq"] == 1
    assert first["data"]["id"] == again["data"]["id"]
    messages = (await patient.call("GET", f"/api/consultations/{cid}/messages"))["messages"]
    assert len(messages) == 1
    after = await patient.call("GET", f"/api/consultations/{cid}/messages?after=1")
    assert after["messages"] == []
