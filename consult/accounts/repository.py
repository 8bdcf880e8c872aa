"""User rows, read and locked inside a unit of work."""

from __future__ import annotations

import sqlalchemy as sa

from consult.storage import tables as t
from consult.storage.uow import UnitOfWork


async def lock_user(uow: UnitOfWork, user_id: int) -> None:
    """Serialise one user's writes: bookings, document uploads (a PostgreSQL row lock; SQLite
    serialises every writer). ``FOR NO KEY UPDATE``: rows that merely reference the user (a
    login's session) still go ahead."""
    await uow.conn.execute(
        sa.select(t.users.c.id).where(t.users.c.id == user_id).with_for_update(key_share=True)
    )
