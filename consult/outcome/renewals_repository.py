"""Renewal requests' SQL: the prescription asked about, the one open request per prescription,
decisions and hand-overs, and the requests read back as payloads (a fixed number of queries for
any number of requests)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from consult.clock import as_utc
from consult.outcome import repository as repo
from consult.outcome.issued import PackageOut, PrescriptionOut
from consult.outcome.renewal import RenewalStatus
from consult.outcome.renewal_payloads import RenewalOut, RenewalSpecialtyOut
from consult.schemas import PersonOut
from consult.storage import tables as t
from consult.storage.uow import UnitOfWork

_Q = t.renewal_requests
_P = t.prescriptions
_K = t.prescription_packages
_OPEN = _Q.c.status == RenewalStatus.OPEN.value


async def lock_prescription(uow: UnitOfWork, prescription_id: int) -> Any:
    """The prescription with its package's consultation and that consultation's specialty,
    locked: concurrent requests for it queue here on PostgreSQL (SQLite has one writer)."""
    # FOR UPDATE OF the prescription only: PostgreSQL refuses it on the outer join's nullable
    # side, and the package and consultation are only read.
    statement = (
        sa.select(
            _P,
            _K.c.consultation_id,
            t.consultations.c.specialty_code,
        )
        .select_from(
            _P.join(_K, _K.c.id == _P.c.package_id).outerjoin(
                t.consultations, t.consultations.c.id == _K.c.consultation_id
            )
        )
        .where(_P.c.id == prescription_id)
        .with_for_update(of=_P)
    )
    return (await uow.conn.execute(statement)).first()


async def open_for(uow: UnitOfWork, prescription_id: int) -> int | None:
    found = await uow.conn.execute(
        sa.select(_Q.c.id).where(_Q.c.prescription_id == prescription_id, _OPEN)
    )
    return found.scalar_one_or_none()


async def insert_open(uow: UnitOfWork, **values: Any) -> int | None:
    """The new open request's id; None if the prescription has one already (a concurrent
    request committed first: uq_renewal_requests_one_open skips this row instead of raising an
    IntegrityError that would abort the transaction)."""
    insert: Any = pg_insert if uow.dialect == "postgresql" else sqlite_insert
    statement = (
        insert(_Q)
        .values(status=RenewalStatus.OPEN.value, **values)
        .on_conflict_do_nothing(index_elements=["prescription_id"], index_where=_OPEN)
        .returning(_Q.c.id)
    )
    found = (await uow.conn.execute(statement)).scalar_one_or_none()
    return None if found is None else int(found)


async def lock(uow: UnitOfWork, renewal_id: int) -> Any:
    """The request, locked, with the specialty of the prescription's consultation."""
    statement = (
        sa.select(_Q, _K.c.consultation_id, t.consultations.c.specialty_code)
        .select_from(
            _Q.join(_P, _P.c.id == _Q.c.prescription_id)
            .join(_K, _K.c.id == _P.c.package_id)
            .outerjoin(t.consultations, t.consultations.c.id == _K.c.consultation_id)
        )
        .where(_Q.c.id == renewal_id)
        .with_for_update(of=_Q)
    )
    return (await uow.conn.execute(statement)).first()


async def prescription(uow: UnitOfWork, prescription_id: int) -> Any:
    """The prescription with its package's consultation (to copy it into a new package)."""
    found = await uow.conn.execute(
        sa.select(_P, _K.c.consultation_id)
        .select_from(_P.join(_K, _K.c.id == _P.c.package_id))
        .where(_P.c.id == prescription_id)
    )
    return found.first()


async def update(uow: UnitOfWork, renewal_id: int, **values: Any) -> None:
    await uow.conn.execute(_Q.update().where(_Q.c.id == renewal_id).values(**values))


async def is_doctor(uow: UnitOfWork, user_id: int) -> bool:
    found = await uow.conn.execute(
        sa.select(t.users.c.id).where(t.users.c.id == user_id, t.users.c.role == "doctor")
    )
    return found.first() is not None


async def practises(uow: UnitOfWork, doctor_id: int, specialty_code: str | None) -> bool:
    if specialty_code is None:
        return False
    ds = t.doctor_specialties
    found = await uow.conn.execute(
        sa.select(ds.c.doctor_id).where(
            ds.c.doctor_id == doctor_id, ds.c.specialty_code == specialty_code
        )
    )
    return found.first() is not None


