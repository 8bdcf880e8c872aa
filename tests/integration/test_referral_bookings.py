"""Referrals open bookings, over real HTTP on each backend: a doctor issues referrals with
Issue and end; rehabilitation (referral_required in the demo) is booked only with the
patient's valid, unused referral to it; booking uses the referral, cancelling frees it; the
referral's own slot list; refusals change nothing; two bookings racing for one referral give
one. And the demo's rehabilitation reaching a database seeded before it existed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from consult.booking import repository as booking_repo
from consult.clock import ManualClock
from consult.demo import seed_demo
from consult.events import EventBus
from consult.storage import tables as t
from consult.storage.engine import create_engine
from consult.storage.uow import Database
from tests.integration.test_booking import query
from tests.integration.test_outcome import consulting, issue, outcome_body, today_of
from tests.support import ApiClient, count, execute, rows

BOOKINGS = "/api/bookings"
REHAB = "rehabilitation"


async def _no_lock(uow: Any, user_id: int) -> None:
    return None


def referral(kind: str, target: str) -> dict[str, Any]:
    return {"kind": kind, "target": target, "diagnosis": "M54.5", "reason": "Low back pain."}


async def referred(api, sockets, clock) -> tuple[ApiClient, ApiClient, dict[str, int]]:
    """Anna, Dr House, and the referrals he issued her with Issue and end, by name."""
    patient, _, doctor, _, cid = await consulting(api, sockets)
    issued = [
        referral("rehabilitation", REHAB),
        referral("rehabilitation", REHAB),
        referral("specialist_consultation", "cardiology"),
        referral("diagnostic_test", "MRI of the lumbar spine"),
    ]
    body = outcome_body(today_of(clock), prescriptions=[], sick_leave=None, referrals=issued)
    out = await issue(doctor, cid, body)
    by_target = {r["target"]: r["id"] for r in out["referrals"]}
    ids = {"cardiology": by_target["cardiology"], "mri": by_target["MRI of the lumbar spine"]}
    # The two alike, by id (the order issued).
    ids["rehab"], ids["rehab2"] = sorted(r["id"] for r in out["referrals"] if r["target"] == REHAB)
    return patient, doctor, ids


async def slots_of(client: ApiClient, referral_id: int, expect: int = 200, **params: Any) -> Any:
    qs = "&".join(f"{k}={v}" for k, v in params.items())
    path = f"/api/referrals/{referral_id}/slots" + (f"?{qs}" if qs else "")
    answer = await client.call("GET", path, expect=expect)
    return answer["slots"] if expect == 200 else answer["error"]["code"]


async def used_by(patient: ApiClient, referral_id: int) -> int | None:
    issued = await patient.call("GET", "/api/patients/me/issued")
    (found,) = [r for r in issued["referrals"] if r["id"] == referral_id]
    return found["used_by_booking"]


async def book(patient: ApiClient, slot_id: int, referral_id: int | None, expect: int) -> Any:
    body: dict[str, Any] = {"slot_id": slot_id}
    if referral_id is not None:
        body["referral_id"] = referral_id
    answer = await patient.call("POST", BOOKINGS, body, expect=expect)
    return answer if expect == 201 else answer["error"]["code"]


async def test_rehabilitation_is_booked_with_the_referral_which_cancelling_frees(
    api, sockets, clock, database_url
):
    patient, _, ids = await referred(api, sockets, clock)
    listed = (await patient.call("GET", "/api/specialties"))["specialties"]
    flags = {s["code"]: s["referral_required"] for s in listed}
    assert flags[REHAB] is True and flags["cardiology"] is False

    search = (await patient.call("GET", f"/api/slots?specialty={REHAB}&limit=3"))["slots"]
    assert len(search) == 3
    assert all(s["referral_required"] for s in search)
    assert all(s["covered"] and s["doctor"]["name"] == "Dr Ola Ruch" for s in search)
    other = (await patient.call("GET", "/api/slots?specialty=cardiology"))["slots"]
    assert not any(s["referral_required"] for s in other)

    assert await book(patient, search[0]["id"], None, 409) == "referral_required"
    assert await count(database_url, t.bookings) == 0

    mine = await slots_of(patient, ids["rehab"], limit=3)
    assert mine == search  # the same slots, in the same shape as the search
    assert len(await slots_of(patient, ids["rehab"], limit=2, kind="stationary")) == 2
    assert await slots_of(patient, ids["rehab"], kind="phone") == []
    reads = await rows(database_url, t.audit_log, t.audit_log.c.action == "referral.slots.read")
    me = patient.user["id"]
    assert {(r.actor_id, r.patient_id, r.allowed) for r in reads} == {(me, me, True)}

    booking = await book(patient, mine[0]["id"], ids["rehab"], 201)
    assert booking["referral_id"] == ids["rehab"] and booking["slot"]["referral_required"]
    assert await used_by(patient, ids["rehab"]) == booking["id"]
    listed_bookings = (await patient.call("GET", BOOKINGS))["bookings"]
    assert [b["referral_id"] for b in listed_bookings] == [ids["rehab"]]
    # A double click answers the same booking; another slot with the used referral is refused.
    assert (await book(patient, mine[0]["id"], ids["rehab"], 201))["id"] == booking["id"]
    assert await book(patient, mine[1]["id"], ids["rehab"], 409) == "referral_used"
    assert await slots_of(patient, ids["rehab"], expect=409) == "referral_used"
    assert await count(database_url, t.bookings) == 1

    await patient.call("POST", f"{BOOKINGS}/{booking['id']}/cancel", {})
    assert await used_by(patient, ids["rehab"]) is None
    assert (await slots_of(patient, ids["rehab"]))[0]["id"] == mine[0]["id"]
    again = await book(patient, mine[1]["id"], ids["rehab"], 201)
    assert await used_by(patient, ids["rehab"]) == again["id"]
    created = await rows(database_url, t.audit_log, t.audit_log.c.action == "booking.create")
    assert [r.detail.endswith(f"referral {ids['rehab']}") for r in created] == [True, True]


async def test_a_cancelled_other_or_strangers_referral_books_nothing(
    api, sockets, clock, database_url
):
    patient, doctor, ids = await referred(api, sockets, clock)
    slot = (await slots_of(patient, ids["rehab"]))[0]["id"]
    await doctor.call(
        "POST", f"/api/referrals/{ids['rehab2']}/cancel", {"reason": "Issued twice by mistake."}
    )
    assert await book(patient, slot, ids["rehab2"], 409) == "referral_cancelled"
    assert await slots_of(patient, ids["rehab2"], expect=409) == "referral_cancelled"
    assert await book(patient, slot, ids["cardiology"], 409) == "referral_other_target"
    assert await book(patient, slot, ids["mri"], 409) == "referral_other_target"
    assert await slots_of(patient, ids["mri"], expect=409) == "referral_not_bookable"
    assert await book(patient, slot, 999_999, 404) == "referral_not_found"

    # Someone else's referral is not found, and the attempt is audited as denied.
    piotr = await api("piotr@demo.test")
    assert await slots_of(piotr, ids["rehab"], expect=404) == "referral_not_found"
    dermatology = (await piotr.call("GET", "/api/slots?specialty=dermatology"))["slots"][0]["id"]
    assert await book(piotr, dermatology, ids["rehab"], 404) == "referral_not_found"
    denied = await rows(
        database_url,
        t.audit_log,
        t.audit_log.c.allowed.is_(False),
        t.audit_log.c.actor_id == piotr.user["id"],
        t.audit_log.c.patient_id == patient.user["id"],
    )
    assert {r.action for r in denied} == {
        "referral.slots.read",
        "booking.create",
    }
    assert await count(database_url, t.bookings) == 0
    assert await slots_of(doctor, ids["rehab"], expect=403) == "not_a_patient"
    assert await slots_of(patient, ids["rehab"], expect=400, limit=0) == "invalid_payload"

    # A referral to a specialty that needs none still books it, and is used by it.
    cardiology = (await slots_of(patient, ids["cardiology"]))[0]
    assert cardiology["specialty"]["code"] == "cardiology" and not cardiology["referral_required"]
    booking = await book(patient, cardiology["id"], ids["cardiology"], 201)
    assert await used_by(patient, ids["cardiology"]) == booking["id"]


@pytest.mark.parametrize("user_lock", [True, False])
async def test_concurrent_bookings_with_one_referral_one_wins(
    api, sockets, clock, database_url, monkeypatch, user_lock
):
    """Six bookings of six slots with one referral at once. Without the patient's row lock
    (patched out: it serialises one patient's bookings), the unique index alone decides."""
    if not user_lock:
        monkeypatch.setattr(booking_repo, "lock_user", _no_lock)
    patient, _, ids = await referred(api, sockets, clock)
    slots = await slots_of(patient, ids["rehab"], limit=6)

    async def attempt(slot_id: int) -> tuple[int, Any]:
        body = {"slot_id": slot_id, "referral_id": ids["rehab"]}
        headers = {"Authorization": f"Bearer {patient.token}"}
        async with patient.session.post(
            patient.base_url + BOOKINGS, json=body, headers=headers
        ) as response:
            return response.status, await response.json()

    answers = await asyncio.gather(*(attempt(s["id"]) for s in slots))
    won = [body for status, body in answers if status == 201]
    assert len(won) == 1, answers
    assert {(status, body["error"]["code"]) for status, body in answers if status != 201} == {
        (409, "referral_used")
    }
    assert await used_by(patient, ids["rehab"]) == won[0]["id"]
    # The guarantee is the database's: a second active booking of the referral is refused.
    other = next(s["id"] for s in slots if s["id"] != won[0]["slot"]["id"])
    second = t.bookings.insert().values(
        slot_id=other,
        patient_id=patient.user["id"],
        status="active",
        created_at=datetime.now(UTC),
        referral_id=ids["rehab"],
    )
    try:
        await execute(database_url, second)
    except IntegrityError:
        pass
    else:
        raise AssertionError("a second active booking of one referral was stored")
    assert await count(database_url, t.bookings, t.bookings.c.referral_id == ids["rehab"]) == 1


async def test_the_demo_adds_rehabilitation_to_a_database_seeded_before_it(
    database_url, monkeypatch
):
    """An older demo (no rehabilitation), then this one: Dr Ola Ruch gets the specialty and
    her hours of it (less those overlapping hours she has by then), the premium plan covers
    it; hours a scheduler then removes do not come back at the next start."""
    from consult import demo

    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    db = Database(create_engine(database_url), EventBus())
    try:
        with monkeypatch.context() as old:
            old.setattr(
                demo, "SPECIALTIES", {k: v for k, v in demo.SPECIALTIES.items() if k != REHAB}
            )
            old.setattr(
                demo,
                "PLANS",
                {k: (n, [s for s in c if s != REHAB]) for k, (n, c) in demo.PLANS.items()},
            )
            old.setattr(
                demo, "USERS", [(*u[:5], [s for s in u[5] if s != REHAB]) for u in demo.USERS]
            )
            old.setattr(demo, "SCHEDULES", [s for s in demo.SCHEDULES if s[1] != REHAB])
            assert await seed_demo(db, clock) == len(demo.USERS)
        move = (
            await query(
                database_url, sa.select(t.users.c.id).where(t.users.c.email == "dr.move@demo.test")
            )
        )[0][0]
        # Meanwhile a scheduler gave her Monday evenings (17:00-19:00 in Warsaw).
        await execute(
            database_url,
            t.schedules.insert().values(
                doctor_id=move,
                specialty_code="physiotherapy",
                kind="phone",
                weekday=0,
                start_minute=17 * 60,
                end_minute=19 * 60,
                slot_minutes=30,
                timezone="Europe/Warsaw",
            ),
        )
        assert await seed_demo(db, clock) == 0
        rehab = await rows(database_url, t.schedules, t.schedules.c.specialty_code == REHAB)
        assert [(r.doctor_id, r.weekday) for r in rehab] == [(move, d) for d in (1, 2, 3, 4)]
        practised = await rows(
            database_url, t.doctor_specialties, t.doctor_specialties.c.doctor_id == move
        )
        assert {r.specialty_code for r in practised} == {"physiotherapy", REHAB}
        covering = await rows(
            database_url, t.plan_specialties, t.plan_specialties.c.specialty_code == REHAB
        )
        assert [r.plan_code for r in covering] == ["premium"]
        (specialty,) = await rows(database_url, t.specialties, t.specialties.c.code == REHAB)
        assert specialty.referral_required is True
        assert await count(database_url, t.slots, t.slots.c.specialty_code == REHAB) > 0

        await execute(database_url, t.slots.delete().where(t.slots.c.specialty_code == REHAB))
        await execute(
            database_url, t.schedules.delete().where(t.schedules.c.specialty_code == REHAB)
        )
        await seed_demo(db, clock)
        assert await count(database_url, t.schedules, t.schedules.c.specialty_code == REHAB) == 0
        assert await count(database_url, t.slots, t.slots.c.specialty_code == REHAB) == 0
    finally:
        await db.dispose()
