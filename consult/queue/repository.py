"""Consultation and presence rows, read and written inside a unit of work."""

from __future__ import annotations

import functools
import json
from typing import Any

import sqlalchemy as sa

from consult.clock import as_utc
from consult.domain import ConsultationStatus
from consult.schemas import ConsultationOut, PersonOut, SpecialtyOut
from consult.storage import tables as t
from consult.storage.uow import UnitOfWork

_patient = t.users.alias("patient")
_doctor = t.users.alias("doctor")

_CONSULTATION = (
    sa.select(
        t.consultations,
        _patient.c.name.label("patient_name"),
        _doctor.c.name.label("doctor_name"),
        t.specialties.c.name.label("specialty_name"),
    )
    .join(_patient, _patient.c.id == t.consultations.c.patient_id)
    .outerjoin(_doctor, _doctor.c.id == t.consultations.c.doctor_id)
    .join(t.specialties, t.specialties.c.code == t.consultations.c.specialty_code)
)


def consultation_out(row: Any) -> ConsultationOut:
    def ts(value: Any) -> Any:
        return as_utc(value) if value is not None else None

    return ConsultationOut(
        id=row.id,
        status=row.status,
        specialty=SpecialtyOut(code=row.specialty_code, name=row.specialty_name),
        form=row.form,
        patient=PersonOut(id=row.patient_id, name=row.patient_name),
        doctor=PersonOut(id=row.doctor_id, name=row.doctor_name) if row.doctor_id else None,
        created_at=ts(row.created_at),
        started_at=ts(row.started_at),
        ended_at=ts(row.ended_at),
        language=row.language,
        # An offer's deadline, shown only while the ticket is offered (the column is cleared
        # whenever an offer ends; before migration 0009 a waiting ticket kept a decline's end).
        offer_expires_at=(
            ts(row.offer_expires_at) if row.status == ConsultationStatus.OFFERED else None
        ),
    )


# Built once (bound by id): read on every offer, accept, end and ticket.
_ONE = _CONSULTATION.where(t.consultations.c.id == sa.bindparam("consultation_id"))
_LOCK = (
    sa.select(t.consultations)
    .where(t.consultations.c.id == sa.bindparam("consultation_id"))
    .with_for_update()
)


async def load_consultation(uow: UnitOfWork, consultation_id: int) -> ConsultationOut | None:
    row = (await uow.conn.execute(_ONE, {"consultation_id": consultation_id})).first()
    return consultation_out(row) if row else None


async def list_consultations(uow: UnitOfWork, *where: Any) -> list[ConsultationOut]:
    rows = await uow.conn.execute(_CONSULTATION.where(*where).order_by(t.consultations.c.id))
    return [consultation_out(r) for r in rows]


async def lock_consultation(uow: UnitOfWork, consultation_id: int) -> Any:
    return (await uow.conn.execute(_LOCK, {"consultation_id": consultation_id})).first()


def presence_columns() -> list[Any]:
    """``doctor_presence``'s columns, its JSON lists read as their raw text: decode them with
    ``code_set``. Every ticket, push and match reads every doctor's presence, and decoding the
    same few lists again each time was a sixth of a busy server's time (queue_bench)."""
    p = t.doctor_presence.c
    lists = {"specialties", "forms", "languages"}
    return [
        sa.type_coerce(column, sa.Text).label(column.name) if column.name in lists else column
        for column in p
    ]


def seconds_between(
    dialect: str, later: sa.ColumnElement[Any], earlier: sa.ColumnElement[Any]
) -> sa.ColumnElement[Any]:
    """``later - earlier`` in seconds, worked out by the database: tickets and pushes read every
    busy doctor's start and the recent consultations' lengths, and parsing those timestamps in
    Python (SQLite keeps text) cost more than the queries (queue_bench)."""
    if dialect == "sqlite":
        return (sa.func.julianday(later) - sa.func.julianday(earlier)) * 86400.0
    return sa.extract("epoch", later - earlier)


def code_set(raw: str | list[str] | None) -> frozenset[str]:
    """A presence list as a set. SQLite gives JSON text, decoded once per distinct list;
    asyncpg decodes JSON in the driver and gives the list."""
    if isinstance(raw, str):
        return _decoded(raw)
    return frozenset(raw or ())


@functools.lru_cache(maxsize=4096)
def _decoded(raw: str) -> frozenset[str]:
    return frozenset(json.loads(raw))
