"""Identity requests' rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from consult.domain import Identity
from consult.storage import tables as t
from consult.storage.uow import UnitOfWork

_r = t.identity_requests


async def lock_user(uow: UnitOfWork, user_id: int) -> None:
    """One request at a time per patient (a PostgreSQL row lock; SQLite has one writer)."""
    await uow.conn.execute(
        sa.select(t.users.c.id).where(t.users.c.id == user_id).with_for_update(key_share=True)
    )


async def identity_of(uow: UnitOfWork, user_id: int) -> Identity:
    found = await uow.conn.execute(sa.select(t.users.c.identity).where(t.users.c.id == user_id))
    return Identity(found.scalar_one())


async def latest(uow: UnitOfWork, user_id: int) -> Any:
    return (
        await uow.conn.execute(
            sa.select(_r).where(_r.c.user_id == user_id).order_by(_r.c.id.desc()).limit(1)
        )
    ).first()


async def add_request(uow: UnitOfWork, user_id: int, pesel: str, now: datetime) -> int:
    return int(
        (
            await uow.conn.execute(
                _r.insert()
                .values(user_id=user_id, pesel=pesel, status="pending", requested_at=now)
                .returning(_r.c.id)
            )
        ).scalar_one()
    )


async def pending(uow: UnitOfWork) -> list[Any]:
    u = t.users
    return list(
        (
            await uow.conn.execute(
                sa.select(_r, u.c.name, u.c.email)
                .join(u, u.c.id == _r.c.user_id)
                .where(_r.c.status == "pending")
                .order_by(_r.c.requested_at, _r.c.id)
                .limit(200)
            )
        ).all()
    )


async def lock_request(uow: UnitOfWork, request_id: int) -> Any:
    return (
        await uow.conn.execute(sa.select(_r).where(_r.c.id == request_id).with_for_update())
    ).first()


async def decide(
    uow: UnitOfWork, request_id: int, status: str, by: int, now: datetime, note: str
) -> None:
    await uow.conn.execute(
        _r.update()
        .where(_r.c.id == request_id)
        .values(status=status, decided_by=by, decided_at=now, note=note[:200])
    )


async def set_verified(uow: UnitOfWork, user_id: int, pesel: str) -> None:
    await uow.conn.execute(
        t.users.update()
        .where(t.users.c.id == user_id)
        .values(identity=Identity.VERIFIED.value, pesel=pesel)
    )
