"""Bad input gets a clear error and changes nothing."""

from __future__ import annotations

import aiohttp
import pytest
import socketio

from consult.storage import tables as t
from tests.support import count, start_and_accept

START = "/api/consultations"


@pytest.mark.parametrize(
    ("email", "payload", "status", "code"),
    [
        ("anna@demo.test", {"specialty": "astrology", "form": "chat"}, 400, "unknown_specialty"),
        (
            "basia@demo.test",
            {"specialty": "dermatology", "form": "chat"},
            403,
            "identity_not_verified",
        ),
        ("piotr@demo.test", {"specialty": "cardiology", "form": "chat"}, 403, "not_covered"),
        ("dr.house@demo.test", {"specialty": "cardiology", "form": "chat"}, 403, "not_a_patient"),
        (
            "anna@demo.test",
            {"specialty": "cardiology", "form": "telepathy"},
            400,
            "invalid_payload",
        ),
        ("anna@demo.test", {"specialty": "cardiology"}, 400, "invalid_payload"),
        (
            "anna@demo.test",
            {"specialty": "cardiology", "form": "chat", "extra": 1},
            400,
            "invalid_payload",
        ),
        ("anna@demo.test", ["not", "an", "object"], 400, "invalid_payload"),
    ],
)
async def test_refused_starts_create_nothing(api, database_url, email, payload, status, code):
    client = await api(email)
    body = await client.call("POST", START, payload, expect=status)
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert await count(database_url, t.consultations) == 0


async def test_invalid_payload_names_the_field(api):
    anna = await api("anna@demo.test")
    body = await anna.call("POST", START, {"specialty": "cardiology", "form": "x"}, expect=400)
    assert body["error"]["details"]["problems"][0]["field"] == "form"


async def test_malformed_json_is_refused(api, base_url):
    anna = await api("anna@demo.test")
    async with aiohttp.ClientSession() as http:
        async with http.post(
            base_url + START, data=b"{not json", headers={"Authorization": f"Bearer {anna.token}"}
        ) as response:
            assert response.status == 400
            assert (await response.json())["error"]["code"] == "malformed_json"


async def test_a_second_open_consultation_is_refused(api, database_url):
    anna = await api("anna@demo.test")
    await anna.call("POST", START, {"specialty": "cardiology", "form": "chat"}, expect=201)
    body = await anna.call("POST", START, {"specialty": "dermatology", "form": "chat"}, expect=409)
    assert body["error"]["code"] == "already_in_consultation"
    assert await count(database_url, t.consultations) == 1


async def test_requests_without_a_session_are_refused(api):
    anonymous = await api()
    for method, path in [("GET", "/api/me"), ("POST", START), ("GET", "/api/patients/me/record")]:
        body = await anonymous.call(method, path, {} if method == "POST" else None, expect=401)
        assert body["error"]["code"] == "not_authenticated"
    anonymous.token = "forged-token"
    body = await anonymous.call("GET", "/api/me", expect=401)
    assert body["error"]["code"] == "session_expired"


async def test_wrong_password_is_refused_and_audited(api, database_url):
    anonymous = await api()
    body = await anonymous.call(
        "POST", "/api/login", {"email": "anna@demo.test", "password": "guess"}, expect=401
    )
    assert body["error"]["code"] == "bad_credentials"
    denied = await count(
        database_url, t.audit_log, t.audit_log.c.action == "session.login", ~t.audit_log.c.allowed
    )
    assert denied == 1


async def test_logout_ends_the_session(api):
    anna = await api("anna@demo.test")
    await anna.call("POST", "/api/logout", expect=204)
    assert (await anna.call("GET", "/api/me", expect=401))["error"]["code"] == "session_expired"


