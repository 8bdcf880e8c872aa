"""The patient's timeline over real HTTP, on each backend: after a visit with everything (a
shared document, a recording, the outcome with a cancelled prescription, a renewal, a
follow-up, a rating) and a booked visit, every kind is listed with its fields, newest first;
filters by kind and date, and bad filters refused with their codes; a walk with the cursor
through a long history with many equal timestamps has no gap and no repeat; a page runs the
same statements for 5 consultations as for 500; a doctor of the patient's reads it (without
ratings, with the documents they may open), anyone else gets 404; every read is audited."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta, timezone
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestServer

from consult.app import create_app
from consult.clock import ManualClock
from consult.domain import Actor, Identity, Role
from consult.http.routing import SERVICES
from consult.storage import tables as t
from consult.storage.timing import statement_name
from consult.timeline.filters import Filters
from consult.timeline.registry import NAMES
from tests.integration.conftest import settings_for
from tests.integration.test_booking import add_slot
from tests.integration.test_fhir import visit_with_outcome
from tests.integration.test_followups import answer
from tests.integration.test_paging import house_and_anna
from tests.support import ApiClient, execute, pdf, rows
from tests.timeline_history import KINDS_PER_CONSULTATION, seed_history

ME = "/api/patients/me/timeline"
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
_A = t.audit_log.c


@pytest.fixture
async def server(
    database_url: str, clock: ManualClock, aiohttp_server: Any, tmp_path: Any
) -> TestServer:
    """The walks read many small pages at once: more than the clinical reads' burst (50)."""
    settings = settings_for(database_url, tmp_path, read_burst=10_000)
    return await aiohttp_server(create_app(settings, clock=clock))


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def walk(client: ApiClient, path: str, query: str = "", limit: int = 100) -> list[Any]:
    """Every item of the timeline, page after page through the cursor."""
    items: list[Any] = []
    cursor: str | None = None
    for _ in range(1000):
        after = f"&cursor={cursor}" if cursor else ""
        page = await client.call("GET", f"{path}?limit={limit}{query}{after}")
        assert len(page["items"]) <= limit
        items += page["items"]
        cursor = page["next"]
        if cursor is None:
            return items
    raise AssertionError(f"{path}: the cursor never ended")


def key(item: dict[str, Any]) -> tuple[str, int]:
    return item["kind"], item["id"]


def in_order(items: list[dict[str, Any]]) -> bool:
    """Newest first, then the kinds' order, then the newest id first."""
    order = [
        (-datetime.fromisoformat(i["occurred_at"]).timestamp(), NAMES.index(i["kind"]), -i["id"])
        for i in items
    ]
    return order == sorted(order)


async def a_full_visit(api, sockets, clock, database_url) -> dict[str, Any]:
    """Anna's visit with Dr House and everything after it, each step a minute after the last:
    the visit and its outcome (a PDF shared, two prescriptions with the antibiotic cancelled, a
    referral, sick leave, the aspirin renewed), a recording of its call, a follow-up answered,
    a rating, and a visit booked for the day after tomorrow."""
    anna, house, out = await visit_with_outcome(api, sockets, clock)
    cid = out["consultation_id"]
    visit_at = clock.now()
    clock.advance(60)
    await execute(
        database_url,
        t.recordings.insert().values(
            consultation_id=cid,
            stored_name="timeline-recording",
            status="ready",
            started_at=visit_at + timedelta(seconds=30),
            ended_at=visit_at + timedelta(seconds=50),
            size=1234,
            sha256="0" * 64,
        ),
    )
    question = {"question": "May I go for a walk?", "client_id": "q-1"}
    asked = await anna.call("POST", f"/api/consultations/{cid}/follow-ups", question, expect=201)
    clock.advance(60)
    await answer(house, asked["id"], "Yes, a short one.")
    await anna.call(
        "PUT", f"/api/consultations/{cid}/rating", {"score": 5, "comment": "Kind."}, expect=201
    )
    slot_at = clock.now().replace(microsecond=0) + timedelta(days=2)
    slot = await add_slot(database_url, "dr.grey@demo.test", "internal-medicine", slot_at)
    booking = await anna.call("POST", "/api/bookings", {"slot_id": slot}, expect=201)
    return {
        "anna": anna,
        "house": house,
        "out": out,
        "cid": cid,
        "visit_at": visit_at,
        "asked": asked,
        "booking": booking,
    }


