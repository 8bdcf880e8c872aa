"""Slots and bookings over real HTTP, on each backend: list, book, cancel, iCalendar, the
one-booking-per-slot guarantee under 100 concurrent attempts, the basic account's limit."""

from __future__ import annotations

import asyncio
import secrets
import statistics
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import aiohttp
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from consult.accounts.service import token_hash
from consult.clock import as_utc
from consult.http.routing import SERVICES
from consult.storage import tables as t
from tests import ics_reader
from tests.support import count

SLOTS = "/api/slots"
BOOKINGS = "/api/bookings"


async def query(database_url: str, statement: Any) -> list[Any]:
    engine = create_async_engine(database_url)
    async with engine.begin() as conn:
        result = await conn.execute(statement)
        rows = list(result) if result.returns_rows else []
    await engine.dispose()
    return rows


async def user_id(database_url: str, email: str) -> int:
    rows = await query(database_url, sa.select(t.users.c.id).where(t.users.c.email == email))
    return int(rows[0][0])


async def add_slot(
    database_url: str, doctor: str, specialty: str, starts_at: datetime, minutes: int = 20
) -> int:
    """A slot straight into the database (past ones cannot be made through the API)."""
    rows = await query(
        database_url,
        t.slots.insert()
        .values(
            doctor_id=await user_id(database_url, doctor),
            specialty_code=specialty,
            kind="stationary",
            starts_at=starts_at,
            ends_at=starts_at + timedelta(minutes=minutes),
            created_at=datetime.now(UTC),
        )
        .returning(t.slots.c.id),
    )
    return int(rows[0][0])


async def free(client: Any, specialty: str, **params: Any) -> list[dict[str, Any]]:
    qs = "&".join(f"{k}={v}" for k, v in {"specialty": specialty, **params}.items())
    return list((await client.call("GET", f"{SLOTS}?{qs}"))["slots"])


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_free_slots_soonest_first_and_flagged_for_coverage(api, clock):
    anna = await api("anna@demo.test")  # premium plan: everything covered
    slots = await free(anna, "cardiology", limit=10)
    assert len(slots) == 10
    starts = [instant(s["starts_at"]) for s in slots]
    assert starts == sorted(starts) and starts[0] > clock.now()
    assert all(s["covered"] is True and s["specialty"]["code"] == "cardiology" for s in slots)
    assert {s["doctor"]["name"] for s in await free(anna, "cardiology", limit=50)} >= {
        "Dr Adam Serce"
    }
    assert len(await free(anna, "cardiology")) == 5  # the default
    phone = await free(anna, "cardiology", kind="phone", limit=20)
    assert phone and all(s["kind"] == "phone" for s in phone)
    later = await free(anna, "cardiology", after=slots[4]["starts_at"].replace("+", "%2B"))
    assert instant(later[0]["starts_at"]) > starts[4]

    piotr = await api("piotr@demo.test")  # basic plan: no cardiology
    assert all(s["covered"] is False for s in await free(piotr, "cardiology"))
    scheduler = await api("scheduler@demo.test")
    assert all(s["covered"] is None for s in await free(scheduler, "cardiology"))

    for path, code in [
        (f"{SLOTS}?specialty=astrology", "unknown_specialty"),
        (SLOTS, "invalid_payload"),
        (f"{SLOTS}?specialty=cardiology&limit=0", "invalid_payload"),
        (f"{SLOTS}?specialty=cardiology&limit=51", "invalid_payload"),
        (f"{SLOTS}?specialty=cardiology&kind=teleport", "invalid_payload"),
        (f"{SLOTS}?specialty=cardiology&after=yesterday", "invalid_payload"),
        (f"{SLOTS}?specialty=cardiology&after=2026-01-01T10:00:00", "invalid_payload"),
    ]:
        assert (await anna.call("GET", path, expect=400))["error"]["code"] == code, path


