"""Demo data: specialties, plans, doctors, patients and a scheduler. Idempotent: seeding twice
changes nothing, so ``consult serve --demo`` can run it at every start.

Seeding creates only what was never created: a demo doctor's weekly hours come with the doctor,
in the same transaction, so hours a scheduler removed later (all of them, too) stay removed
when the server starts again.

A specialty added to the demo later (rehabilitation) reaches a database seeded before it the
same way: with the specialty, in its transaction, come its coverage in the demo plans that
existed, and, for the demo doctors who existed, that specialty and their demo hours of it
(none of them can have had them: the specialty did not exist). Hours that would overlap hours
the doctor has by then are left out (schedulers refuse overlapping hours too). After that the
specialty exists, so a later start adds nothing again: what a scheduler removes stays removed."""

from __future__ import annotations

import asyncio
import logging

import sqlalchemy as sa

from consult.accounts.passwords import hash_password
from consult.booking import repository as booking_repo
from consult.booking.hours import generate_slots
from consult.booking.policy import SlotKind, WeeklyHours, overlapping_hours
from consult.clock import Clock
from consult.results.demo_results import seed_demo_results
from consult.storage import tables as t
from consult.storage.uow import Connection, Database

log = logging.getLogger(__name__)

DEMO_PASSWORD = "demo1234"
# The demo staff's TOTP secret (base32), documented in README.md: add it to an authenticator
# app, or `python -c "import pyotp; print(pyotp.TOTP('DEMOCONSULTSTAFFTOTP2345').now())"`.
DEMO_TOTP_SECRET = "DEMOCONSULTSTAFFTOTP2345"

SPECIALTIES = {
    "internal-medicine": "Internal medicine",
    "paediatrics": "Paediatrics",
    "dermatology": "Dermatology",
    "psychiatry": "Psychiatry",
    "physiotherapy": "Physiotherapy",
    "cardiology": "Cardiology",
    "rehabilitation": "Rehabilitation",
}
# Booked only with the patient's referral to it (specialties.referral_required).
REFERRAL_REQUIRED = {"rehabilitation"}

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
    (
        "dr.move@demo.test",
        "Dr Ola Ruch",
        "doctor",
        "verified",
        None,
        ["physiotherapy", "rehabilitation"],
    ),
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
    ("dr.move@demo.test", "rehabilitation", "stationary", WEEKDAYS, "16:00", "18:00", 30),
    ("dr.heart@demo.test", "cardiology", "stationary", WEEKDAYS, "08:00", "12:00", 20),
    ("dr.heart@demo.test", "cardiology", "online", WEEKDAYS, "12:00", "16:00", 20),
]


async def seed_demo(db: Database, clock: Clock) -> int:
    """Create whatever of the demo was never created (a demo doctor's weekly hours only with
    the doctor or with a new specialty); returns the number of users created."""
    async with db.reader() as uow:
        have = set((await uow.conn.execute(sa.select(t.users.c.email))).scalars())
    # Hashed before the write transaction: it must not hold the writer for a second.
    hashes = await _password_hashes([user[0] for user in USERS if user[0] not in have])
    async with db.uow() as uow:
        conn = uow.conn
        new_specialties = await _seed_specialties(conn)
        await _seed_plans(conn, new_specialties)
        created, new_doctors = await _seed_users(conn, hashes, clock)
        await _seed_schedules(conn, new_doctors)
        await _seed_new_specialties_of_old_doctors(conn, new_specialties, new_doctors, clock)
        await _fill_identifiers(conn)
        await _fill_totp(conn, clock)
        slots = await generate_slots(uow, clock.now(), SLOT_DAYS)
        results = await seed_demo_results(uow, clock.now())
        await uow.commit()
    log.info("demo data: %d users created, %d slots opened, %d results", created, slots, results)
    return created


async def _seed_specialties(conn: Connection) -> set[str]:
    """The demo specialties never created; returns their codes."""
    have = set((await conn.execute(sa.select(t.specialties.c.code))).scalars())
    new = [code for code in SPECIALTIES if code not in have]
    if new:
        await conn.execute(
            t.specialties.insert(),
            [
                {"code": c, "name": SPECIALTIES[c], "referral_required": c in REFERRAL_REQUIRED}
                for c in new
            ],
        )
    return set(new)


async def _seed_plans(conn: Connection, new_specialties: set[str]) -> None:
    """New plans with their coverage; plans that existed cover the demo specialties created
    just now that they list."""
    have = set((await conn.execute(sa.select(t.plans.c.code))).scalars())
    coverage = []
    for code, (name, covered) in PLANS.items():
        if code not in have:
            await conn.execute(t.plans.insert().values(code=code, name=name))
        coverage += [
            {"plan_code": code, "specialty_code": s}
            for s in covered
            if code not in have or s in new_specialties
        ]
    if coverage:
        await conn.execute(t.plan_specialties.insert(), coverage)