async def test_every_kind_is_listed_with_its_fields_newest_first(api, sockets, clock, database_url):
    visit = await a_full_visit(api, sockets, clock, database_url)
    anna, house, out, cid = visit["anna"], visit["house"], visit["out"], visit["cid"]
    page = await anna.call("GET", ME)
    assert page["patient"] == {"id": anna.user["id"], "name": anna.user["name"]}
    assert page["next"] is None
    items = page["items"]
    assert in_order(items)
    by_kind: dict[str, list[Any]] = {}
    for item in items:
        by_kind.setdefault(item["kind"], []).append(item)
    assert set(by_kind) == set(NAMES)

    # The booked visit (the day after tomorrow) first; the rating and follow-up after the visit.
    assert [i["kind"] for i in items[:3]] == ["booking", "rating", "follow_up"]
    (booking,) = by_kind["booking"]
    assert booking["booking"]["id"] == visit["booking"]["id"]
    assert booking["occurred_at"] == booking["booking"]["slot"]["starts_at"]
    assert booking["booking"]["slot"]["doctor"]["name"] == "Dr Meredith Grey"

    (consultation,) = by_kind["consultation"]
    assert consultation["id"] == consultation["consultation_id"] == cid
    assert consultation["consultation"]["doctor"]["name"] == "Dr Gregory House"
    assert consultation["consultation"]["status"] == "ended"
    assert [f["form"] for f in consultation["forms"]] == ["chat"]
    link = consultation["transcript"]
    assert link["url"] == f"/api/patients/{anna.user['id']}/record/{cid}/messages"
    transcript = await anna.call("GET", link["url"])
    assert len(transcript["messages"]) == link["messages"] >= 1  # the shared document's message
    assert "transcript" not in consultation["consultation"]

    (document,) = by_kind["document"]
    assert document["document"]["filename"] == "ecg.pdf" and document["shared_into"] == [cid]
    (recording,) = by_kind["recording"]
    assert recording["recording"]["url"] == f"/api/consultations/{cid}/recordings/{recording['id']}"
    assert recording["consultation_id"] == cid
    (advice,) = by_kind["recommendation"]
    assert advice["recommendation"]["text"].startswith("Rest, fluids")
    assert advice["consultation_id"] == cid

    renewed, first = by_kind["prescription"]  # the same moment: the newest id first
    assert first["package"]["key"] == out["packages"][0]["key"]
    assert [p["status"] for p in first["package"]["prescriptions"]] == ["active", "cancelled"]
    assert renewed["package"]["renewal_of"] == first["package"]["prescriptions"][0]["id"]
    assert renewed["consultation_id"] == cid
    (referral,) = by_kind["referral"]
    assert referral["referral"]["key"] == out["referrals"][0]["key"]
    assert referral["referral"]["diagnosis"]["code"] == "I10"
    (leave,) = by_kind["sick_leave"]
    assert leave["sick_leave"]["days"] == 6
    (renewal,) = by_kind["renewal"]
    assert renewal["renewal"]["status"] == "approved"
    assert renewal["renewal"]["package"]["id"] == renewed["package"]["id"]
    (follow_up,) = by_kind["follow_up"]
    assert follow_up["follow_up"]["answer"] == "Yes, a short one."
    assert follow_up["occurred_at"] == follow_up["follow_up"]["asked_at"]
    (rating,) = by_kind["rating"]
    assert (rating["rating"]["score"], rating["rating"]["comment"]) == (5, "Kind.")

    # What happened in the visit's one moment comes in the kinds' order.
    moment = [i["kind"] for i in items if i["occurred_at"] == iso(visit["visit_at"])]
    assert moment == [
        "consultation",
        "document",
        "recommendation",
        "prescription",
        "prescription",
        "referral",
        "sick_leave",
        "renewal",
    ]

    # Dr House, who consulted her, sees the same but her ratings, also when he asks for them.
    his = await house.call("GET", f"/api/patients/{anna.user['id']}/timeline")
    assert [key(i) for i in his["items"]] == [key(i) for i in items if i["kind"] != "rating"]
    only = await house.call("GET", f"/api/patients/{anna.user['id']}/timeline?kind=rating")
    assert only["items"] == [] and only["next"] is None

    # A document uploaded since, shared into nothing: hers, not his (he no longer consults her).
    form = aiohttp.FormData()
    form.add_field("description", "Later scan")
    form.add_field("file", pdf(), filename="later.pdf", content_type="application/octet-stream")
    later = await anna.call("POST", "/api/documents", data=form, expect=201)
    mine = await anna.call("GET", f"{ME}?kind=document")
    assert [i["id"] for i in mine["items"]] == [later["id"], document["id"]]
    his = await house.call("GET", f"/api/patients/{anna.user['id']}/timeline?kind=document")
    assert [i["id"] for i in his["items"]] == [document["id"]]

    reads = await rows(database_url, t.audit_log, _A.action == "record.timeline.read")
    assert [(r.actor_id, r.patient_id, r.allowed, r.detail) for r in reads] == [
        (anna.user["id"], anna.user["id"], True, None),
        (house.user["id"], anna.user["id"], True, None),
        (house.user["id"], anna.user["id"], True, "kind=rating"),
        (anna.user["id"], anna.user["id"], True, "kind=document"),
        (house.user["id"], anna.user["id"], True, "kind=document"),
    ]