async def test_book_list_cancel_and_the_slot_is_free_again(api, database_url):
    anna = await api("anna@demo.test")
    slot = (await free(anna, "dermatology"))[0]
    booking = await anna.call("POST", BOOKINGS, {"slot_id": slot["id"]}, expect=201)
    assert booking["status"] == "active" and booking["cancelled_at"] is None
    assert booking["slot"]["id"] == slot["id"] and booking["slot"]["starts_at"] == slot["starts_at"]
    assert booking["patient"]["name"] == "Anna Kowalska"
    assert slot["id"] not in [s["id"] for s in await free(anna, "dermatology", limit=50)]

    listed = (await anna.call("GET", BOOKINGS))["bookings"]
    assert [b["id"] for b in listed] == [booking["id"]]
    # The doctor sees the booking of their slot; other patients do not see it.
    doctor = await api("dr.skin@demo.test")
    assert [b["id"] for b in (await doctor.call("GET", BOOKINGS))["bookings"]] == [booking["id"]]
    assert (await (await api("piotr@demo.test")).call("GET", BOOKINGS))["bookings"] == []

    cancelled = await anna.call("POST", f"{BOOKINGS}/{booking['id']}/cancel", {})
    assert cancelled["status"] == "cancelled" and cancelled["cancelled_at"]
    assert (await free(anna, "dermatology"))[0]["id"] == slot["id"]
    again = await anna.call("POST", f"{BOOKINGS}/{booking['id']}/cancel", {}, expect=409)
    assert again["error"]["code"] == "booking_cancelled"

    # Someone else books the freed slot: one cancelled and one active booking for it.
    piotr = await api("piotr@demo.test")
    await piotr.call("POST", BOOKINGS, {"slot_id": slot["id"]}, expect=201)
    statuses = await query(
        database_url,
        sa.select(t.bookings.c.status)
        .where(t.bookings.c.slot_id == slot["id"])
        .order_by(t.bookings.c.id),
    )
    assert [s for (s,) in statuses] == ["cancelled", "active"]
    actions = await query(
        database_url,
        sa.select(t.audit_log.c.action, t.audit_log.c.allowed)
        # Reads (booking.read) are checked in test_audit_coverage.
        .where(t.audit_log.c.action.like("booking.%"), t.audit_log.c.action != "booking.read")
        .order_by(t.audit_log.c.id),
    )
    assert [tuple(a) for a in actions] == [
        ("booking.create", True),
        ("booking.cancel", True),
        ("booking.create", True),
    ]


async def test_a_repeated_booking_request_gives_the_same_booking(api, database_url):
    anna = await api("anna@demo.test")
    slot = (await free(anna, "paediatrics"))[0]
    # A double click: two requests at once, then a retry.
    first, second = await asyncio.gather(
        anna.call("POST", BOOKINGS, {"slot_id": slot["id"]}, expect=201),
        anna.call("POST", BOOKINGS, {"slot_id": slot["id"]}, expect=201),
    )
    retry = await anna.call("POST", BOOKINGS, {"slot_id": slot["id"]}, expect=201)
    assert first["id"] == second["id"] == retry["id"]
    assert await count(database_url, t.bookings) == 1
    assert await count(database_url, t.audit_log, t.audit_log.c.action == "booking.create") == 1


