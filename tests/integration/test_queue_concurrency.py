"""Exactly once under concurrency: two server instances on one database (each with its own
connection pool, as two processes would have), many doctors freeing at the same instant."""

from __future__ import annotations

import asyncio
import secrets
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from consult.accounts.service import token_hash
from consult.app import create_app
from consult.settings import Settings
from consult.storage import tables as t
from tests.support import ApiClient, SocketClient

DOCTORS = 8
PATIENTS = 16


async def add_users(database_url: str, clock, role: str, count: int) -> list[str]:
    """Users with ready sessions (tokens), inserted directly: logging in 24 users through argon2
    would only slow the test down."""
    engine = create_async_engine(database_url)
    tokens = []
    async with engine.begin() as conn:
        for i in range(count):
            uid = (
                await conn.execute(
                    t.users.insert()
                    .values(
                        email=f"{role}{i}@load.test",
                        password_hash="x",
                        role=role,
                        identity="verified",
                        name=f"{role} {i}",
                        plan_code="premium" if role == "patient" else None,
                        created_at=clock.now(),
                    )
                    .returning(t.users.c.id)
                )
            ).scalar_one()
            if role == "doctor":
                await conn.execute(
                    t.doctor_specialties.insert().values(
                        doctor_id=uid, specialty_code="internal-medicine"
                    )
                )
            token = secrets.token_urlsafe(16)
            await conn.execute(
                t.sessions.insert().values(
                    token_hash=token_hash(token),
                    user_id=uid,
                    created_at=clock.now(),
                    expires_at=clock.now() + timedelta(hours=1),
                )
            )
            tokens.append(token)
    await engine.dispose()
    return tokens


async def offered(database_url: str) -> list[tuple[int, int]]:
    engine = create_async_engine(database_url)
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(t.consultations.c.id, t.consultations.c.doctor_id).where(
                    t.consultations.c.status.in_(["offered", "active"])
                )
            )
        ).all()
    await engine.dispose()
    return [(r.id, r.doctor_id) for r in rows]


async def test_no_patient_goes_to_two_doctors_and_no_doctor_over_capacity(
    server, database_url, clock, aiohttp_server
):
    settings = Settings(database_url=database_url, migrate_on_start=False, sweep_interval=0)
    second = await aiohttp_server(create_app(settings, clock=clock))
    urls = [str(s.make_url("/")).rstrip("/") for s in (server, second)]
    patient_tokens = await add_users(database_url, clock, "patient", PATIENTS)
    doctor_tokens = await add_users(database_url, clock, "doctor", DOCTORS)

    clients = []
    for i, token in enumerate(patient_tokens):
        client = ApiClient(urls[i % 2])
        client.token = token
        clients.append(client)
    await asyncio.gather(
        *(
            c.call(
                "POST",
                "/api/consultations",
                {"specialty": "internal-medicine", "form": "chat"},
                expect=201,
            )
            for c in clients
        )
    )
    doctors = [
        await SocketClient().connect(urls[i % 2], token) for i, token in enumerate(doctor_tokens)
    ]
    try:
        presence = {"specialties": ["internal-medicine"], "forms": ["chat"]}
        acks = await asyncio.gather(*(d.emit("presence:online", presence) for d in doctors))
        assert all(a["ok"] for a in acks)
        first_round = await offered(database_url)
        assert len(first_round) == DOCTORS
        assert len({doctor for _, doctor in first_round}) == DOCTORS  # one each
        offers = [await d.next("queue:offer") for d in doctors]
        ids = [o["consultation"]["id"] for o in offers]
        assert sorted(ids) == sorted(cid for cid, _ in first_round)
        accepted = await asyncio.gather(
            *(
                d.emit("queue:accept", {"consultation_id": cid})
                for d, cid in zip(doctors, ids, strict=True)
            )
        )
        assert all(a["ok"] for a in accepted)

        # Every doctor frees up at the same instant, on both servers.
        ends = await asyncio.gather(
            *(
                _with_token(urls[i % 2], doctor_tokens[i]).call(
                    "POST", f"/api/consultations/{cid}/end", {}
                )
                for i, cid in enumerate(ids)
            )
        )
        assert all(e["status"] == "ended" for e in ends)
        second_round = await offered(database_url)
        assert len(second_round) == DOCTORS
        assert len({doctor for _, doctor in second_round}) == DOCTORS
        assert not {cid for cid, _ in second_round} & set(ids)  # nobody served twice
    finally:
        for d in doctors:
            await d.close()
        for c in clients + _made:
            await c.close()


_made: list[ApiClient] = []


def _with_token(url: str, token: str) -> ApiClient:
    client = ApiClient(url)
    client.token = token
    _made.append(client)
    return client