async def test_filters_by_kind_and_date_and_bad_filters_are_refused(
    api, sockets, clock, database_url
):
    visit = await a_full_visit(api, sockets, clock, database_url)
    anna = visit["anna"]
    everything = await walk(anna, ME)

    def expected(
        kinds: set[str], since: datetime | None = None, until: datetime | None = None
    ) -> list[Any]:
        def keep(i: dict[str, Any]) -> bool:
            at = datetime.fromisoformat(i["occurred_at"])
            return (
                i["kind"] in kinds
                and (since is None or at >= since)
                and (until is None or at < until)
            )

        return [key(i) for i in everything if keep(i)]

    for query in (
        "kind=prescription",
        "kind=prescription,referral",
        "kind=referral&kind=prescription",
        "kind=prescription,prescription",
    ):
        kinds = set(query.replace("kind=", "").replace("&", ",").split(","))
        got = await walk(anna, ME, "&" + query, limit=1)
        assert [key(i) for i in got] == expected(kinds), query
    prescriptions = await anna.call("GET", f"{ME}?kind=prescription")
    statuses = [p["status"] for i in prescriptions["items"] for p in i["package"]["prescriptions"]]
    assert statuses == ["active", "active", "cancelled"]

    visit_at = visit["visit_at"]
    day = visit_at.date()
    next_day = datetime.combine(day + timedelta(days=1), time(), UTC)
    warsaw_summer = timezone(timedelta(hours=2))
    cases = [
        # A moment with its offset: from is in, to is out.
        (f"from={quote(iso(visit_at + MINUTE))}", visit_at + MINUTE, None),
        (f"to={quote(iso(visit_at + MINUTE / 2))}", None, visit_at + MINUTE / 2),
        (
            f"from={quote((visit_at + HOUR).astimezone(warsaw_summer).isoformat())}",
            visit_at + HOUR,
            None,
        ),
        # Days (UTC): from is the day's start, to takes the whole day in.
        (f"to={day.isoformat()}", None, next_day),
        (f"from={(day + timedelta(days=1)).isoformat()}", next_day, None),
    ]
    for query, since, until in cases:
        got = await walk(anna, ME, "&" + query, limit=3)
        assert [key(i) for i in got] == expected(set(NAMES), since, until), query
        assert got, query
    both = f"kind=consultation,booking&from={day}&to={day + timedelta(days=1)}"
    got = await walk(anna, ME, "&" + both)
    assert [key(i) for i in got] == [("consultation", visit["cid"])]  # the booking is later

    reads_before = len(await rows(database_url, t.audit_log, _A.action == "record.timeline.read"))
    mine = _A.actor_id == anna.user["id"]
    refused_before = len(await rows(database_url, t.audit_log, _A.action == "refused", mine))
    refusals = [
        ("kind=prescriptions", "invalid_kind"),
        ("kind=", "invalid_kind"),
        ("kind=prescription,", "invalid_kind"),
        ("from=yesterday", "invalid_from"),
        ("from=2026-02-30", "invalid_from"),
        ("from=2026-12-01T10:00:00", "invalid_from"),  # no offset
        ("from=2026-12-01&from=2026-12-02", "invalid_from"),
        ("to=2026-13-01", "invalid_to"),
        ("to=9999-12-31", "invalid_to"),
        ("to=2026-12-01T24:00Z", "invalid_to"),
        ("from=2026-12-02&to=2026-12-01", "invalid_range"),
        ("from=2026-12-01T10:00Z&to=2026-12-01T10:00Z", "invalid_range"),
        ("cursor=abc", "invalid_cursor"),
        ("cursor=" + "A" * 201, "invalid_cursor"),
        ("cursor=%2Fetc", "invalid_cursor"),
        ("limit=0", "invalid_limit"),
        ("limit=101", "invalid_limit"),
        ("limit=%C2%B2", "invalid_limit"),
        ("before=3", "invalid_query"),
    ]
    for query, code in refusals:
        body = await anna.call("GET", f"{ME}?{query}", expect=400)
        assert body["error"]["code"] == code, query
    # Refused before anything is read: no read audited (each refusal is, as a refusal).
    reads = await rows(database_url, t.audit_log, _A.action == "record.timeline.read")
    assert len(reads) == reads_before
    refused = await rows(database_url, t.audit_log, _A.action == "refused", mine)
    assert len(refused) - refused_before == len(refusals)


