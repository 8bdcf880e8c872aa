"""SQL of the record: which consultations it holds, a page at a time; its recommendations."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from consult.clock import as_utc
from consult.domain import ConsultationStatus, Role
from consult.records.schemas import RecommendationOut
from consult.schemas import PersonOut
from consult.storage import tables as t
from consult.storage.uow import UnitOfWork

_C = t.consultations.c


def _in_record(patient_id: int) -> list[sa.ColumnElement[bool]]:
    # Cancelled ones are left out: a ticket given up in the queue, or an interrupted
    # consultation whose patient never came back.
    return [_C.patient_id == patient_id, _C.status != ConsultationStatus.CANCELLED]


async def patient(uow: UnitOfWork, patient_id: int) -> Any:
    return (
        await uow.conn.execute(
            sa.select(t.users.c.id, t.users.c.name).where(
                t.users.c.id == patient_id, t.users.c.role == Role.PATIENT
            )
        )
    ).first()


async def page_ids(uow: UnitOfWork, patient_id: int, before: int | None, count: int) -> list[int]:
    """The ids of the record's ``count`` newest consultations older than ``before``, newest
    first."""
    where = _in_record(patient_id)
    if before is not None:
        where.append(_C.id < before)
    rows = await uow.conn.execute(
        sa.select(_C.id).where(*where).order_by(_C.id.desc()).limit(count)
    )
    return list(rows.scalars())


async def in_record(uow: UnitOfWork, patient_id: int, consultation_id: int) -> bool:
    row = await uow.conn.execute(
        sa.select(_C.id).where(_C.id == consultation_id, *_in_record(patient_id))
    )
    return row.first() is not None


async def recommendations(
    uow: UnitOfWork, where: sa.ColumnElement[bool]
) -> list[RecommendationOut]:
    """The recommendations matching ``where``, in the order written, with their doctor."""
    rows = await uow.conn.execute(
        sa.select(t.recommendations, t.users.c.name.label("doctor_name"))
        .join(t.users, t.users.c.id == t.recommendations.c.doctor_id)
        .where(where)
        .order_by(t.recommendations.c.id)
    )
    return [
        RecommendationOut(
            id=r.id,
            consultation_id=r.consultation_id,
            doctor=PersonOut(id=r.doctor_id, name=r.doctor_name),
            text=r.text,
            created_at=as_utc(r.created_at),
        )
        for r in rows
    ]
