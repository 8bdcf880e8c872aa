"""Demo data: specialties, plans, doctors, patients and a scheduler. Idempotent: seeding twice
changes nothing, so ``consult serve --demo`` can run it at every start.

Seeding creates only what was never created: a demo doctor's weekly hours come with the doctor,
in the same transaction, so hours a scheduler removed later (all of them, too) stay removed
when the server starts again."""

from __future__ import annotations

import asyncio
import logging

import sqlalchemy as sa

from consult.accounts.passwords import hash_password
from consult.booking.hours import generate_slots
from consult.clock import Clock
from consult.storage import tables as t
from consult.storage.uow import Connection, Database

log = logging.getLogger(__name__)

DEMO_PASSWORD = "demo1234"

SPECIALTIES = {
    "internal-medicine": "Internal medicine",
    "paediatrics": "Paediatrics",
    "dermatology": "Dermatology",
    "psychiatry": "Psychiatry",
    "physiotherapy": "Physiotherapy",
    "cardiology": "Cardiology",
}

PLANS = {
    "basic": ("Basic plan", ["internal-medicine", "paediatrics", "dermatology"]),
    "premium": ("Premium plan", list(SPECIALTIES)),
}

# email, name, role, identity, plan, specialties
USERS: list[tuple[str, str, str, str, str | None, list[str]]] = [
    ("anna@demo.test", "Anna Kowalska", "patient", "verified", "premium", []),
    ("piotr@demo.test", "Piotr Nowak", "patient", "verified", "basic", []),
    ("basia@demo.test", "Barbara Wiśniewska", "patient", "basic", "basic", []),
    (
        "dr.house@demo.test",
        "Dr Gregory House",
        "doctor",
        "verified",
        None,
        ["internal-medicine", "cardiology"],
    ),
    (
        "dr.grey@demo.test",
        "Dr Meredith Grey",
        "doctor",
        "verified",
        None,
        ["internal-medicine", "paediatrics"],
    ),
    ("dr.skin@demo.test", "Dr Iwona Skóra", "doctor", "verified", None, ["dermatology"]),
    ("dr.mind@demo.test", "Dr Jan Umysł", "doctor", "verified", None, ["psychiatry"]),
    ("dr.move@demo.test", "Dr Ola Ruch", "doctor", "verified", None, ["physiotherapy"]),
    ("dr.heart@demo.test", "Dr Adam Serce", "doctor", "verified", None, ["cardiology"]),
    ("scheduler@demo.test", "Sam Scheduler", "scheduler", "verified", None, []),
]

# Valid PESELs (checksum, date of birth) for the demo patients and licence numbers (checksum)
# for the demo doctors: e-prescriptions and sick leave need them. Fictitious people.
IDENTIFIERS: dict[str, str] = {
    "anna@demo.test": "85031412361",
    "piotr@demo.test": "79110245636",
    "basia@demo.test": "01263078982",
    "dr.house@demo.test": "3123456",
    "dr.grey@demo.test": "2234567",
    "dr.skin@demo.test": "1345678",
    "dr.mind@demo.test": "6456790",
    "dr.move@demo.test": "5567890",
    "dr.heart@demo.test": "9678901",
}

# The demo clinic's wall clock; schedules are in local time and slots stored in UTC.
DEMO_TIMEZONE = "Europe/Warsaw"
SLOT_DAYS = 14
WEEKDAYS = (0, 1, 2, 3, 4)

# Weekly hours: doctor, specialty, kind, weekdays, from, to (HH:MM local), slot minutes.
SCHEDULES: list[tuple[str, str, str, tuple[int, ...], str, str, int]] = [
    ("dr.house@demo.test", "internal-medicine", "stationary", (0, 2, 4), "08:00", "12:00", 20),
    ("dr.house@demo.test", "internal-medicine", "online", (0, 2, 4), "12:00", "16:00", 20),
    ("dr.house@demo.test", "cardiology", "phone", (1, 3), "08:00", "16:00", 20),
    ("dr.grey@demo.test", "paediatrics", "stationary", WEEKDAYS, "08:00", "12:00", 20),
    ("dr.grey@demo.test", "internal-medicine", "phone", WEEKDAYS, "12:00", "16:00", 20),
    ("dr.skin@demo.test", "dermatology", "stationary", WEEKDAYS, "08:00", "12:00", 20),
    ("dr.skin@demo.test", "dermatology", "online", WEEKDAYS, "12:00", "16:00", 20),
    ("dr.mind@demo.test", "psychiatry", "online", WEEKDAYS, "08:00", "16:00", 30),
    ("dr.move@demo.test", "physiotherapy", "stationary", WEEKDAYS, "08:00", "16:00", 30),
    ("dr.heart@demo.test", "cardiology", "stationary", WEEKDAYS, "08:00", "12:00", 20),
    ("dr.heart@demo.test", "cardiology", "online", WEEKDAYS, "12:00", "16:00", 20),
]