async def test_the_cursor_walks_a_long_history_without_gap_or_repeat(
    api, sockets, clock, database_url
):
    """Two consultations at each moment, each with everything at its moment: ties in time
    within a kind and across kinds. Every page size walks to the same list, in order."""
    house, _, anna, _ = await house_and_anna(api, sockets)
    grey = await api("dr.grey@demo.test")
    pid = anna.user["id"]
    doctors = (house.user["id"], grey.user["id"])
    await seed_history(database_url, pid, doctors, 8, clock.now() - timedelta(days=1))
    whole = await walk(anna, ME, limit=100)
    assert len(whole) == 8 * KINDS_PER_CONSULTATION + 1  # and today's consultation
    assert in_order(whole)
    assert len({key(i) for i in whole}) == len(whole)
    for limit in (5, 12):
        assert [key(i) for i in await walk(anna, ME, limit=limit)] == [key(i) for i in whole], limit
    doctor_path = f"/api/patients/{pid}/timeline"
    his = [key(i) for i in await walk(house, doctor_path, limit=13)]
    assert his == [key(i) for i in whole if i["kind"] != "rating"]
    filtered = await walk(anna, ME, "&kind=recommendation,rating,booking", limit=4)
    assert [key(i) for i in filtered] == [
        key(i) for i in whole if i["kind"] in {"recommendation", "rating", "booking"}
    ]

    # A cursor is the position after an item, whatever the filters that gave it.
    first = await anna.call("GET", f"{ME}?limit=5")
    rest = await anna.call("GET", f"{ME}?limit=5&kind=referral&cursor={first['next']}")
    after_five = [i for i in whole[5:] if i["kind"] == "referral"][:5]
    assert [key(i) for i in rest["items"]] == [key(i) for i in after_five]


async def page_statements(server: Any, actor: Actor, patient_id: int) -> list[str]:
    """The SQL statements one timeline page of 100 runs, as SQLAlchemy's before_cursor_execute
    sees them (this task's only: the server's background work runs its own)."""
    services = server.app[SERVICES]
    me = asyncio.current_task()
    seen: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if asyncio.current_task() is me:
            seen.append(statement_name(statement))

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", before)
    try:
        page = await services.timeline.page(actor, patient_id, Filters(kinds=NAMES, limit=100))
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", before)
    kinds = {i.kind for i in page.items}
    assert kinds == set(NAMES) - (set() if actor.is_patient else {"rating"}), kinds
    return seen


