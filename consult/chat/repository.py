"""Message rows."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from consult.clock import as_utc
from consult.schemas import MessageOut
from consult.storage import tables as t
from consult.storage.uow import UnitOfWork

_MESSAGE = sa.select(t.messages, t.users.c.role.label("sender_role")).join(
    t.users, t.users.c.id == t.messages.c.sender_id
)


def message_out(row: Any) -> MessageOut:
    return MessageOut(
        id=row.id,
        consultation_id=row.consultation_id,
        seq=row.seq,
        sender_id=row.sender_id,
        sender_role=row.sender_role,
        client_id=row.client_id,
        body=row.body,
        created_at=as_utc(row.created_at),
    )


async def messages_after(
    uow: UnitOfWork, consultation_id: int, after_seq: int = 0
) -> list[MessageOut]:
    rows = await uow.conn.execute(
        _MESSAGE.where(
            t.messages.c.consultation_id == consultation_id, t.messages.c.seq > after_seq
        ).order_by(t.messages.c.seq)
    )
    return [message_out(r) for r in rows]


async def message_by_client_id(
    uow: UnitOfWork, consultation_id: int, sender_id: int, client_id: str
) -> MessageOut | None:
    row = (
        await uow.conn.execute(
            _MESSAGE.where(
                t.messages.c.consultation_id == consultation_id,
                t.messages.c.sender_id == sender_id,
                t.messages.c.client_id == client_id,
            )
        )
    ).first()
    return message_out(row) if row else None
