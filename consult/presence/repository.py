"""Presence rows (``doctor_presence``), connection rows (``socket_connections``) and the
patients' connection marks on their consultations, read and written inside a unit of work."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from consult.domain import OPEN_STATUSES
from consult.storage import tables as t
from consult.storage.uow import UnitOfWork

_P = t.doctor_presence.c
_S = t.socket_connections.c
_C = t.consultations.c
_PROC = t.server_processes.c


async def put_presence(uow: UnitOfWork, doctor_id: int, values: dict[str, Any]) -> None:
    """The doctor's presence row set to ``values`` (made if they have none yet)."""
    updated = await uow.conn.execute(
        t.doctor_presence.update().where(_P.doctor_id == doctor_id).values(**values)
    )
    if updated.rowcount == 0:
        await uow.conn.execute(t.doctor_presence.insert().values(doctor_id=doctor_id, **values))


async def set_status(uow: UnitOfWork, doctor_id: int, status: str, since: datetime) -> bool:
    """Whether the doctor had a presence row to change."""
    changed = await uow.conn.execute(
        t.doctor_presence.update()
        .where(_P.doctor_id == doctor_id)
        .values(status=status, since=since)
    )
    return bool(changed.rowcount)


async def add_connection(
    uow: UnitOfWork, sid: str, process_id: str, user_id: int, at: datetime
) -> None:
    await uow.conn.execute(
        t.socket_connections.insert().values(
            sid=sid, process_id=process_id, user_id=user_id, connected_at=at
        )
    )


async def remove_connection(uow: UnitOfWork, sid: str) -> None:
    await uow.conn.execute(t.socket_connections.delete().where(_S.sid == sid))


async def remove_process_connections(uow: UnitOfWork, user_id: int, process_id: str) -> None:
    await uow.conn.execute(
        t.socket_connections.delete().where(_S.user_id == user_id, _S.process_id == process_id)
    )


async def connected_elsewhere(
    uow: UnitOfWork, user_id: int, process_id: str, alive_since: datetime
) -> bool:
    """Whether the user holds a connection in this process or in one whose heartbeat is no
    older than ``alive_since``."""
    live = sa.select(_PROC.id).where(_PROC.heartbeat_at >= alive_since).scalar_subquery()
    found = await uow.conn.execute(
        sa.select(_S.sid)
        .where(_S.user_id == user_id, sa.or_(_S.process_id == process_id, _S.process_id.in_(live)))
        .limit(1)
    )
    return found.first() is not None


async def doctor_back(uow: UnitOfWork, doctor_id: int) -> bool:
    """The doctor's console is back: whether their lease was running out."""
    back = await uow.conn.execute(
        t.doctor_presence.update()
        .where(_P.doctor_id == doctor_id, _P.disconnected_at.is_not(None))
        .values(disconnected_at=None)
    )
    return bool(back.rowcount)


async def doctor_gone(uow: UnitOfWork, doctor_id: int, at: datetime, keep_earlier: bool) -> bool:
    """The doctor's grace starts ``at`` (an earlier start kept with ``keep_earlier``); whether
    a presence row changed."""
    # Whatever the status: an away doctor may still be consulting.
    where = [_P.doctor_id == doctor_id]
    if keep_earlier:
        where.append(_P.disconnected_at.is_(None))
    gone = await uow.conn.execute(
        t.doctor_presence.update().where(*where).values(disconnected_at=at)
    )
    return bool(gone.rowcount)


async def patient_back(uow: UnitOfWork, patient_id: int) -> list[tuple[int, str]]:
    """The patient is back: (id, status) of their consultations that had marked them gone."""
    back = await uow.conn.execute(
        t.consultations.update()
        .where(_C.patient_id == patient_id, _C.patient_disconnected_at.is_not(None))
        .values(patient_disconnected_at=None)
        .returning(_C.id, _C.status)
    )
    return [(consultation_id, status) for consultation_id, status in back.all()]


async def patient_gone(uow: UnitOfWork, patient_id: int, at: datetime, keep_earlier: bool) -> None:
    # Active ones too: if their doctor is lost later, the ticket that returns to the queue must
    # still know its patient is gone.
    where = [_C.patient_id == patient_id, _C.status.in_(OPEN_STATUSES)]
    if keep_earlier:
        where.append(_C.patient_disconnected_at.is_(None))
    await uow.conn.execute(
        t.consultations.update().where(*where).values(patient_disconnected_at=at)
    )


async def presence_row(uow: UnitOfWork, doctor_id: int) -> Any:
    return (
        await uow.conn.execute(sa.select(t.doctor_presence).where(_P.doctor_id == doctor_id))
    ).first()