async def test_a_booking_downloads_as_icalendar(api, base_url):
    anna = await api("anna@demo.test")
    slot = (await free(anna, "psychiatry"))[0]
    booking = await anna.call("POST", BOOKINGS, {"slot_id": slot["id"]}, expect=201)
    url = f"{base_url}{BOOKINGS}/{booking['id']}.ics"
    headers = {"Authorization": f"Bearer {anna.token}"}
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers=headers) as response:
            assert response.status == 200
            assert response.content_type == "text/calendar"
            assert response.charset == "utf-8"
            assert response.headers["Content-Disposition"] == (
                f'attachment; filename="booking-{booking["id"]}.ics"'
            )
            text = (await response.read()).decode()
        vevent, vcalendar = ics_reader.parse(text)
        assert vcalendar["VERSION"] == "2.0"
        starts, ends = instant(slot["starts_at"]), instant(slot["ends_at"])
        assert vevent.decoded("DTSTART") == starts and vevent.decoded("DTEND") == ends
        assert f"DTSTART:{starts.astimezone(UTC):%Y%m%dT%H%M%SZ}" in text.split("\r\n")
        assert ends - starts == timedelta(minutes=30)
        assert vevent["UID"] == f"booking-{booking['id']}@consult"
        assert vevent["SUMMARY"] == "Psychiatry: Dr Jan Umysł"
        assert vevent["LOCATION"].startswith("Online")
        assert "Anna Kowalska" in vevent["DESCRIPTION"]
        assert vevent["STATUS"] == "CONFIRMED"

        await anna.call("POST", f"{BOOKINGS}/{booking['id']}/cancel", {})
        async with http.get(url, headers=headers) as response:
            vevent, _ = ics_reader.parse((await response.read()).decode())
        assert (
            vevent["STATUS"] == "CANCELLED" and vevent["UID"] == f"booking-{booking['id']}@consult"
        )


async def make_patients(database_url: str, n: int) -> list[str]:
    """``n`` verified premium patients with a session each (no password hashing: fast)."""
    now = datetime.now(UTC)
    emails = [f"patient{i}-{secrets.token_hex(3)}@load.test" for i in range(n)]
    engine = create_async_engine(database_url)
    async with engine.begin() as conn:
        await conn.execute(
            t.users.insert(),
            [
                {
                    "email": email,
                    "password_hash": "-",
                    "role": "patient",
                    "identity": "verified",
                    "name": f"Load Patient {i}",
                    "plan_code": "premium",
                    "created_at": now,
                    "email_confirmed_at": now,
                }
                for i, email in enumerate(emails)
            ],
        )
        rows = await conn.execute(sa.select(t.users.c.email, t.users.c.id))
        ids = {email: uid for email, uid in rows}
        tokens = [secrets.token_urlsafe(16) for _ in emails]
        await conn.execute(
            t.sessions.insert(),
            [
                {
                    "token_hash": token_hash(token),
                    "user_id": ids[email],
                    "created_at": now,
                    "expires_at": now + timedelta(hours=1),
                }
                for email, token in zip(emails, tokens, strict=True)
            ],
        )
    await engine.dispose()
    return tokens


async def test_a_hundred_concurrent_attempts_book_a_slot_once(api, base_url, database_url):
    tokens = await make_patients(database_url, 100)
    slot = (await free(await api("anna@demo.test"), "cardiology"))[0]

    async def attempt(http: aiohttp.ClientSession, token: str) -> tuple[int, str, float]:
        began = time.perf_counter()
        async with http.post(
            f"{base_url}{BOOKINGS}",
            json={"slot_id": slot["id"]},
            headers={"Authorization": f"Bearer {token}"},
        ) as response:
            body = await response.json()
        code = body["error"]["code"] if response.status >= 400 else "booked"
        return response.status, code, time.perf_counter() - began

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        began = time.perf_counter()
        results = await asyncio.gather(*(attempt(http, token) for token in tokens))
        elapsed = time.perf_counter() - began

    outcomes = sorted((status, code) for status, code, _ in results)
    assert outcomes == [(201, "booked")] + [(409, "slot_taken")] * 99
    active = await count(
        database_url,
        t.bookings,
        t.bookings.c.slot_id == slot["id"],
        t.bookings.c.status == "active",
    )
    assert active == 1 and await count(database_url, t.bookings) == 1
    latencies = sorted(seconds for _, _, seconds in results)
    print(
        f"\n100 concurrent bookings of one slot ({database_url.split(':')[0]}): "
        f"1 x 201, 99 x 409 in {elapsed * 1000:.0f} ms; "
        f"p50 {statistics.median(latencies) * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms"
    )


