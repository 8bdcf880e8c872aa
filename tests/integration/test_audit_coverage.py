"""Every refusal and every read of clinical data leaves an audit row (docs/architecture.md,
Audit). The test walks the route registry (every API's routes, as installed in the app) and
the Socket.IO event table (``ConsultNamespace.events``), so a route or event added later is
covered, or named here, or the test fails."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from consult.app import APIS, SIO
from consult.documents.rules import MAX_FILES, MAX_SIZE
from consult.storage import tables as t
from tests.integration.test_booking import add_slot
from tests.integration.test_queue import IM
from tests.support import ApiClient, png, start_and_accept

_A = t.audit_log.c
NOBODY = 999_999_999  # an id of nothing: the path's thing is not found, or not the caller's
ROLES = ("anna@demo.test", "basia@demo.test", "dr.house@demo.test", "scheduler@demo.test")

# Routes that a logged-in user is never refused (nothing to refuse: their own account).
NEVER_REFUSED = {
    ("GET", "/api/me"),
    ("POST", "/api/logout"),
    ("GET", "/api/specialties"),
    ("GET", "/api/consultations/open"),  # one's own open consultations, maybe none
    ("GET", "/api/patients/me/pesel"),  # one's own PESEL, maybe none
    ("GET", "/api/renewals"),  # one's own renewal requests (a scheduler's: the open ones)
    ("GET", "/api/me/sessions"),  # one's own sessions
    # Ends the caller's every session (the walk would go on logged out): never refused, and
    # audited as session.logout_all (tests/integration/test_passwords.py).
    ("POST", "/api/me/sessions/logout-all"),
}
# Events a connected user is never refused: one's own ticket (none when not queued).
NEVER_REFUSED_EVENTS = {"queue:ticket"}


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url)
    yield engine
    await engine.dispose()


async def audit_rows(engine: AsyncEngine, user_id: int, *where: Any) -> list[Any]:
    async with engine.connect() as conn:
        found = await conn.execute(
            sa.select(t.audit_log).where(_A.actor_id == user_id, *where).order_by(_A.id)
        )
        return list(found)


async def request(client: ApiClient, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {client.token}"}
    async with client.session.request(
        method, client.base_url + path, headers=headers, **kwargs
    ) as response:
        body = await response.read()
        return response.status, body


def registry() -> list[tuple[str, str, bool]]:
    return [(r.method, r.path, r.auth) for api in APIS for r in api.routes]


async def test_every_route_refused_to_a_user_leaves_an_audit_row(api, engine):
    """Each authenticated route, called by each role with ids of nothing and a junk body:
    whatever it refuses (400, 403, 404, 409, 413, 415, 429) leaves a refused row for the
    caller; every route refuses someone, but for NEVER_REFUSED."""
    clients = {email: await api(email) for email in ROLES}
    refused_routes: set[tuple[str, str]] = set()
    for method, path, auth in registry():
        if not auth or (method, path) in NEVER_REFUSED:
            continue
        concrete = re.sub(r"\{[^}]+\}", str(NOBODY), path)
        for email, client in clients.items():
            uid = client.user["id"]
            before = len(await audit_rows(engine, uid, sa.not_(_A.allowed)))
            kwargs: dict[str, Any] = {}
            if method != "GET":
                kwargs["json"] = {"unexpected": True}
            status, body = await request(client, method, concrete, **kwargs)
            assert status < 500, (method, path, email, status, body)
            if status < 400:
                continue
            refused_routes.add((method, path))
            after = await audit_rows(engine, uid, sa.not_(_A.allowed))
            assert len(after) > before, f"{method} {path} refused {email} ({status}) unaudited"
    walked = {(m, p) for m, p, auth in registry() if auth} - NEVER_REFUSED
    assert refused_routes == walked


async def test_every_socket_event_refused_leaves_an_audit_row(api, sockets, server, engine):
    """Each event of the namespace's table, emitted by each role with a consultation of
    nobody's and junk: every refusal leaves a refused row for the caller, and every event
    refuses someone."""
    namespace = server.app[SIO].namespace_handlers["/"]
    events = sorted(namespace.events)
    refused_events: set[str] = set()
    for email in ROLES:
        client = await api(email)
        ws = await sockets(client.token)
        for event in events:
            for payload in ({"consultation_id": NOBODY, "junk": True}, "junk"):
                before = len(await audit_rows(engine, client.user["id"], sa.not_(_A.allowed)))
                answer = await ws.emit(event, payload)
                if answer["ok"]:
                    continue
                assert answer["error"]["code"] != "internal", (event, email, answer)
                refused_events.add(event)
                after = await audit_rows(engine, client.user["id"], sa.not_(_A.allowed))
                assert len(after) > before, f"{event} refused {email} ({answer}) unaudited"
    assert refused_events == set(events) - NEVER_REFUSED_EVENTS


async def test_call_offer_from_a_stranger_is_refused_as_such_whatever_the_sdp(api, sockets, engine):
    """A non-participant learns nothing from ``call:offer``, not even that the SDP is junk:
    refused ``not_participant`` and audited."""
    house = await api("dr.house@demo.test")
    house_ws = await sockets(house.token)
    await house_ws.emit("presence:online", IM)
    anna = await api("anna@demo.test")
    cid = await start_and_accept(anna, house_ws, "internal-medicine")
    piotr = await api("piotr@demo.test")
    piotr_ws = await sockets(piotr.token)
    answer = await piotr_ws.emit(
        "call:offer", {"consultation_id": cid, "sdp": "junk", "type": "offer"}
    )
    assert answer["error"]["code"] == "not_participant"
    denied = await audit_rows(engine, piotr.user["id"], sa.not_(_A.allowed))
    assert [(r.action, r.consultation_id) for r in denied] == [("call.join", cid)]


# GET routes by what they show. A clinical read is audited (allowed) with the action named;
# the others show the caller's own account, public lists or queue figures.
NOT_CLINICAL = {
    "/api/me",
    "/api/session",  # who is logged in, if anyone
    "/api/specialties",
    "/api/slots",
    "/api/doctors",
    "/api/doctors/{doctor_id}/schedule",
    "/api/queue/ticket",  # the patient's own place and wait
    "/api/openapi.json",
    "/healthz",
    "/metrics",  # counts only (a scheduler's request reads the overview: audited)
    "/api/products",  # the catalogue
    "/api/products/{product_id}",
    "/api/icd10",  # the classification
    "/api/patients/me/pesel",  # one's own identifier
    "/api/scheduler/ratings",  # the ratings' counts and averages, per specialty and doctor
    "/api/me/sessions",  # one's own sessions
    "/api/me/identity",  # one's own identity level and request
}
# Read only after a real call: its audit row is checked where recordings are made.
READ_ELSEWHERE = {
    "/api/consultations/{consultation_id}/recordings/{recording_id}",
    # After Issue and end: tests/integration/test_outcome.py checks its outcome.read row.
    "/api/consultations/{consultation_id}/outcome",
    "/api/renewals",  # a request needs an issued prescription: test_renewals.py
    # An issued outcome: test_printouts_http.py checks their allowed and denied rows.
    "/api/packages/{package_id}/printout.pdf",
    "/api/referrals/{referral_id}/printout.pdf",
    "/api/sick-leaves/{sick_leave_id}/printout.pdf",
    # An issued referral: test_referral_bookings.py checks its referral.slots.read row.
    "/api/referrals/{referral_id}/slots",
    # A rating needs a finished consultation: test_ratings.py checks their rating.read rows.
    "/api/patients/me/ratings",
    "/api/doctors/me/ratings",
    # A report's PDF needs one posted: test_results.py checks its result.read rows.
    "/api/results/{result_id}/report.pdf",
    # A pending request is read with its identity.requests.read rows in test_identity.py.
    "/api/identity/requests",
}


async def test_every_clinical_read_leaves_an_audit_row(api, sockets, engine, database_url):
    """Each GET route that shows clinical data, read by someone allowed to: an allowed row with
    the read's action for the caller. Every GET route is classified here."""
    house = await api("dr.house@demo.test")
    house_ws = await sockets(house.token)
    await house_ws.emit("presence:online", IM)
    anna = await api("anna@demo.test")
    aid = anna.user["id"]
    cid = await start_and_accept(anna, house_ws, "internal-medicine")
    form = aiohttp.FormData()
    form.add_field("description", "Rash, day 3")
    form.add_field("file", png(), filename="rash.png", content_type="application/octet-stream")
    doc = (await anna.call("POST", "/api/documents", data=form, expect=201))["id"]
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    slot = await add_slot(database_url, "dr.house@demo.test", "internal-medicine", start)
    booking = (await anna.call("POST", "/api/bookings", {"slot_id": slot}, expect=201))["id"]
    piotr = await api("piotr@demo.test")
    await piotr.call(
        "POST",
        "/api/consultations",
        {"specialty": "internal-medicine", "form": "chat"},
        expect=201,
    )
    scheduler = await api("scheduler@demo.test")

    reads: dict[str, tuple[ApiClient, str, str]] = {
        "/api/consultations/{consultation_id}": (
            house,
            f"/api/consultations/{cid}",
            "consultation.read",
        ),
        "/api/consultations/open": (house, "/api/consultations/open", "consultation.read"),
        "/api/consultations/{consultation_id}/messages": (
            house,
            f"/api/consultations/{cid}/messages",
            "chat.read",
        ),
        "/api/patients/me/record": (anna, "/api/patients/me/record", "record.read"),
        "/api/patients/{patient_id}/record": (house, f"/api/patients/{aid}/record", "record.read"),
        "/api/patients/{patient_id}/record/{consultation_id}/messages": (
            house,
            f"/api/patients/{aid}/record/{cid}/messages",
            "record.read",
        ),
        "/api/documents": (anna, "/api/documents", "document.list"),
        "/api/patients/{patient_id}/documents": (
            house,
            f"/api/patients/{aid}/documents",
            "document.list",
        ),
        "/api/documents/{document_id}/content": (
            house,
            f"/api/documents/{doc}/content",
            "document.read",
        ),
        "/api/bookings": (house, "/api/bookings", "booking.read"),
        "/api/bookings/{booking_id}.ics": (house, f"/api/bookings/{booking}.ics", "booking.read"),
        "/api/scheduler/queues": (scheduler, "/api/scheduler/queues", "queue.overview.read"),
        "/api/consultations/{consultation_id}/outcome/draft": (
            house,
            f"/api/consultations/{cid}/outcome/draft",
            "outcome.draft.read",
        ),
        "/api/patients/me/issued": (anna, "/api/patients/me/issued", "outcome.documents.read"),
        "/api/patients/{patient_id}/issued": (
            house,
            f"/api/patients/{aid}/issued",
            "outcome.documents.read",
        ),
        "/api/patients/me/fhir": (anna, "/api/patients/me/fhir", "record.fhir.read"),
        "/api/patients/{patient_id}/fhir": (house, f"/api/patients/{aid}/fhir", "record.fhir.read"),
        "/api/patients/me/fhir/MedicationRequest": (
            anna,
            "/api/patients/me/fhir/MedicationRequest?status=active",
            "record.fhir.read",
        ),
        "/api/patients/{patient_id}/fhir/MedicationRequest": (
            house,
            f"/api/patients/{aid}/fhir/MedicationRequest",
            "record.fhir.read",
        ),
        # Who saw her data: audited, never listed (test_access_log.py).
        "/api/patients/me/access-log": (anna, "/api/patients/me/access-log", "access_log.read"),
        "/api/patients/me/archive": (anna, "/api/patients/me/archive", "record.archive.read"),
        "/api/patients/me/results": (anna, "/api/patients/me/results", "result.read"),
        "/api/patients/{patient_id}/results": (
            house,
            f"/api/patients/{aid}/results",
            "result.read",
        ),
        "/api/patients/me/results/history": (
            anna,
            "/api/patients/me/results/history?system=http://loinc.org&code=718-7",
            "result.read",
        ),
        "/api/patients/{patient_id}/results/history": (
            house,
            f"/api/patients/{aid}/results/history?system=http://loinc.org&code=718-7",
            "result.read",
        ),
        "/api/patients/me/timeline": (anna, "/api/patients/me/timeline", "record.timeline.read"),
        "/api/patients/{patient_id}/timeline": (
            house,
            f"/api/patients/{aid}/timeline",
            "record.timeline.read",
        ),
    }
    gets = {p for m, p, _ in registry() if m == "GET"}
    # The follow-ups read last: a question needs the consultation ended.
    assert gets == {*reads, "/api/follow-ups"} | NOT_CLINICAL | READ_ELSEWHERE

    for route, (client, path, action) in reads.items():
        uid = client.user["id"]
        before = len(await audit_rows(engine, uid, _A.allowed, _A.action == action))
        status, body = await request(client, "GET", path)
        assert status == 200, (route, status, body)
        after = await audit_rows(engine, uid, _A.allowed, _A.action == action)
        assert len(after) > before, f"GET {route} read by {client.user['email']} unaudited"
    await anna.call("POST", f"/api/consultations/{cid}/end", {})
    question = {"question": "Still itching?", "client_id": "fu-1"}
    await anna.call("POST", f"/api/consultations/{cid}/follow-ups", question, expect=201)
    for client in (anna, house):
        uid = client.user["id"]
        before = len(await audit_rows(engine, uid, _A.allowed, _A.action == "follow_up.read"))
        assert len((await client.call("GET", "/api/follow-ups"))["follow_ups"]) == 1
        after = await audit_rows(engine, uid, _A.allowed, _A.action == "follow_up.read")
        assert [r.patient_id for r in after[before:]] == [aid]
    # The scheduler's read names the waiting patient (piotr).
    overview = await audit_rows(engine, scheduler.user["id"], _A.action == "queue.overview.read")
    assert piotr.user["id"] in {r.patient_id for r in overview}


