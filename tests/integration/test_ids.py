"""Ids are strict integers from 1 to 2^31-1 (the id columns) wherever a client names one, and
JSON has bounded nesting: over real HTTP and Socket.IO, walking the route registry and the
event table (so that a new route or event is covered without touching this file)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
import yarl

from consult.app import APIS, SIO
from consult.json_limits import MAX_DEPTH
from consult.schemas import MAX_ID
from consult.storage import tables as t
from tests.support import count

# A path id is ASCII decimal 1 … MAX_ID; each of these is refused (the last three were read
# as 1 before: int() strips spaces and reads any Unicode digit).
BAD_PATH_IDS = [
    str(MAX_ID + 1),
    str(2**63),
    "9" * 100,
    "0",
    "01",
    "-1",
    "+1",
    "1_0",
    "%201",  # " 1"
    "%EF%BC%91",  # the full-width digit one
]
# In a JSON body or a Socket.IO payload: out of range, or not a JSON integer at all.
# (null is refused too where the id is required: every consultation_id.)
# (7.0 is 7: JSON has one kind of number.)
BAD_BODY_IDS: list[Any] = [MAX_ID + 1, 2**63, 10**99, 0, -1, True, "1", 1.5, float(2**63), [1]]

ROUTES_WITH_PATH_IDS = [
    (spec.method, spec.path) for api in APIS for spec in api.routes if "{" in spec.path
]
# Client events that name no consultation (the rest all take consultation_id).
EVENTS_WITHOUT_IDS = {"presence:online", "presence:offline", "presence:away", "queue:ticket"}


def _id_fields() -> list[tuple[str, str, str]]:
    """(method, path, field) for every id a route's JSON body takes: its integer fields named
    ``…_id``."""
    found = []
    for api in APIS:
        for spec in api.routes:
            if spec.body is None:
                continue
            for name, schema in spec.body.model_json_schema()["properties"].items():
                types = [s.get("type") for s in schema.get("anyOf", [schema])]
                if name.endswith("_id") and "integer" in types:
                    found.append((spec.method, spec.path, name))
    return found


def _fill(path: str, value: str) -> yarl.URL:
    return yarl.URL(re.sub(r"{\w+}", value, path), encoded=True)


async def _call_raw(base_url: str, token: str, method: str, url: yarl.URL, **kw: Any) -> Any:
    async with aiohttp.ClientSession(base_url) as http:
        headers = {"Authorization": f"Bearer {token}"}
        async with http.request(method, url, headers=headers, **kw) as response:
            return response.status, await response.json()


def test_the_walk_covers_the_id_routes():
    # The 12 routes among them (path ids, slot_id, preferred_doctor_id); a walk that
    # finds nothing would prove nothing.
    assert len(ROUTES_WITH_PATH_IDS) >= 20
    fields = {field for _, _, field in _id_fields()}
    assert {"slot_id", "preferred_doctor_id", "document_id", "doctor_id"} <= fields


async def test_every_path_id_is_strict(api, base_url):
    anna = await api("anna@demo.test")
    for method, path in ROUTES_WITH_PATH_IDS:
        for bad in BAD_PATH_IDS:
            status, body = await _call_raw(base_url, anna.token, method, _fill(path, bad))
            assert (status, body["error"]["code"]) == (400, "invalid_id"), (method, path, bad)
            assert str(MAX_ID) in body["error"]["message"]


async def test_a_percent_encoded_digit_is_the_digit(api, base_url, sockets):
    # aiohttp routes on the decoded path (RFC 3986 §2.3): %31 is 1, as docs/protocol.md says.
    anna = await api("anna@demo.test")
    ticket = await anna.call(
        "POST", "/api/consultations", {"specialty": "cardiology", "form": "chat"}, expect=201
    )
    cid = ticket["consultation"]["id"]
    encoded = "".join(f"%{ord(c):02X}" for c in str(cid))
    status, body = await _call_raw(
        base_url, anna.token, "GET", _fill("/api/consultations/{id}", encoded)
    )
    assert status == 200 and body["id"] == cid


async def test_every_body_id_is_strict_and_bounded(api, base_url):
    anna = await api("anna@demo.test")
    for method, path, field in _id_fields():
        url = _fill(path, "1")
        for bad in BAD_BODY_IDS:
            status, body = await _call_raw(base_url, anna.token, method, url, json={field: bad})
            assert (status, body["error"]["code"]) == (400, "invalid_payload"), (path, bad)
            problems = {p["field"] for p in body["error"]["details"]["problems"]}
            assert field in problems, (path, field, bad, problems)


async def test_a_boolean_slot_id_books_nothing(api, database_url):
    # {"slot_id": true} booked slot 1 before.
    anna = await api("anna@demo.test")
    body = await anna.call("POST", "/api/bookings", {"slot_id": True}, expect=400)
    assert body["error"]["details"]["problems"][0]["field"] == "slot_id"
    body = await anna.call("POST", "/api/bookings", {"slot_id": MAX_ID + 1}, expect=400)
    assert body["error"]["code"] == "invalid_payload"
    assert await count(database_url, t.bookings) == 0


async def test_the_largest_id_is_merely_not_found(api):
    # On PostgreSQL the id columns are 32 bits: 2^31 failed there with a 500.
    anna = await api("anna@demo.test")
    body = await anna.call("GET", f"/api/consultations/{MAX_ID}", expect=404)
    assert body["error"]["code"] == "consultation_not_found"
    body = await anna.call("POST", "/api/bookings", {"slot_id": MAX_ID}, expect=404)
    assert body["error"]["code"] == "slot_not_found"


async def test_an_id_past_bigint_starts_nothing(api, database_url):
    anna = await api("anna@demo.test")
    start = {"specialty": "cardiology", "form": "chat", "preferred_doctor_id": 2**63}
    body = await anna.call("POST", "/api/consultations", start, expect=400)
    assert body["error"]["code"] == "invalid_payload"
    assert await count(database_url, t.consultations) == 0


@pytest.mark.parametrize("after", [str(MAX_ID + 1), "9" * 100, "²", "-1", " 1"])
async def test_after_is_a_bounded_sequence_number(api, after):
    anna = await api("anna@demo.test")
    ticket = await anna.call(
        "POST", "/api/consultations", {"specialty": "cardiology", "form": "chat"}, expect=201
    )
    path = f"/api/consultations/{ticket['consultation']['id']}/messages"
    body = await anna.call("GET", f"{path}?after={quote(after)}", expect=400)
    assert body["error"]["code"] == "invalid_after"
    assert (await anna.call("GET", f"{path}?after={MAX_ID}"))["messages"] == []


async def test_every_event_that_names_a_consultation_refuses_a_bad_id(api, sockets, server):
    events = server.app[SIO].namespace_handlers["/"].events
    id_events = sorted(set(events) - EVENTS_WITHOUT_IDS)
    assert len(id_events) >= 12
    anna = await api("anna@demo.test")
    ws = await sockets(anna.token)
    for event in id_events:
        for bad in [*BAD_BODY_IDS, None]:
            ack = await ws.emit(event, {"consultation_id": bad})
            assert ack["ok"] is False, (event, bad, ack)
            assert ack["error"]["code"] == "invalid_payload", (event, bad, ack)
            problems = {p["field"] for p in ack["error"]["details"]["problems"]}
            assert "consultation_id" in problems, (event, bad, ack)


async def test_a_number_too_long_to_parse_gets_an_ack(api, sockets, server):
    # engine.io's parser dropped a packet with a 101-digit number: no ack at all.
    anna = await api("anna@demo.test")
    ws = await sockets(anna.token)
    for event in sorted(server.app[SIO].namespace_handlers["/"].events):
        ack = await ws.emit(event, {"consultation_id": 10**100})
        assert ack["ok"] is False and ack["error"]["code"] == "malformed_json", (event, ack)
    ack = await ws.emit("queue:ticket", {})
    assert ack["ok"] is True  # the socket goes on


def _nested(depth: int) -> Any:
    value: Any = {}
    for _ in range(depth - 1):
        value = [value]
    return value


async def test_deep_json_is_refused_without_a_session(base_url):
    async with aiohttp.ClientSession() as http:
        for raw in (b"[" * 100_000, b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000):
            async with http.post(
                base_url + "/api/login", data=raw, headers={"Content-Type": "application/json"}
            ) as response:
                assert response.status == 400
                assert (await response.json())["error"]["code"] == "malformed_json"


async def test_the_depth_limit_is_exact(api):
    anna = await api("anna@demo.test")
    at_limit = {"specialty": "cardiology", "form": "chat", "language": _nested(MAX_DEPTH - 1)}
    body = await anna.call("POST", "/api/consultations", at_limit, expect=400)
    assert body["error"]["code"] == "invalid_payload"  # parsed; language is not a string
    too_deep = {**at_limit, "language": _nested(MAX_DEPTH)}
    body = await anna.call("POST", "/api/consultations", too_deep, expect=400)
    assert body["error"]["code"] == "malformed_json"
    # Brackets inside strings are text, not nesting.
    text = {"specialty": "cardiology", "form": "chat", "language": "[" * 5000}
    body = await anna.call("POST", "/api/consultations", text, expect=400)
    assert body["error"]["code"] == "invalid_payload"


async def test_deep_socket_payloads_get_malformed_json(api, sockets, server, database_url):
    anna = await api("anna@demo.test")
    ws = await sockets(anna.token)
    for event in sorted(server.app[SIO].namespace_handlers["/"].events):
        for depth in (MAX_DEPTH, 200):
            ack = await ws.emit(event, {"consultation_id": 1, "deep": _nested(depth)})
            assert ack["ok"] is False and ack["error"]["code"] == "malformed_json", (event, ack)
    assert await count(database_url, t.doctor_presence) == 0
    ack = await ws.emit("chat:send", {"consultation_id": 1, "client_id": "x", "body": "[" * 999})
    assert ack["error"]["code"] != "malformed_json"


async def test_numbers_too_long_to_parse_are_malformed_json(api, base_url):
    anna = await api("anna@demo.test")
    headers = {"Authorization": f"Bearer {anna.token}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession(headers=headers) as http:
        for digits in (101, 5000):
            raw = b'{"slot_id": ' + b"9" * digits + b"}"
            async with http.post(base_url + "/api/bookings", data=raw) as response:
                assert response.status == 400
                error = (await response.json())["error"]
                assert error["code"] == "malformed_json", error
                assert "sys." not in error["message"]  # no Python advice to the client