def distinct_times(slots: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """``n`` slots that do not overlap one another."""
    chosen: list[dict[str, Any]] = []
    for slot in slots:
        if all(slot["starts_at"] >= c["ends_at"] for c in chosen):
            chosen.append(slot)
        if len(chosen) == n:
            return chosen
    raise AssertionError(f"fewer than {n} non-overlapping slots")


async def test_a_basic_account_holds_at_most_ten_bookings(api, database_url):
    basia = await api("basia@demo.test")  # basic identity, basic plan
    assert basia.user["identity"] == "basic"
    slots = distinct_times(await free(basia, "internal-medicine", limit=50), 12)
    for slot in slots[:10]:
        await basia.call("POST", BOOKINGS, {"slot_id": slot["id"]}, expect=201)
    refused = await basia.call("POST", BOOKINGS, {"slot_id": slots[10]["id"]}, expect=429)
    assert refused["error"]["code"] == "booking_limit"
    assert refused["error"]["details"] == {"limit": 10}
    basia_id = basia.user["id"]
    assert await count(database_url, t.bookings, t.bookings.c.patient_id == basia_id) == 10

    # Cancelling one makes room again.
    first = (await basia.call("GET", BOOKINGS))["bookings"][0]
    await basia.call("POST", f"{BOOKINGS}/{first['id']}/cancel", {})
    await basia.call("POST", BOOKINGS, {"slot_id": slots[10]["id"]}, expect=201)
    await basia.call("POST", BOOKINGS, {"slot_id": slots[11]["id"]}, expect=429)

    # A verified account has no such limit.
    piotr = await api("piotr@demo.test")
    others = [s for s in await free(piotr, "paediatrics", limit=50)]
    for slot in distinct_times(others, 11):
        await piotr.call("POST", BOOKINGS, {"slot_id": slot["id"]}, expect=201)


async def test_the_limit_holds_under_concurrent_bookings(api, base_url, database_url):
    basia = await api("basia@demo.test")
    slots = distinct_times(await free(basia, "dermatology", limit=50), 15)

    async def attempt(http: aiohttp.ClientSession, slot_id: int) -> int:
        async with http.post(
            f"{base_url}{BOOKINGS}",
            json={"slot_id": slot_id},
            headers={"Authorization": f"Bearer {basia.token}"},
        ) as response:
            return response.status

    async with aiohttp.ClientSession() as http:
        statuses = await asyncio.gather(*(attempt(http, s["id"]) for s in slots))
    assert sorted(statuses) == [201] * 10 + [429] * 5
    active = await count(
        database_url,
        t.bookings,
        t.bookings.c.patient_id == basia.user["id"],
        t.bookings.c.status == "active",
    )
    assert active == 10


async def test_a_specialty_not_covered_cannot_be_booked(api, database_url):
    piotr = await api("piotr@demo.test")  # basic plan: no cardiology
    slot = (await free(piotr, "cardiology"))[0]
    body = await piotr.call("POST", BOOKINGS, {"slot_id": slot["id"]}, expect=403)
    assert body["error"]["code"] == "not_covered"
    assert await count(database_url, t.bookings) == 0


async def test_nobody_cancels_or_reads_someone_elses_booking(api, base_url, database_url):
    anna = await api("anna@demo.test")
    slot = (await free(anna, "internal-medicine"))[0]
    booking = await anna.call("POST", BOOKINGS, {"slot_id": slot["id"]}, expect=201)
    for intruder in ("piotr@demo.test", "dr.mind@demo.test"):
        client = await api(intruder)
        body = await client.call("POST", f"{BOOKINGS}/{booking['id']}/cancel", {}, expect=403)
        assert body["error"]["code"] == "not_your_booking"
    piotr = await api("piotr@demo.test")
    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"{base_url}{BOOKINGS}/{booking['id']}.ics",
            headers={"Authorization": f"Bearer {piotr.token}"},
        ) as response:
            assert response.status == 403
            assert (await response.json())["error"]["code"] == "not_your_booking"

    rows = await query(database_url, sa.select(t.bookings.c.status))
    assert [s for (s,) in rows] == ["active"]
    denied = await query(
        database_url,
        sa.select(t.audit_log.c.action, t.audit_log.c.actor_id, t.audit_log.c.patient_id).where(
            ~t.audit_log.c.allowed
        ),
    )
    anna_id = anna.user["id"]
    assert sorted((a, p) for a, _, p in denied) == [
        ("booking.cancel", anna_id),
        ("booking.cancel", anna_id),
        ("booking.read", anna_id),
    ]