async def test_a_page_runs_the_same_statements_for_5_and_for_500_consultations(
    api, sockets, server, clock, database_url
):
    house, _, anna, _ = await house_and_anna(api, sockets)
    grey = await api("dr.grey@demo.test")
    pid, doctors = anna.user["id"], (house.user["id"], grey.user["id"])
    patient = Actor(pid, Role.PATIENT, Identity.VERIFIED, "Anna")
    doctor = Actor(doctors[0], Role.DOCTOR, Identity.VERIFIED, "House")
    await seed_history(database_url, pid, doctors, 4, clock.now() - timedelta(hours=1))
    few = [await page_statements(server, who, pid) for who in (patient, doctor)]
    await seed_history(database_url, pid, doctors, 495, clock.now() - timedelta(days=2))
    many = [await page_statements(server, who, pid) for who in (patient, doctor)]
    assert many == few
    # The patient and the reader check, the page, each kind's items, the audit row.
    assert len(few[0]) <= 30, few[0]


async def test_strangers_get_nothing_and_every_read_is_audited(api, sockets, clock, database_url):
    house, house_ws, anna, cid = await house_and_anna(api, sockets)
    aid = anna.user["id"]
    path = f"/api/patients/{aid}/timeline"
    # While consulting her, and after.
    during = await house.call("GET", path)
    assert [i["kind"] for i in during["items"]] == ["consultation"]
    assert during["items"][0]["consultation"]["status"] == "active"
    await house.call("POST", f"/api/consultations/{cid}/end", {})
    assert (await house.call("GET", path))["items"][0]["consultation"]["status"] == "ended"
    assert (await anna.call("GET", path))["items"] == (await anna.call("GET", ME))["items"]

    # Dr Grey is offered Piotr's ticket, and never took Anna: neither is his to read.
    assert (await house_ws.emit("presence:offline", {}))["ok"]
    grey = await api("dr.grey@demo.test")
    grey_ws = await sockets(grey.token)
    assert (
        await grey_ws.emit(
            "presence:online", {"specialties": ["internal-medicine"], "forms": ["chat"]}
        )
    )["ok"]
    piotr = await api("piotr@demo.test")
    ticket = await piotr.call(
        "POST", "/api/consultations", {"specialty": "internal-medicine", "form": "chat"}, expect=201
    )
    offer = await grey_ws.next("queue:offer")
    assert offer["consultation"]["id"] == ticket["consultation"]["id"]
    pid = piotr.user["id"]
    scheduler = await api("scheduler@demo.test")
    refused = [
        (grey, path),
        (grey, f"/api/patients/{pid}/timeline"),
        (grey, ME),
        (scheduler, path),
        (scheduler, ME),
        (piotr, path),
        (anna, f"/api/patients/{pid}/timeline"),
        (anna, "/api/patients/999999999/timeline"),
    ]
    for client, where in refused:
        body = await client.call("GET", where, expect=404)
        assert body["error"]["code"] == "patient_not_found", (client.user["email"], where)
    bad = await anna.call("GET", "/api/patients/0/timeline", expect=400)
    assert bad["error"]["code"] == "invalid_id"

    reads = await rows(database_url, t.audit_log, _A.action == "record.timeline.read")
    assert [(r.actor_id, r.patient_id, r.allowed) for r in reads] == [
        (house.user["id"], aid, True),
        (house.user["id"], aid, True),
        (aid, aid, True),
        (aid, aid, True),
        (grey.user["id"], aid, False),
        (grey.user["id"], pid, False),
        (grey.user["id"], grey.user["id"], False),
        (scheduler.user["id"], aid, False),
        (scheduler.user["id"], scheduler.user["id"], False),
        (pid, aid, False),
        (aid, pid, False),
        (aid, 999999999, False),
    ]
