"""Demo data: specialties, plans, doctors, patients and a scheduler. Idempotent: seeding twice
changes nothing, so ``consult serve --demo`` can run it at every start."""

from __future__ import annotations

import asyncio
import logging

import sqlalchemy as sa

from consult.accounts.passwords import hash_password
from consult.clock import Clock
from consult.storage import tables as t
from consult.storage.uow import Database

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


async def seed_demo(db: Database, clock: Clock) -> int:
    """Insert whatever of the demo is missing; returns the number of users created."""
    password_hash = await asyncio.to_thread(hash_password, DEMO_PASSWORD)
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
        for email, name, role, identity, plan, specialties in USERS:
            if email in have:
                continue
            uid = (
                await conn.execute(
                    t.users.insert()
                    .values(
                        email=email,
                        password_hash=password_hash,
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
            created += 1
        await uow.commit()
    log.info("demo data: %d users created", created)
    return created