async def test_bad_booking_requests_change_nothing(api, base_url, database_url, clock):
    anna = await api("anna@demo.test")
    slot = (await free(anna, "cardiology"))[0]
    past = await add_slot(
        database_url, "dr.heart@demo.test", "cardiology", clock.now() - timedelta(hours=1)
    )
    for payload, status, code in [
        ({"slot_id": 999999}, 404, "slot_not_found"),
        ({"slot_id": past}, 409, "slot_in_past"),
        ({}, 400, "invalid_payload"),
        ({"slot_id": "abc"}, 400, "invalid_payload"),
        ({"slot_id": slot["id"], "extra": 1}, 400, "invalid_payload"),
        ([slot["id"]], 400, "invalid_payload"),
    ]:
        body = await anna.call("POST", BOOKINGS, payload, expect=status)
        assert body["error"]["code"] == code, payload
    async with aiohttp.ClientSession() as http:
        async with http.post(
            base_url + BOOKINGS,
            data=b"{slot_id:",
            headers={"Authorization": f"Bearer {anna.token}"},
        ) as response:
            assert response.status == 400
            assert (await response.json())["error"]["code"] == "malformed_json"
    doctor = await api("dr.heart@demo.test")
    body = await doctor.call("POST", BOOKINGS, {"slot_id": slot["id"]}, expect=403)
    assert body["error"]["code"] == "not_a_patient"
    anonymous = await api()
    await anonymous.call("POST", BOOKINGS, {"slot_id": slot["id"]}, expect=401)
    await anonymous.call("GET", f"{SLOTS}?specialty=cardiology", expect=401)

    for method, path, status, code in [
        ("POST", f"{BOOKINGS}/abc/cancel", 400, "invalid_id"),
        ("POST", f"{BOOKINGS}/999999/cancel", 404, "booking_not_found"),
        ("GET", f"{BOOKINGS}/999999.ics", 404, "booking_not_found"),
        ("GET", f"{BOOKINGS}/abc.ics", 400, "invalid_id"),
    ]:
        body = await anna.call(method, path, {} if method == "POST" else None, expect=status)
        assert body["error"]["code"] == code, path
    assert await count(database_url, t.bookings) == 0


async def test_one_patient_is_not_booked_twice_at_the_same_time(api, database_url):
    anna = await api("anna@demo.test")
    slot = (await free(anna, "cardiology"))[0]
    await anna.call("POST", BOOKINGS, {"slot_id": slot["id"]}, expect=201)
    # Another doctor's slot ten minutes into the first one; a second past the minute, so it
    # never starts exactly when one of Dr Mind's own generated slots does (their start is
    # unique per doctor, and which slot is first depends on the time of day the test runs).
    clash = await add_slot(
        database_url,
        "dr.mind@demo.test",
        "psychiatry",
        instant(slot["starts_at"]) + timedelta(minutes=10, seconds=1),
    )
    body = await anna.call("POST", BOOKINGS, {"slot_id": clash}, expect=409)
    assert body["error"]["code"] == "booking_overlap"


