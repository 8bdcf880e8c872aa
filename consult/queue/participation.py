"""Who takes part in a consultation, the rule every clinical access check rests on.

The patient always does. A doctor takes part from the moment they accept it, and keeps the
right to read it (transcript, documents shared into it, recordings, the patient's record) after
it is interrupted and taken by another doctor: ``consultation_doctors`` keeps every doctor who
accepted (migration 0010). A doctor only *offered* a ticket (``consultations.doctor_id`` while
it is ``offered``) gets nothing of it beyond the offer itself.

Acting in a consultation (chat, calls, receipts, recommendations) is for the two people in it
now: the patient and the doctor who accepted it last (``is_party``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from consult.domain import Actor, ConsultationStatus
from consult.storage import tables as t
from consult.storage.uow import UnitOfWork

_CD = t.consultation_doctors.c
_C = t.consultations.c

# Statuses in which ``consultations.doctor_id`` names a doctor who accepted (an offered ticket
# names one who has not; a waiting or cancelled one names nobody who counts).
_ACCEPTED = (ConsultationStatus.ACTIVE, ConsultationStatus.ENDED)

_INSERT = t.consultation_doctors.insert()
_ONE = sa.select(_CD.doctor_id).where(
    _CD.consultation_id == sa.bindparam("cid"), _CD.doctor_id == sa.bindparam("doctor_id")
)


def is_party(actor: Actor, row: Any) -> bool:
    """The patient, or the doctor consulting now (or last, once it ended): the two who act in
    the consultation. ``row`` has ``patient_id``, ``doctor_id`` and ``status``."""
    if actor.user_id == row.patient_id:
        return True
    return actor.is_doctor and actor.user_id == row.doctor_id and row.status in _ACCEPTED


async def may_read(uow: UnitOfWork, actor: Actor, row: Any) -> bool:
    """The patient, or any doctor who ever accepted the consultation."""
    if is_party(actor, row):
        return True
    if not actor.is_doctor:
        return False
    found = await uow.conn.execute(_ONE, {"cid": row.id, "doctor_id": actor.user_id})
    return found.first() is not None


async def record_acceptance(
    uow: UnitOfWork, consultation_id: int, doctor_id: int, at: datetime
) -> None:
    """The doctor accepted the consultation (again, after an interruption: kept once)."""
    found = await uow.conn.execute(_ONE, {"cid": consultation_id, "doctor_id": doctor_id})
    if found.first() is None:
        await uow.conn.execute(
            _INSERT, {"consultation_id": consultation_id, "doctor_id": doctor_id, "accepted_at": at}
        )


async def may_read_record(uow: UnitOfWork, actor: Actor, patient_id: int) -> bool:
    """The patient's record (its pages, FHIR export, timeline): the patient themself, or a
    doctor who accepted a consultation of theirs, now or ever; a doctor only offered one, a
    scheduler and anyone else may not."""
    if actor.is_patient:
        return actor.user_id == patient_id
    return actor.is_doctor and await took_patient(uow, actor.user_id, patient_id)


async def took_patient(uow: UnitOfWork, doctor_id: int, patient_id: int) -> bool:
    """The doctor accepted a consultation of the patient's (now or ever)."""
    found = await uow.conn.execute(
        sa.select(_CD.consultation_id)
        .join(t.consultations, _C.id == _CD.consultation_id)
        .where(_CD.doctor_id == doctor_id, _C.patient_id == patient_id)
        .limit(1)
    )
    return found.first() is not None