async def test_every_refused_upload_leaves_an_audit_row(api, engine):
    """415, 413, 400, 429 and 403 uploads: each leaves a ``refused`` row naming its code."""
    anna = await api("anna@demo.test")
    house = await api("dr.house@demo.test")

    async def upload(client: ApiClient, content: bytes, description: str | None) -> int:
        form = aiohttp.FormData()
        if description is not None:
            form.add_field("description", description)
        form.add_field("file", content, filename="f.png", content_type="application/octet-stream")
        status, _ = await request(client, "POST", "/api/documents", data=form)
        return status

    attempts = [
        (anna, b"MZ not a document", "exe", 415, "unsupported_file_type"),
        (anna, png() + b"\x00" * MAX_SIZE, "big", 413, "file_too_large"),
        (anna, png(), None, 400, "description_required"),
        (house, png(), "a doctor's", 403, "not_a_patient"),
        (anna, png(), "one too many", 429, "too_many_documents"),
    ]
    for client, content, description, status, code in attempts:
        if status == 429:
            for _ in range(MAX_FILES):
                assert await upload(anna, png(), "kept") == 201
        uid = client.user["id"]
        before = len(await audit_rows(engine, uid, sa.not_(_A.allowed)))
        assert await upload(client, content, description) == status, code
        new = (await audit_rows(engine, uid, sa.not_(_A.allowed)))[before:]
        assert [(r.action, r.detail) for r in new] == [
            ("refused", f"{status} {code}: POST /api/documents")
        ]


