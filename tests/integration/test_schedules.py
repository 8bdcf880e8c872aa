"""Doctors' weekly hours over real HTTP, on each backend: slots that keep rolling forward (at
start-up, then periodically, from several processes without a duplicate), schedulers adding and
removing hours (their slots appear and go; booked ones stay with their bookings), who may see
and change them, bad requests that change nothing, the doctor told live of a change, and demo
seeding at a restart that leaves removed hours removed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestServer

import consult.app
from consult.app import create_app
from consult.booking.policy import plan_slots
from consult.booking.repository import weekly_hours
from consult.clock import ManualClock, as_utc
from consult.http.routing import SERVICES
from consult.settings import Settings
from consult.storage import tables as t
from tests.integration.test_booking import BOOKINGS, free, instant, query, user_id
from tests.support import ApiClient, SocketClient, count

DAY = 24 * 3600
SATURDAY = 5


def hours_path(doctor_id: int) -> str:
    return f"/api/doctors/{doctor_id}/schedule"


def settings_for(database_url: str, tmp_path: Path, **changes: Any) -> Settings:
    return Settings(
        database_url=database_url,
        migrate_on_start=False,
        sweep_interval=0,
        session_check_interval=0,
        documents_dir=str(tmp_path / "documents"),
        recordings_dir=str(tmp_path / "recordings"),
    ).with_(**changes)


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


async def last_slot_start(database_url: str, specialty: str) -> datetime | None:
    rows = await query(
        database_url,
        sa.select(sa.func.max(t.slots.c.starts_at)).where(t.slots.c.specialty_code == specialty),
    )
    return as_utc(rows[0][0]) if rows and rows[0][0] is not None else None


async def slot_times(database_url: str) -> list[tuple[int, datetime, datetime]]:
    rows = await query(
        database_url,
        sa.select(t.slots.c.doctor_id, t.slots.c.starts_at, t.slots.c.ends_at),
    )
    return sorted((d, as_utc(s), as_utc(e)) for d, s, e in rows)


def assert_no_doctor_double_booked(slots: list[tuple[int, datetime, datetime]]) -> None:
    for (d1, _, e1), (d2, s2, _) in zip(slots, slots[1:], strict=False):
        assert d1 != d2 or e1 <= s2, (d1, e1, s2)


# --- slots roll forward -----------------------------------------------------------------------


async def test_a_server_keeps_offering_slots_weeks_later(
    database_url: str,
    tmp_path: Path,
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The demo seeds 14 days; a server still running three weeks later offers slots then too.
    monkeypatch.setattr(consult.app, "SLOT_INTERVAL", 0.05)
    clock = ManualClock()
    start = clock.now()
    server = await aiohttp_server(
        create_app(settings_for(database_url, tmp_path, demo=True), clock=clock)
    )
    first = await last_slot_start(database_url, "dermatology")
    assert first is not None and first < start + timedelta(days=14)

    clock.advance(21 * DAY)

    async def rolled() -> bool:
        last = await last_slot_start(database_url, "dermatology")
        return last is not None and last > start + timedelta(days=30)

    await eventually(rolled, "the periodic generation to add the coming weeks' slots")
    anna = ApiClient(str(server.make_url("/")))
    try:
        await anna.login("anna@demo.test")
        slots = await free(anna, "dermatology", limit=10)
    finally:
        await anna.close()
    assert slots and all(instant(s["starts_at"]) > clock.now() for s in slots)
    assert instant(slots[0]["starts_at"]) < clock.now() + timedelta(days=4)
    assert_no_doctor_double_booked(await slot_times(database_url))


async def test_a_restarted_server_generates_the_coming_days_at_start_up(
    database_url: str,
    tmp_path: Path,
    aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> None:
    clock = ManualClock()
    start = clock.now()
    seeded = await aiohttp_server(
        create_app(settings_for(database_url, tmp_path, demo=True, slot_days=0), clock=clock)
    )
    await seeded.close()
    later = ManualClock(start + timedelta(days=20))
    await aiohttp_server(create_app(settings_for(database_url, tmp_path, slot_days=7), clock=later))

    async def generated() -> bool:
        last = await last_slot_start(database_url, "psychiatry")
        return last is not None and last > start + timedelta(days=21)

    await eventually(generated, "the start-up generation")
    last = await last_slot_start(database_url, "psychiatry")
    assert last is not None and last < start + timedelta(days=28)  # 7 days, not more


async def _three_weeks_after_the_demo(
    database_url: str, tmp_path: Path, aiohttp_server: Callable[..., Awaitable[TestServer]]
) -> TestServer:
    """A server three weeks after the demo was seeded, no slot generated since."""
    clock = ManualClock()
    seeded = await aiohttp_server(
        create_app(settings_for(database_url, tmp_path, demo=True, slot_days=0), clock=clock)
    )
    await seeded.close()
    later = ManualClock(clock.now() + timedelta(days=21))
    return await aiohttp_server(
        create_app(settings_for(database_url, tmp_path, slot_days=0), clock=later)
    )


async def test_two_processes_generating_at_once_make_each_slot_once(
    database_url: str,
    tmp_path: Path,
    aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> None:
    # Two app instances (each its own engine) three weeks on, generating at the same moment.
    servers = [await _three_weeks_after_the_demo(database_url, tmp_path, aiohttp_server)]
    later = servers[0].app[SERVICES].clock
    servers.append(
        await aiohttp_server(
            create_app(settings_for(database_url, tmp_path, slot_days=0), clock=later)
        )
    )
    before = await count(database_url, t.slots)
    planned = await asyncio.gather(
        *(s.app[SERVICES].hours.generate_slots(14) for s in servers for _ in range(3))
    )
    slots = await slot_times(database_url)
    assert sum(planned) == len(slots) - before > 300  # no slot planned twice
    assert_no_doctor_double_booked(slots)
    # Every slot the weekly hours give in those 14 days exists, once.
    schedules = await query(database_url, sa.select(t.schedules))
    expected = plan_slots([weekly_hours(r) for r in schedules], later.now(), 14)
    have = {(d, s) for d, s, _ in slots}
    assert {(p.doctor_id, p.starts_at) for p in expected} <= have
    assert await servers[0].app[SERVICES].hours.generate_slots(14) == 0


async def test_slot_generation_lets_other_writes_through_between_doctors(
    database_url: str,
    tmp_path: Path,
    aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> None:
    server = await _three_weeks_after_the_demo(database_url, tmp_path, aiohttp_server)
    services = server.app[SERVICES]
    later = services.clock
    doctors = len(await query(database_url, sa.select(t.schedules.c.doctor_id).distinct()))
    assert doctors >= 2
    before = await count(database_url, t.slots)
    generation = asyncio.create_task(services.hours.generate_slots(14))
    await asyncio.sleep(0)  # the generation has begun
    # A write that comes meanwhile goes through between two doctors' transactions (on SQLite
    # all writes take turns): it does not wait for every doctor's slots.
    async with services.db.uow() as uow:
        await uow.conn.execute(
            sa.insert(t.audit_log).values(
                at=later.now(), action="test", allowed=True, detail="between doctors"
            )
        )
        await uow.commit()
    assert not generation.done()
    planned = await generation
    assert planned == await count(database_url, t.slots) - before > 300


# --- schedulers manage weekly hours -----------------------------------------------------------


def saturday_hours(**changes: Any) -> dict[str, Any]:
    return {
        "specialty": "cardiology",
        "kind": "online",
        "weekday": SATURDAY,
        "start_minute": 9 * 60,
        "end_minute": 11 * 60,
        "slot_minutes": 30,
        "timezone": "Europe/Warsaw",
        **changes,
    }


async def test_hours_added_give_slots_at_once_and_removed_take_the_free_ones_away(
    api: Callable[..., Awaitable[ApiClient]], database_url: str, server: TestServer
) -> None:
    scheduler = await api("scheduler@demo.test")
    heart = await user_id(database_url, "dr.heart@demo.test")
    demo_hours = (await scheduler.call("GET", hours_path(heart)))["hours"]
    assert [h["weekday"] for h in demo_hours] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert demo_hours[0]["doctor"]["name"] == "Dr Adam Serce"

    added = await scheduler.call("POST", hours_path(heart), saturday_hours(), expect=201)
    hours = added["hours"]
    created = added["slots_created"]
    assert 4 <= created <= 8  # two Saturdays in 14 days, four slots each (today's may be over)
    assert await count(database_url, t.slots, t.slots.c.schedule_id == hours["id"]) == created
    assert hours["specialty"]["code"] == "cardiology" and hours["kind"] == "online"
    assert (hours["weekday"], hours["start_minute"], hours["end_minute"]) == (SATURDAY, 540, 660)
    listed = (await scheduler.call("GET", hours_path(heart)))["hours"]
    assert hours["id"] in [h["id"] for h in listed] and len(listed) == 11

    anna = await api("anna@demo.test")
    first = await query(
        database_url,
        sa.select(sa.func.min(t.slots.c.starts_at)).where(t.slots.c.schedule_id == hours["id"]),
    )
    after = (as_utc(first[0][0]) - timedelta(minutes=1)).isoformat().replace("+", "%2B")
    saturday = [
        s
        for s in await free(anna, "cardiology", kind="online", after=after, limit=10)
        if instant(s["starts_at"]).weekday() == SATURDAY
    ]
    assert len(saturday) == 4 and saturday[0]["doctor"]["id"] == heart
    booked_slot = saturday[0]
    booking = await anna.call("POST", BOOKINGS, {"slot_id": booked_slot["id"]}, expect=201)

    removed = await scheduler.call("DELETE", f"{hours_path(heart)}/{hours['id']}")
    assert removed == {"id": hours["id"], "slots_removed": created - 1, "slots_kept": 1}
    later = await free(anna, "cardiology", kind="online", after=after, limit=50)
    assert not [s for s in later if instant(s["starts_at"]).weekday() == SATURDAY]
    assert len((await scheduler.call("GET", hours_path(heart)))["hours"]) == 10
    # The patient keeps the booking; once cancelled, the slot is not offered again.
    mine = (await anna.call("GET", BOOKINGS))["bookings"]
    assert [(b["id"], b["status"]) for b in mine] == [(booking["id"], "active")]
    await anna.call("POST", f"{BOOKINGS}/{booking['id']}/cancel", {})
    again = await free(anna, "cardiology", kind="online", after=after, limit=50)
    assert booked_slot["id"] not in [s["id"] for s in again]
    body = await anna.call("POST", BOOKINGS, {"slot_id": booked_slot["id"]}, expect=409)
    assert body["error"]["code"] == "slot_withdrawn"
    # The periodic generation does not bring removed hours back.
    await server.app[SERVICES].hours.generate_slots()
    saturdays = await query(
        database_url,
        sa.select(t.slots.c.starts_at).where(t.slots.c.doctor_id == heart),
    )
    assert [as_utc(s) for (s,) in saturdays if as_utc(s).weekday() == SATURDAY] == [
        instant(booked_slot["starts_at"])
    ]
    # The same hours added back: every Saturday slot is offered again, the withdrawn one too
    # (the same slot, so the cancelled booking's history does not change).
    readded = await scheduler.call("POST", hours_path(heart), saturday_hours(), expect=201)
    assert readded["slots_created"] == created
    back = await free(anna, "cardiology", kind="online", after=after, limit=10)
    back_ids = [s["id"] for s in back if instant(s["starts_at"]).weekday() == SATURDAY]
    assert len(back_ids) == 4 and back_ids[0] == booked_slot["id"]
    rebooked = await anna.call("POST", BOOKINGS, {"slot_id": booked_slot["id"]}, expect=201)
    assert rebooked["slot"]["starts_at"] == booked_slot["starts_at"]

    audit = await query(
        database_url,
        sa.select(t.audit_log.c.action, t.audit_log.c.actor_id, t.audit_log.c.detail)
        .where(t.audit_log.c.action.like("schedule.%"))
        .order_by(t.audit_log.c.id),
    )
    assert [(a, who) for a, who, _ in audit] == [
        ("schedule.add", scheduler.user["id"]),
        ("schedule.remove", scheduler.user["id"]),
        ("schedule.add", scheduler.user["id"]),
    ]
    assert "Sat 09:00-11:00 Europe/Warsaw" in audit[0][2] and "1 booked kept" in audit[1][2]


async def test_who_may_see_and_change_a_doctors_hours(
    api: Callable[..., Awaitable[ApiClient]], database_url: str
) -> None:
    heart = await user_id(database_url, "dr.heart@demo.test")
    doctor = await api("dr.heart@demo.test")
    assert len((await doctor.call("GET", hours_path(heart)))["hours"]) == 10
    skin = await api("dr.skin@demo.test")
    anna = await api("anna@demo.test")
    for client in (skin, anna):
        body = await client.call("GET", hours_path(heart), expect=403)
        assert body["error"]["code"] == "not_your_schedule"
    scheduler = await api("scheduler@demo.test")
    own = (await scheduler.call("GET", hours_path(heart)))["hours"][0]["id"]
    for client in (doctor, anna):
        body = await client.call("POST", hours_path(heart), saturday_hours(), expect=403)
        assert body["error"]["code"] == "not_a_scheduler"
        body = await client.call("DELETE", f"{hours_path(heart)}/{own}", expect=403)
        assert body["error"]["code"] == "not_a_scheduler"
    # The doctors whose hours a scheduler manages, with what each practises.
    listed = (await scheduler.call("GET", "/api/doctors"))["doctors"]
    assert len(listed) == 6 and [d["name"] for d in listed] == sorted(d["name"] for d in listed)
    by_id = {d["id"]: d for d in listed}
    assert [s["code"] for s in by_id[heart]["specialties"]] == ["cardiology"]
    for client in (doctor, anna):
        body = await client.call("GET", "/api/doctors", expect=403)
        assert body["error"]["code"] == "not_a_scheduler"
    assert (await (await api()).call("GET", hours_path(heart), expect=401))["error"]["code"]
    assert await count(database_url, t.schedules, t.schedules.c.doctor_id == heart) == 10


async def test_bad_hours_are_refused_clearly_and_change_nothing(
    api: Callable[..., Awaitable[ApiClient]], database_url: str
) -> None:
    scheduler = await api("scheduler@demo.test")
    heart = await user_id(database_url, "dr.heart@demo.test")
    skin = await user_id(database_url, "dr.skin@demo.test")
    anna = await user_id(database_url, "anna@demo.test")
    skin_hours = (await scheduler.call("GET", hours_path(skin)))["hours"][0]["id"]
    schedules = await count(database_url, t.schedules)
    slots = await count(database_url, t.slots)
    monday_morning = {"weekday": 0, "start_minute": 11 * 60, "end_minute": 13 * 60}
    for path, changes, status, code in [
        (hours_path(heart), monday_morning, 409, "schedule_overlap"),
        (hours_path(heart), {"kind": "phone", **monday_morning}, 409, "schedule_overlap"),
        (hours_path(heart), {"start_minute": 660, "end_minute": 540}, 400, "invalid_schedule"),
        (hours_path(heart), {"end_minute": 9 * 60 + 20}, 400, "invalid_schedule"),
        (hours_path(heart), {"timezone": "Mars/Olympus"}, 400, "invalid_schedule"),
        (hours_path(heart), {"weekday": 7}, 400, "invalid_payload"),
        (hours_path(heart), {"slot_minutes": 2}, 400, "invalid_payload"),
        (hours_path(heart), {"kind": "séance"}, 400, "invalid_payload"),
        (hours_path(heart), {"room": 12}, 400, "invalid_payload"),
        (hours_path(heart), {"specialty": "astrology"}, 400, "unknown_specialty"),
        (hours_path(heart), {"specialty": "dermatology"}, 400, "specialty_not_practised"),
        (hours_path(999999), {}, 404, "doctor_not_found"),
        (hours_path(anna), {}, 404, "doctor_not_found"),
        ("/api/doctors/abc/schedule", {}, 400, "invalid_id"),
    ]:
        body = await scheduler.call("POST", path, saturday_hours(**changes), expect=status)
        assert body["error"]["code"] == code, (path, changes, body)
        assert body["error"]["message"], body
    clash = await scheduler.call(
        "POST", hours_path(heart), saturday_hours(**monday_morning), expect=409
    )
    assert "08:00-12:00" in clash["error"]["message"]
    for path, status, code in [
        (f"{hours_path(heart)}/999999", 404, "schedule_not_found"),
        (f"{hours_path(heart)}/{skin_hours}", 404, "schedule_not_found"),  # not his hours
        (f"{hours_path(999999)}/{skin_hours}", 404, "doctor_not_found"),
        (f"{hours_path(heart)}/x", 400, "invalid_id"),
    ]:
        body = await scheduler.call("DELETE", path, expect=status)
        assert body["error"]["code"] == code, path
    assert await count(database_url, t.schedules) == schedules
    assert await count(database_url, t.slots) == slots
    assert await count(database_url, t.audit_log, t.audit_log.c.action.like("schedule.%")) == 0


async def test_two_schedulers_adding_overlapping_hours_at_once_add_one(
    api: Callable[..., Awaitable[ApiClient]], database_url: str
) -> None:
    heart = await user_id(database_url, "dr.heart@demo.test")
    schedulers = [await api("scheduler@demo.test") for _ in range(2)]
    online, phone = saturday_hours(), saturday_hours(kind="phone", start_minute=10 * 60)

    async def add(client: ApiClient, body: dict[str, Any]) -> int:
        async with client.session.post(
            client.base_url + hours_path(heart),
            json=body,
            headers={"Authorization": f"Bearer {client.token}"},
        ) as response:
            return response.status

    statuses = await asyncio.gather(add(schedulers[0], online), add(schedulers[1], phone))
    assert sorted(statuses) == [201, 409]
    saturday = t.schedules.c.weekday == SATURDAY
    assert await count(database_url, t.schedules, t.schedules.c.doctor_id == heart, saturday) == 1
    assert_no_doctor_double_booked(await slot_times(database_url))


async def test_the_doctor_is_told_live_when_a_scheduler_changes_their_hours(
    api: Callable[..., Awaitable[ApiClient]],
    sockets: Callable[..., Awaitable[SocketClient]],
    database_url: str,
) -> None:
    heart_id = await user_id(database_url, "dr.heart@demo.test")
    heart = await api("dr.heart@demo.test")
    tabs = [await sockets(heart.token) for _ in range(2)]  # every tab of the doctor is told
    skin_ws = await sockets((await api("dr.skin@demo.test")).token)
    scheduler = await api("scheduler@demo.test")
    scheduler_ws = await sockets(scheduler.token)

    added = (await scheduler.call("POST", hours_path(heart_id), saturday_hours(), expect=201))[
        "hours"
    ]
    for ws in tabs:
        event = await ws.next("schedule:changed")
        assert event == {"doctor_id": heart_id, "change": "added", "hours": added}
    # What the event says is what the doctor reads over HTTP afterwards.
    listed = (await heart.call("GET", hours_path(heart_id)))["hours"]
    assert added in listed and len(listed) == 11

    # Refused changes tell nobody; the removal tells the doctor, with the hours as they were.
    clash = saturday_hours(kind="phone", start_minute=10 * 60)
    await scheduler.call("POST", hours_path(heart_id), clash, expect=409)
    await scheduler.call("DELETE", f"{hours_path(heart_id)}/999999", expect=404)
    await scheduler.call("DELETE", f"{hours_path(heart_id)}/{added['id']}")
    for ws in tabs:
        event = await ws.next("schedule:changed")
        assert event == {"doctor_id": heart_id, "change": "removed", "hours": added}
        assert ws.pending("schedule:changed") == 0
    # Another doctor, and the scheduler who made the change, are not told.
    await asyncio.sleep(0.2)
    assert skin_ws.pending("schedule:changed") == 0
    assert scheduler_ws.pending("schedule:changed") == 0


# --- demo seeding -----------------------------------------------------------------------------


async def test_seeding_the_demo_again_does_not_bring_removed_hours_back(
    database_url: str,
    tmp_path: Path,
    aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> None:
    # `consult serve --demo` seeds at every start. A scheduler removes all of Dr Serce's hours
    # and one of Dr House's; after a restart with --demo both stay as the scheduler left them.
    clock = ManualClock()
    settings = settings_for(database_url, tmp_path, demo=True)
    first = await aiohttp_server(create_app(settings, clock=clock))
    heart = await user_id(database_url, "dr.heart@demo.test")
    house = await user_id(database_url, "dr.house@demo.test")
    scheduler = ApiClient(str(first.make_url("/")))
    try:
        await scheduler.login("scheduler@demo.test")
        for hours in (await scheduler.call("GET", hours_path(heart)))["hours"]:
            await scheduler.call("DELETE", f"{hours_path(heart)}/{hours['id']}")
        house_hours = (await scheduler.call("GET", hours_path(house)))["hours"]
        await scheduler.call("DELETE", f"{hours_path(house)}/{house_hours[0]['id']}")
    finally:
        await scheduler.close()
    await first.close()

    async def snapshot() -> tuple[int, list[Any], int]:
        users = await count(database_url, t.users)
        hours = await query(database_url, sa.select(t.schedules).order_by(t.schedules.c.id))
        future = await count(
            database_url, t.slots, t.slots.c.doctor_id == heart, t.slots.c.starts_at > clock.now()
        )
        return users, [tuple(r) for r in hours], future

    before = await snapshot()
    assert before[2] == 0  # his free future slots went with his hours
    second = await aiohttp_server(create_app(settings, clock=clock))
    after = await snapshot()
    assert after == before
    assert await count(database_url, t.schedules, t.schedules.c.doctor_id == heart) == 0
    assert await count(database_url, t.schedules, t.schedules.c.doctor_id == house) == 7
    doctor = ApiClient(str(second.make_url("/")))
    try:
        await doctor.login("dr.heart@demo.test")
        assert (await doctor.call("GET", hours_path(heart)))["hours"] == []
    finally:
        await doctor.close()
