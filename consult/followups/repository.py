"""Follow-up rows, read and written inside a unit of work."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from consult.clock import as_utc
from consult.schemas import FollowUpOut, PersonOut
from consult.storage import tables as t
from consult.storage.uow import UnitOfWork

_F = t.follow_ups.c
_patient = t.users.alias("fu_patient")
_doctor = t.users.alias("fu_doctor")

_FOLLOW_UP = (
    sa.select(
        t.follow_ups,
        _patient.c.name.label("patient_name"),
        _doctor.c.name.label("doctor_name"),
    )
    .join(_patient, _patient.c.id == _F.patient_id)
    .join(_doctor, _doctor.c.id == _F.doctor_id)
)


def follow_up_out(row: Any) -> FollowUpOut:
    return FollowUpOut(
        id=row.id,
        consultation_id=row.consultation_id,
        patient=PersonOut(id=row.patient_id, name=row.patient_name),
        doctor=PersonOut(id=row.doctor_id, name=row.doctor_name),
        question=row.question,
        asked_at=as_utc(row.asked_at),
        answer=row.answer,
        answered_at=as_utc(row.answered_at) if row.answered_at is not None else None,
    )


async def list_follow_ups(uow: UnitOfWork, *where: Any) -> list[FollowUpOut]:
    rows = await uow.conn.execute(_FOLLOW_UP.where(*where).order_by(_F.asked_at, _F.id))
    return [follow_up_out(r) for r in rows]


async def load(uow: UnitOfWork, follow_up_id: int) -> FollowUpOut | None:
    found = await list_follow_ups(uow, _F.id == follow_up_id)
    return found[0] if found else None


async def lock(uow: UnitOfWork, follow_up_id: int) -> Any:
    return (
        await uow.conn.execute(
            sa.select(t.follow_ups).where(_F.id == follow_up_id).with_for_update()
        )
    ).first()


async def by_client_id(
    uow: UnitOfWork, consultation_id: int, patient_id: int, client_id: str
) -> FollowUpOut | None:
    """The question this patient already sent with this client id about this consultation."""
    found = await list_follow_ups(
        uow,
        _F.consultation_id == consultation_id,
        _F.patient_id == patient_id,
        _F.client_id == client_id,
    )
    return found[0] if found else None


async def insert_new(uow: UnitOfWork, **values: Any) -> int | None:
    """Inserts the question; None if one with the same consultation, patient and client id is
    stored already (a concurrent repeat committed first: the database waits for it, then skips
    the row, instead of raising an IntegrityError that would abort the transaction)."""
    insert: Any = pg_insert if uow.dialect == "postgresql" else sqlite_insert
    statement = (
        insert(t.follow_ups)
        .values(**values)
        # The columns of uq_follow_ups_client_id.
        .on_conflict_do_nothing(index_elements=["consultation_id", "patient_id", "client_id"])
        .returning(_F.id)
    )
    found = (await uow.conn.execute(statement)).scalar_one_or_none()
    return None if found is None else int(found)


async def answer(uow: UnitOfWork, follow_up_id: int, text: str, client_id: str, at: Any) -> bool:
    """Stores the answer unless there is one already; False when there was."""
    result = await uow.conn.execute(
        t.follow_ups.update()
        .where(_F.id == follow_up_id, _F.answered_at.is_(None))
        .values(answer=text, answered_at=at, answer_client_id=client_id)
    )
    return bool(result.rowcount)


async def of_patient(uow: UnitOfWork, patient_id: int) -> list[FollowUpOut]:
    return await list_follow_ups(uow, _F.patient_id == patient_id)


async def inbox(uow: UnitOfWork, doctor_id: int, *, answered: bool) -> list[FollowUpOut]:
    state = _F.answered_at.is_not(None) if answered else _F.answered_at.is_(None)
    return await list_follow_ups(uow, _F.doctor_id == doctor_id, state)
