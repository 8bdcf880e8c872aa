"""Consultation and presence rows, read and written inside a unit of work (the sweeper's too)."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from consult.clock import as_utc
from consult.domain import QUEUED_STATUSES, ConsultationStatus, PresenceStatus
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
_ROW = sa.select(t.consultations).where(t.consultations.c.id == sa.bindparam("consultation_id"))
_LOCK = _ROW.with_for_update()


async def load_consultation(uow: UnitOfWork, consultation_id: int) -> ConsultationOut | None:
    row = (await uow.conn.execute(_ONE, {"consultation_id": consultation_id})).first()
    return consultation_out(row) if row else None


async def list_consultations(uow: UnitOfWork, *where: Any) -> list[ConsultationOut]:
    rows = await uow.conn.execute(_CONSULTATION.where(*where).order_by(t.consultations.c.id))
    return [consultation_out(r) for r in rows]


async def lock_consultation(uow: UnitOfWork, consultation_id: int, *, lock: bool = True) -> Any:
    """The consultation's row, locked (unless ``lock`` is False: reads that must not wait)."""
    statement = _LOCK if lock else _ROW
    return (await uow.conn.execute(statement, {"consultation_id": consultation_id})).first()


def presence_columns() -> list[Any]:
    """``doctor_presence``'s columns, its JSON lists read as their raw text: decode them with
    ``code_set``. Every ticket, push and match reads every doctor's presence, and decoding the
    same few lists again each time was a large share of a busy server's time
    (docs/decisions/2026-11-29-queue-pushes-and-estimates.md)."""
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


async def doctor_queues(uow: UnitOfWork, doctor_id: int) -> Any:
    """The doctor's presence (specialties, forms), or None."""
    return (
        await uow.conn.execute(sa.select(_P.specialties, _P.forms).where(_P.doctor_id == doctor_id))
    ).first()


# --- the sweeper's --------------------------------------------------------------------------

_P = t.doctor_presence.c
_C = t.consultations.c


async def lock_lapsed_offers(uow: UnitOfWork, now: datetime) -> list[Any]:
    """Offers whose time ran out, locked (those another transaction holds skipped)."""
    rows = await uow.conn.execute(
        sa.select(t.consultations)
        .where(_C.status == ConsultationStatus.OFFERED, _C.offer_expires_at <= now)
        .with_for_update(skip_locked=True)
    )
    return list(rows.all())


async def lock_offers(uow: UnitOfWork, doctor_id: int) -> list[Any]:
    """The doctor's offers not yet answered, locked (consultation rows before presence rows),
    in queue order: the first in line gets the next free doctor."""
    return list(
        (
            await uow.conn.execute(
                sa.select(t.consultations)
                .where(_C.doctor_id == doctor_id, _C.status == ConsultationStatus.OFFERED)
                .order_by(_C.rank_at, _C.id)
                .with_for_update()
            )
        ).all()
    )


async def attentive_doctors(uow: UnitOfWork, doctor_ids: Iterable[int]) -> set[int]:
    """Of these doctors, those online with a connected console (their rows are locked by the
    sweep)."""
    ids = sorted(set(doctor_ids))
    if not ids:
        return set()
    return set((await uow.conn.execute(_ATTENTIVE, {"doctor_ids": ids})).scalars())


async def leases_run_out(uow: UnitOfWork, disconnected_by: datetime) -> list[int]:
    """Doctors whose console has been gone since ``disconnected_by`` or earlier."""
    rows = await uow.conn.execute(
        sa.select(_P.doctor_id).where(_P.disconnected_at <= disconnected_by)
    )
    return list(rows.scalars().all())


async def lock_doctor_consultations(uow: UnitOfWork, doctor_id: int) -> list[Any] | None:
    """The doctor's active and offered consultations, locked; None if another transaction
    holds one of them."""
    theirs = (
        _C.doctor_id == doctor_id,
        _C.status.in_([ConsultationStatus.ACTIVE, ConsultationStatus.OFFERED]),
    )
    rows = (
        await uow.conn.execute(
            sa.select(t.consultations).where(*theirs).with_for_update(skip_locked=True)
        )
    ).all()
    total = (
        await uow.conn.execute(
            sa.select(sa.func.count()).select_from(t.consultations).where(*theirs)
        )
    ).scalar_one()
    return list(rows) if len(rows) == total else None


async def lock_lapsed_lease(uow: UnitOfWork, doctor_id: int) -> str | None:
    """The status of the doctor whose console is still gone, locked; None if it came back."""
    return (
        await uow.conn.execute(
            sa.select(_P.status)
            .where(_P.doctor_id == doctor_id, _P.disconnected_at.is_not(None))
            .with_for_update()
        )
    ).scalar()


async def end_lease(uow: UnitOfWork, doctor_id: int, status: str, since: datetime) -> None:
    await uow.conn.execute(
        t.doctor_presence.update()
        .where(_P.doctor_id == doctor_id)
        .values(disconnected_at=None, status=status, since=since)
    )


async def requeue(uow: UnitOfWork, consultation_id: int, priority: int, rank: datetime) -> None:
    """Back to waiting, without a doctor, ranked at ``rank``."""
    await uow.conn.execute(
        t.consultations.update()
        .where(_C.id == consultation_id)
        .values(status=ConsultationStatus.WAITING, doctor_id=None, priority=priority, rank_at=rank)
    )


async def lock_abandoned(uow: UnitOfWork, disconnected_by: datetime) -> list[Any]:
    """Open tickets whose patient has been gone since ``disconnected_by`` or earlier, locked."""
    rows = await uow.conn.execute(
        sa.select(t.consultations)
        .where(_C.status.in_(QUEUED_STATUSES), _C.patient_disconnected_at <= disconnected_by)
        .with_for_update(skip_locked=True)
    )
    return list(rows.all())


async def cancel(uow: UnitOfWork, row: Any, now: datetime) -> None:
    """The ticket is cancelled (an active consultation keeps its doctor on record)."""
    await uow.conn.execute(
        t.consultations.update()
        .where(_C.id == row.id)
        .values(
            status=ConsultationStatus.CANCELLED,
            ended_at=now,
            doctor_id=None if row.status != ConsultationStatus.ACTIVE else row.doctor_id,
            offer_expires_at=None,
        )
    )


_ATTENTIVE = sa.select(_P.doctor_id).where(
    _P.doctor_id.in_(sa.bindparam("doctor_ids", expanding=True)),
    _P.status == PresenceStatus.ONLINE,
    _P.disconnected_at.is_(None),
)