async def test_socket_without_a_valid_session_is_refused(base_url):
    for auth in (None, {"token": "forged"}):
        client = socketio.AsyncClient(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await client.connect(base_url, auth=auth, transports=["websocket"], wait_timeout=5)
        assert not client.connected


async def test_messages_to_someone_elses_consultation_are_refused_and_audited(
    api, sockets, database_url
):
    doctor = await api("dr.house@demo.test")
    doctor_ws = await sockets(doctor.token)
    await doctor_ws.emit(
        "presence:online", {"specialties": ["internal-medicine"], "forms": ["chat"]}
    )
    anna = await api("anna@demo.test")
    cid = await start_and_accept(anna, doctor_ws, "internal-medicine")

    intruder = await api("piotr@demo.test")
    intruder_ws = await sockets(intruder.token)
    ack = await intruder_ws.emit(
        "chat:send", {"consultation_id": cid, "client_id": "x", "body": "let me in"}
    )
    assert ack == {
        "ok": False,
        "error": {"code": "not_participant", "message": "you are not part of this consultation"},
    }
    body = await intruder.call("GET", f"/api/consultations/{cid}/messages", expect=403)
    assert body["error"]["code"] == "not_participant"
    # Not 403: a stranger learns nothing, not even that Anna is a patient here.
    body = await intruder.call("GET", f"/api/patients/{anna.user['id']}/record", expect=404)
    assert body["error"]["code"] == "patient_not_found"
    # A doctor who never consulted Anna may not read her record either.
    other_doctor = await api("dr.skin@demo.test")
    await other_doctor.call("GET", f"/api/patients/{anna.user['id']}/record", expect=404)

    assert await count(database_url, t.messages) == 0
    denied = await count(database_url, t.audit_log, ~t.audit_log.c.allowed)
    assert denied == 4
    assert doctor_ws.pending("chat:message") == 0


async def test_malformed_socket_payloads_get_error_acks(api, sockets, database_url):
    anna = await api("anna@demo.test")
    ws = await sockets(anna.token)
    for payload in (
        "hello",
        None,
        {"consultation_id": "abc", "client_id": "1", "body": "x"},
        {"consultation_id": 1, "client_id": "1", "body": ""},
    ):
        ack = await ws.emit("chat:send", payload)
        assert ack["ok"] is False and ack["error"]["code"] == "invalid_payload", (payload, ack)
    # Too long has its own code, with the limit.
    ack = await ws.emit("chat:send", {"consultation_id": 1, "client_id": "1", "body": "x" * 4001})
    assert ack["ok"] is False and ack["error"]["code"] == "message_too_long", ack
    assert ack["error"]["details"] == {"max_length": 4000, "length": 4001}
    ack = await ws.emit("no:such:event", {})
    assert ack["error"]["code"] == "unknown_event"
    # A patient cannot go online as a doctor.
    ack = await ws.emit("presence:online", {"specialties": ["cardiology"], "forms": ["chat"]})
    assert ack["error"]["code"] == "not_a_doctor"
    assert await count(database_url, t.messages) == 0
    assert await count(database_url, t.doctor_presence) == 0


async def test_a_nul_character_is_refused_in_any_text_and_stores_nothing(
    api, sockets, database_url
):
    # PostgreSQL's text cannot hold U+0000: before, a chat message or a recommendation carrying
    # one failed there with a 500 (and SQLite stored it).
    doctor = await api("dr.house@demo.test")
    doctor_ws = await sockets(doctor.token)
    await doctor_ws.emit(
        "presence:online", {"specialties": ["internal-medicine"], "forms": ["chat"]}
    )
    anna = await api("anna@demo.test")
    anna_ws = await sockets(anna.token)
    cid = await start_and_accept(anna, doctor_ws, "internal-medicine")
    ack = await anna_ws.emit(
        "chat:send", {"consultation_id": cid, "client_id": "c1", "body": "a\x00b"}
    )
    assert ack["ok"] is False and ack["error"]["code"] == "invalid_payload", ack
    assert ack["error"]["details"]["problems"][0]["field"] == "body"
    ack = await anna_ws.emit(
        "chat:send", {"consultation_id": cid, "client_id": "c\x00", "body": "hello"}
    )
    assert ack["error"]["details"]["problems"][0]["field"] == "client_id"
    body = await doctor.call(
        "POST", f"/api/consultations/{cid}/recommendations", {"text": "rest\x00"}, expect=400
    )
    assert body["error"]["code"] == "invalid_payload"
    assert "NUL" in body["error"]["message"]
    assert await count(database_url, t.messages) == 0
    assert await count(database_url, t.recommendations) == 0
    # The consultation goes on: the same message without it is stored.
    ack = await anna_ws.emit(
        "chat:send", {"consultation_id": cid, "client_id": "c1", "body": "a b"}
    )
    assert ack["ok"] is True and ack["data"]["seq"] == 1


async def test_a_doctor_goes_online_only_for_specialties_they_practise(api, sockets):
    doctor = await api("dr.skin@demo.test")
    ws = await sockets(doctor.token)
    ack = await ws.emit("presence:online", {"specialties": ["cardiology"], "forms": ["chat"]})
    assert ack["error"]["code"] == "specialty_not_practised"
    assert ack["error"]["details"] == {"specialties": ["cardiology"]}


async def test_unknown_ids_and_routes(api):
    anna = await api("anna@demo.test")
    assert (await anna.call("GET", "/api/consultations/999", expect=404))["error"]["code"] == (
        "consultation_not_found"
    )
    assert (await anna.call("GET", "/api/consultations/abc", expect=400))["error"]["code"] == (
        "invalid_id"
    )
    assert (await anna.call("GET", "/api/nowhere", expect=404))["error"]["code"] == (
        "route_not_found"
    )
    assert (await anna.call("DELETE", "/api/me", expect=405))["error"]["code"] == (
        "method_not_allowed"
    )


async def test_only_the_consulting_doctor_writes_recommendations(api, sockets, database_url):
    doctor = await api("dr.house@demo.test")
    doctor_ws = await sockets(doctor.token)
    await doctor_ws.emit(
        "presence:online", {"specialties": ["internal-medicine"], "forms": ["chat"]}
    )
    anna = await api("anna@demo.test")
    cid = await start_and_accept(anna, doctor_ws, "internal-medicine")
    body = await anna.call(
        "POST", f"/api/consultations/{cid}/recommendations", {"text": "self-care"}, expect=403
    )
    assert body["error"]["code"] == "not_the_doctor"
    await doctor.call("POST", f"/api/consultations/{cid}/end", {})
    body = await doctor.call(
        "POST", f"/api/consultations/{cid}/recommendations", {"text": "late"}, expect=409
    )
    assert body["error"]["code"] == "consultation_not_active"
    body = await doctor.call("POST", f"/api/consultations/{cid}/end", {}, expect=409)
    assert body["error"]["code"] == "consultation_ended"
    assert await count(database_url, t.recommendations) == 0