# --- reading ----------------------------------------------------------------------------------

_patient = t.users.alias("renewal_patient")
_doctor = t.users.alias("renewal_doctor")
_specialty = t.specialties.alias("renewal_specialty")
_consultation = t.consultations.alias("renewal_consultation")
_RENEWAL = sa.select(
    _Q,
    _patient.c.name.label("patient_name"),
    _doctor.c.name.label("doctor_name"),
    _specialty.c.code.label("specialty_code"),
    _specialty.c.name.label("specialty_name"),
).select_from(
    _Q.join(_patient, _patient.c.id == _Q.c.patient_id)
    .join(_doctor, _doctor.c.id == _Q.c.doctor_id)
    .join(_P, _P.c.id == _Q.c.prescription_id)
    .join(_K, _K.c.id == _P.c.package_id)
    .outerjoin(_consultation, _consultation.c.id == _K.c.consultation_id)
    .outerjoin(_specialty, _specialty.c.code == _consultation.c.specialty_code)
)


async def renewals(
    uow: UnitOfWork, where: Sequence[Any], now: datetime, *, newest_first: bool = False
) -> list[RenewalOut]:
    """The requests matching ``where``, by the time they were asked, each with its
    prescription and (once approved) its new package: a few queries, whatever the count."""
    order: tuple[Any, ...] = (_Q.c.requested_at, _Q.c.id)
    if newest_first:
        order = (_Q.c.requested_at.desc(), _Q.c.id.desc())
    rows = (await uow.conn.execute(_RENEWAL.where(*where).order_by(*order))).all()
    if not rows:
        return []
    prescriptions = await _prescriptions(uow, [r.prescription_id for r in rows], now)
    package_ids = [r.package_id for r in rows if r.package_id is not None]
    packages: dict[int, PackageOut] = {}
    if package_ids:
        packages = {p.id: p for p in await repo.packages(uow, _K.c.id.in_(package_ids), now)}
    return [
        _renewal_out(r, prescriptions[r.prescription_id], packages.get(r.package_id)) for r in rows
    ]


async def listed(
    uow: UnitOfWork,
    now: datetime,
    statuses: Sequence[RenewalStatus],
    *,
    doctor_id: int | None = None,
    patient_id: int | None = None,
) -> list[RenewalOut]:
    """Requests in ``statuses``: those waiting for (or decided by) ``doctor_id``, oldest
    first; a patient's own, newest first; or, with neither, every one, oldest first."""
    where: list[Any] = [_Q.c.status.in_([s.value for s in statuses])]
    if doctor_id is not None:
        where.append(_Q.c.doctor_id == doctor_id)
    if patient_id is not None:
        where.append(_Q.c.patient_id == patient_id)
    return await renewals(uow, where, now, newest_first=patient_id is not None)


async def one(uow: UnitOfWork, renewal_id: int, now: datetime) -> RenewalOut:
    (found,) = await renewals(uow, [_Q.c.id == renewal_id], now)
    return found


async def _prescriptions(
    uow: UnitOfWork, ids: Sequence[int], now: datetime
) -> dict[int, PrescriptionOut]:
    found = await uow.conn.execute(sa.select(_P).where(_P.c.id.in_(set(ids))))
    statuses = await repo.renewal_statuses(uow, list(set(ids)))
    return {r.id: repo.prescription_out(r, now, statuses.get(r.id)) for r in found}


def _renewal_out(row: Any, prescription: PrescriptionOut, package: PackageOut | None) -> RenewalOut:
    specialty = None
    if row.specialty_code is not None:
        specialty = RenewalSpecialtyOut(code=row.specialty_code, name=row.specialty_name)
    return RenewalOut(
        id=row.id,
        status=RenewalStatus(row.status),
        note=row.note,
        requested_at=as_utc(row.requested_at),
        decided_at=None if row.decided_at is None else as_utc(row.decided_at),
        decline_reason=row.decline_reason,
        patient=PersonOut(id=row.patient_id, name=row.patient_name),
        doctor=PersonOut(id=row.doctor_id, name=row.doctor_name),
        specialty=specialty,
        prescription=prescription,
        package=package,
    )