async def test_time_moves_on_started_slots_are_neither_listed_nor_booked_nor_cancelled(api, clock):
    anna = await api("anna@demo.test")
    first, second = await free(anna, "dermatology", limit=2)
    booking = await anna.call("POST", BOOKINGS, {"slot_id": first["id"]}, expect=201)
    clock.advance((instant(second["starts_at"]) - clock.now()).total_seconds())
    anna = await api("anna@demo.test")  # the next slots may be days away: a fresh session
    assert second["id"] not in [s["id"] for s in await free(anna, "dermatology")]
    body = await anna.call("POST", BOOKINGS, {"slot_id": second["id"]}, expect=409)
    assert body["error"]["code"] == "slot_in_past"
    body = await anna.call("POST", f"{BOOKINGS}/{booking['id']}/cancel", {}, expect=409)
    assert body["error"]["code"] == "slot_in_past"


async def test_a_scheduler_opens_slots(api, database_url, clock):
    scheduler = await api("scheduler@demo.test")
    heart = await user_id(database_url, "dr.heart@demo.test")
    # Late evening, outside every demo schedule.
    day = clock.now().date() + timedelta(days=2)
    starts = datetime(day.year, day.month, day.day, 20, 0, tzinfo=UTC)
    payload = {
        "doctor_id": heart,
        "specialty": "cardiology",
        "kind": "phone",
        "starts_at": starts.isoformat(),
        "count": 3,
        "slot_minutes": 15,
    }
    opened = (await scheduler.call("POST", SLOTS, payload, expect=201))["slots"]
    assert [instant(s["starts_at"]) for s in opened] == [
        starts + timedelta(minutes=15 * i) for i in range(3)
    ]
    assert all(s["kind"] == "phone" and s["doctor"]["id"] == heart for s in opened)
    anna = await api("anna@demo.test")
    # An instant with another offset means the same moment (UTC+5: 01:59 the next day).
    eastern = timezone(timedelta(hours=5))
    after = (starts - timedelta(minutes=1)).astimezone(eastern).isoformat().replace("+", "%2B")
    assert "%2B05:00" in after
    listed = await free(anna, "cardiology", after=after, kind="phone")
    assert [s["id"] for s in listed[:3]] == [s["id"] for s in opened]

    for changes, status, code in [
        ({}, 409, "slot_overlap"),
        ({"starts_at": (starts + timedelta(minutes=40)).isoformat()}, 409, "slot_overlap"),
        ({"specialty": "dermatology"}, 400, "specialty_not_practised"),
        ({"doctor_id": 999999}, 404, "doctor_not_found"),
        ({"doctor_id": anna.user["id"]}, 404, "doctor_not_found"),
        ({"starts_at": "2020-01-01T10:00:00+00:00"}, 400, "starts_in_past"),
        ({"starts_at": starts.replace(tzinfo=None).isoformat()}, 400, "invalid_payload"),
        ({"count": 0}, 400, "invalid_payload"),
        ({"kind": "séance"}, 400, "invalid_payload"),
    ]:
        body = await scheduler.call("POST", SLOTS, {**payload, **changes}, expect=status)
        assert body["error"]["code"] == code, changes
    body = await anna.call("POST", SLOTS, payload, expect=403)
    assert body["error"]["code"] == "not_a_scheduler"
    opened_rows = await count(
        database_url, t.slots, t.slots.c.kind == "phone", t.slots.c.doctor_id == heart
    )
    assert opened_rows == 3
    assert await count(database_url, t.audit_log, t.audit_log.c.action == "slot.open") == 1


async def test_generating_slots_again_adds_none(server, database_url, clock):
    before = await query(database_url, sa.select(t.slots.c.doctor_id, t.slots.c.starts_at))
    assert len(before) > 500
    await server.app[SERVICES].hours.generate_slots(days=14)
    after = await query(database_url, sa.select(t.slots.c.doctor_id, t.slots.c.starts_at))
    assert sorted((d, as_utc(s)) for d, s in after) == sorted((d, as_utc(s)) for d, s in before)
    assert all(as_utc(s) > clock.now() for _, s in before)