async def _seed_users(
    conn: Connection, hashes: dict[str, str], clock: Clock
) -> tuple[int, dict[str, int]]:
    """The demo users never created (doctors with their specialties); returns how many, and
    the new doctors (email -> id)."""
    have = set((await conn.execute(sa.select(t.users.c.email))).scalars())
    created = 0
    new_doctors: dict[str, int] = {}
    for email, name, role, identity, plan, specialties in USERS:
        if email in have:
            continue
        uid = (
            await conn.execute(
                t.users.insert()
                .values(
                    email=email,
                    # Hashed before unless the user vanished between the two reads.
                    password_hash=hashes.get(email) or await _password_hash(email),
                    role=role,
                    identity=identity,
                    name=name,
                    plan_code=plan,
                    created_at=clock.now(),
                    email_confirmed_at=clock.now(),
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
    return created, new_doctors


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


async def _fill_totp(conn: Connection, clock: Clock) -> None:
    """Demo staff log in with DEMO_TOTP_SECRET's codes (staff always use a second factor); a
    secret a user set up stays."""
    staff = [email for email, _, role, *_ in USERS if role in ("doctor", "scheduler")]
    await conn.execute(
        t.users.update()
        .where(t.users.c.email.in_(staff), t.users.c.totp_enabled_at.is_(None))
        .values(totp_secret=DEMO_TOTP_SECRET, totp_enabled_at=clock.now())
    )


def _minute(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _hours_rows(
    email: str, doctor_id: int, specialties: set[str] | None = None
) -> list[WeeklyHours]:
    """The doctor's demo weekly hours (of ``specialties`` only, if given)."""
    return [
        WeeklyHours(
            doctor_id=doctor_id,
            specialty=specialty,
            kind=SlotKind(kind),
            weekday=day,
            start_minute=_minute(start),
            end_minute=_minute(end),
            slot_minutes=minutes,
            timezone=DEMO_TIMEZONE,
        )
        for who, specialty, kind, days, start, end, minutes in SCHEDULES
        if who == email and (specialties is None or specialty in specialties)
        for day in days
    ]


async def _insert_hours(conn: Connection, hours: list[WeeklyHours]) -> None:
    if hours:
        await conn.execute(
            t.schedules.insert(),
            [
                {
                    "doctor_id": h.doctor_id,
                    "specialty_code": h.specialty,
                    "kind": str(h.kind),
                    "weekday": h.weekday,
                    "start_minute": h.start_minute,
                    "end_minute": h.end_minute,
                    "slot_minutes": h.slot_minutes,
                    "timezone": h.timezone,
                }
                for h in hours
            ],
        )


async def _seed_schedules(conn: Connection, doctors: dict[str, int]) -> None:
    """The demo weekly hours of the demo doctors created just now (email -> id). Never for a
    doctor who existed before: whether they have hours is then the schedulers' business (a
    doctor with none had them all removed, and must not get them back at the next start)."""
    await _insert_hours(
        conn, [h for email, uid in doctors.items() for h in _hours_rows(email, uid)]
    )


async def _seed_new_specialties_of_old_doctors(
    conn: Connection, new_specialties: set[str], new_doctors: dict[str, int], clock: Clock
) -> None:
    """Demo doctors who existed before the specialties created just now: those of them the demo
    gives them, with their demo hours of them, less hours overlapping the doctor's own."""
    if not new_specialties:
        return
    doctors = await conn.execute(
        sa.select(t.users.c.email, t.users.c.id).where(t.users.c.role == "doctor")
    )
    ids: dict[str, int] = {r.email: r.id for r in doctors}
    for email, *_, specialties in USERS:
        adding = new_specialties.intersection(specialties)
        if not adding or email in new_doctors or email not in ids:
            continue
        uid = ids[email]
        await conn.execute(
            t.doctor_specialties.insert(),
            [{"doctor_id": uid, "specialty_code": s} for s in sorted(adding)],
        )
        rows = await conn.execute(sa.select(t.schedules).where(t.schedules.c.doctor_id == uid))
        have = [booking_repo.weekly_hours(r) for r in rows]
        fitting = [
            h
            for h in _hours_rows(email, uid, adding)
            if overlapping_hours(h, have, clock.now()) is None
        ]
        await _insert_hours(conn, fitting)
        log.info("demo data: %s now practises %s", email, ", ".join(sorted(adding)))