async def test_a_flood_of_rate_limited_events_is_audited_as_counted_rows(
    api, sockets, clock, engine
):
    """A 429 flood is not turned into one database write per refusal: one row per user and
    kind per 10 s, the next one counting those it stands for."""
    house = await api("dr.house@demo.test")
    house_ws = await sockets(house.token)
    await house_ws.emit("presence:online", IM)
    anna = await api("anna@demo.test")
    anna_ws = await sockets(anna.token)
    cid = await start_and_accept(anna, house_ws, "internal-medicine")

    async def send(n: int, tag: str) -> int:
        refused = 0
        for i in range(n):
            body = {"consultation_id": cid, "client_id": f"{tag}-{i}", "body": "hello"}
            answer = await anna_ws.emit("chat:send", body)
            refused += answer["ok"] is False and answer["error"]["code"] == "rate_limited"
        return refused

    first = await send(30, "a")  # the burst goes through, the rest is refused
    assert first >= 5
    rows_now = await audit_rows(engine, anna.user["id"], _A.action == "refused")
    assert [r.detail for r in rows_now] == ["rate_limited: chat:send"]
    clock.advance(11)
    assert await send(30, "b") >= 1
    rows_now = await audit_rows(engine, anna.user["id"], _A.action == "refused")
    assert [r.detail for r in rows_now] == [
        "rate_limited: chat:send",
        f"rate_limited: chat:send (and {first - 1} more like it before this one)",
    ]