async def seed_demo(db: Database, clock: Clock) -> int:
    """Create whatever of the demo was never created (a demo doctor's weekly hours only with
    the doctor); returns the number of users created."""
    async with db.reader() as uow:
        have = set((await uow.conn.execute(sa.select(t.users.c.email))).scalars())
    # Hashed before the write transaction: it must not hold the writer for a second.
    hashes = await _password_hashes([user[0] for user in USERS if user[0] not in have])
    created = 0
    async with db.uow() as uow:
        conn = uow.conn
        have = set((await conn.execute(sa.select(t.specialties.c.code))).scalars())
        for code, name in SPECIALTIES.items():
            if code not in have:
                await conn.execute(t.specialties.insert().values(code=code, name=name))
        have = set((await conn.execute(sa.select(t.plans.c.code))).scalars())
        for code, (name, covered) in PLANS.items():
            if code not in have:
                await conn.execute(t.plans.insert().values(code=code, name=name))
                await conn.execute(
                    t.plan_specialties.insert(),
                    [{"plan_code": code, "specialty_code": s} for s in covered],
                )
        have = set((await conn.execute(sa.select(t.users.c.email))).scalars())
        new_doctors: dict[str, int] = {}
        for email, name, role, identity, plan, specialties in USERS:
            if email in have:
                continue
            uid = (
                await conn.execute(
                    t.users.insert()
                    .values(
                        email=email,
                        # Hashed above unless the user vanished between the two reads.
                        password_hash=hashes.get(email) or await _password_hash(email),
                        role=role,
                        identity=identity,
                        name=name,
                        plan_code=plan,
                        created_at=clock.now(),
                    )
                    .returning(t.users.c.id)
                )
            ).scalar_one()
            if specialties:
                await conn.execute(
                    t.doctor_specialties.insert(),
                    [{"doctor_id": uid, "specialty_code": s} for s in specialties],
                )
            if role == "doctor":
                new_doctors[email] = uid
            created += 1
        await _seed_schedules(conn, new_doctors)
        await _fill_identifiers(conn)
        slots = await generate_slots(uow, clock.now(), SLOT_DAYS)
        await uow.commit()
    log.info("demo data: %d users created, %d slots opened", created, slots)
    return created


# Each demo user's own hash (its own salt), made once per process: a test run seeds many
# databases, and ten argon2 hashes cost about a second.
_HASHES: dict[str, str] = {}


async def _password_hashes(emails: list[str]) -> dict[str, str]:
    missing = [e for e in emails if e not in _HASHES]
    made = await asyncio.gather(*(asyncio.to_thread(hash_password, DEMO_PASSWORD) for _ in missing))
    _HASHES.update(zip(missing, made, strict=True))
    return {e: _HASHES[e] for e in emails}


async def _password_hash(email: str) -> str:
    return (await _password_hashes([email]))[email]


async def _fill_identifiers(conn: Connection) -> None:
    """PESELs and licence numbers for demo users who have none (also those created before
    migration 0013); one a user changed stays."""
    for email, number in IDENTIFIERS.items():
        column = t.users.c.licence_number if len(number) == 7 else t.users.c.pesel
        await conn.execute(
            t.users.update()
            .where(t.users.c.email == email, column.is_(None))
            .values({column.name: number})
        )


def _minute(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


async def _seed_schedules(conn: Connection, doctors: dict[str, int]) -> None:
    """The demo weekly hours of the demo doctors created just now (email -> id). Never for a
    doctor who existed before: whether they have hours is then the schedulers' business (a
    doctor with none had them all removed, and must not get them back at the next start)."""
    rows = [
        {
            "doctor_id": doctors[email],
            "specialty_code": specialty,
            "kind": kind,
            "weekday": day,
            "start_minute": _minute(start),
            "end_minute": _minute(end),
            "slot_minutes": minutes,
            "timezone": DEMO_TIMEZONE,
        }
        for email, specialty, kind, days, start, end, minutes in SCHEDULES
        if email in doctors
        for day in days
    ]
    if rows:
        await conn.execute(t.schedules.insert(), rows)
