"""Document rows, read and written inside a unit of work."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from consult.chat.shared_documents import document_ref as shared_document_ref
from consult.clock import as_utc
from consult.documents.schemas import DocumentOut
from consult.domain import ConsultationStatus
from consult.schemas import DocumentRefOut
from consult.storage import tables as t
from consult.storage.uow import UnitOfWork

_D = t.documents.c


def document_ref(row: Any) -> DocumentRefOut:
    """A document row as a chat message that shared it shows it."""
    return shared_document_ref(
        row.id, row.filename, row.description, row.content_type, row.size, row.deleted_at
    )


def document_url(document_id: int) -> str:
    return f"/api/documents/{document_id}/content"


def document_out(row: Any) -> DocumentOut:
    return DocumentOut(
        id=row.id,
        patient_id=row.patient_id,
        filename=row.filename,
        description=row.description,
        content_type=row.content_type,
        size=row.size,
        sha256=row.sha256,
        created_at=as_utc(row.created_at),
        url=document_url(row.id),
    )


async def load(uow: UnitOfWork, document_id: int) -> Any:
    return (await uow.conn.execute(sa.select(t.documents).where(_D.id == document_id))).first()


async def current(uow: UnitOfWork, patient_id: int) -> list[Any]:
    """The patient's documents that are not deleted, oldest first."""
    rows = await uow.conn.execute(
        sa.select(t.documents)
        .where(_D.patient_id == patient_id, _D.deleted_at.is_(None))
        .order_by(_D.id)
    )
    return list(rows)


async def count_current(uow: UnitOfWork, patient_id: int) -> int:
    return int(
        (
            await uow.conn.execute(
                sa.select(sa.func.count())
                .select_from(t.documents)
                .where(_D.patient_id == patient_id, _D.deleted_at.is_(None))
            )
        ).scalar_one()
    )


async def insert(uow: UnitOfWork, **values: Any) -> int:
    return int(
        (
            await uow.conn.execute(t.documents.insert().values(**values).returning(_D.id))
        ).scalar_one()
    )


async def mark_deleted(uow: UnitOfWork, document_id: int, at: Any) -> None:
    await uow.conn.execute(
        t.documents.update()
        .where(_D.id == document_id, _D.deleted_at.is_(None))
        .values(deleted_at=at)
    )


def _consulting_now(doctor_id: int, patient_id: int) -> sa.Select[Any]:
    """The doctor's active consultations with the patient, which they accepted
    (``consultation_doctors``) and are its doctor still."""
    c, cd = t.consultations.c, t.consultation_doctors.c
    return (
        sa.select(c.id)
        .join(t.consultation_doctors, cd.consultation_id == c.id)
        .where(
            cd.doctor_id == doctor_id,
            c.doctor_id == doctor_id,
            c.patient_id == patient_id,
            c.status == ConsultationStatus.ACTIVE,
        )
    )


def _shared_into_accepted(doctor_id: int, document_id: Any) -> sa.Select[Any]:
    """The consultations the doctor accepted (``consultation_doctors``: also one taken over by
    another doctor since) into which the document was shared."""
    m, cd = t.messages.c, t.consultation_doctors.c
    return (
        sa.select(cd.consultation_id)
        .select_from(
            t.messages.join(t.consultation_doctors, cd.consultation_id == m.consultation_id)
        )
        .where(m.document_id == document_id, cd.doctor_id == doctor_id)
    )


def doctor_may_open(doctor_id: int, patient_id: int) -> sa.ColumnElement[bool]:
    """As a condition on ``documents`` rows of the patient's: the doctor may open the document
    (``download``'s rule): all while consulting the patient now, else those shared into a
    consultation they accepted."""
    return sa.or_(
        _consulting_now(doctor_id, patient_id).exists(),
        _shared_into_accepted(doctor_id, _D.id).exists(),
    )


async def doctor_consults(uow: UnitOfWork, doctor_id: int, patient_id: int) -> bool:
    """Whether the doctor is consulting the patient now: an active consultation they accepted
    (``consultation_doctors``) and are its doctor still."""
    row = (await uow.conn.execute(_consulting_now(doctor_id, patient_id).limit(1))).first()
    return row is not None


async def consulting_doctors(uow: UnitOfWork, patient_id: int) -> list[int]:
    """The doctors consulting the patient now (their active consultations)."""
    c = t.consultations.c
    rows = await uow.conn.execute(
        sa.select(c.doctor_id)
        .distinct()
        .where(
            c.patient_id == patient_id,
            c.status == ConsultationStatus.ACTIVE,
            c.doctor_id.is_not(None),
        )
        .order_by(c.doctor_id)
    )
    return [int(r.doctor_id) for r in rows]


async def shared_with(uow: UnitOfWork, doctor_id: int, document_id: int) -> int | None:
    """A consultation the doctor accepted (``consultation_doctors``: also one taken over by
    another doctor since) into which the document was shared, if any. Being offered the
    consultation gives nothing."""
    statement = _shared_into_accepted(doctor_id, document_id).limit(1)
    row = (await uow.conn.execute(statement)).first()
    return int(row.consultation_id) if row else None
