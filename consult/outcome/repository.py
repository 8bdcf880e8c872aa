"""The outcome's SQL: drafts, the outcome issued once, packages, prescriptions, referrals and
sick leave, written and read back as payloads."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from consult.clock import as_utc
from consult.errors import Conflict
from consult.outcome import keys
from consult.outcome.checks import CheckedPrescription
from consult.outcome.issued import (
    DiagnosisOut,
    IssuerOut,
    PackageOut,
    PrescriptionOut,
    ReferralOut,
    SickLeaveOut,
)
from consult.outcome.products import Product
from consult.outcome.renewal import RenewalStatus, check_renewable
from consult.outcome.validity import Category, Validity, status
from consult.storage import tables as t
from consult.storage.uow import UnitOfWork

_P = t.prescriptions
_K = t.prescription_packages
_R = t.referrals
_S = t.sick_leaves
_KEY_TRIES = 5


# --- drafts -----------------------------------------------------------------------------------


async def draft(uow: UnitOfWork, consultation_id: int) -> Any:
    found = await uow.conn.execute(
        sa.select(t.outcome_drafts).where(t.outcome_drafts.c.consultation_id == consultation_id)
    )
    return found.first()


async def save_draft(
    uow: UnitOfWork, consultation_id: int, doctor_id: int, body: dict[str, Any], now: datetime
) -> int:
    """Store the draft (the last save wins); its new version."""
    current = await draft(uow, consultation_id)
    values = {"doctor_id": doctor_id, "body": body, "updated_at": now}
    if current is None:
        await uow.conn.execute(
            t.outcome_drafts.insert().values(consultation_id=consultation_id, version=1, **values)
        )
        return 1
    await uow.conn.execute(
        t.outcome_drafts.update()
        .where(t.outcome_drafts.c.consultation_id == consultation_id)
        .values(version=current.version + 1, **values)
    )
    return int(current.version) + 1


async def drop_draft(uow: UnitOfWork, consultation_id: int) -> None:
    await uow.conn.execute(
        t.outcome_drafts.delete().where(t.outcome_drafts.c.consultation_id == consultation_id)
    )


# --- writing ----------------------------------------------------------------------------------


async def outcome_of(uow: UnitOfWork, consultation_id: int) -> Any:
    found = await uow.conn.execute(
        sa.select(t.outcomes).where(t.outcomes.c.consultation_id == consultation_id)
    )
    return found.first()


async def outcome_by_key(uow: UnitOfWork, doctor_id: int, key: str) -> Any:
    found = await uow.conn.execute(
        sa.select(t.outcomes).where(
            t.outcomes.c.doctor_id == doctor_id, t.outcomes.c.idempotency_key == key
        )
    )
    return found.first()


async def insert(uow: UnitOfWork, table: sa.Table, **values: Any) -> int:
    found = await uow.conn.execute(table.insert().values(**values).returning(table.c.id))
    return int(found.scalar_one())


async def fresh_key(uow: UnitOfWork, table: sa.Table) -> str:
    """A 44-digit key no row of ``table`` has (a clash is not expected in 10^44; the unique
    index stays the guarantee)."""
    for _ in range(_KEY_TRIES):
        key = keys.new_key()
        taken = await uow.conn.execute(sa.select(table.c.id).where(table.c.key == key))
        if taken.first() is None:
            return key
    raise RuntimeError(f"{_KEY_TRIES} random keys in a row were taken: the generator is broken")


def prescription_row(
    checked: CheckedPrescription,
    position: int,
    package_id: int,
    values: dict[str, Any],
    issued_on: date,
) -> dict[str, Any]:
    draft, product = checked.draft, checked.product
    return {
        "package_id": package_id,
        "patient_id": values["patient_id"],
        "doctor_id": values["doctor_id"],
        "position": position,
        "product_id": product.id,
        "product_name": product.name,
        "substance": product.substance,
        "strength": product.strength,
        "form": product.form,
        "category": str(product.category),
        "long_term_eligible": product.long_term_eligible,
        "pack_size": draft.pack_size,
        "packs": draft.packs,
        "dosage_instruction": draft.dosage_instruction,
        "payment_level": str(draft.payment_level),
        "issued_on": issued_on,
        "dispense_from": draft.dispense_from,
        "validity_days": checked.validity_days,
        "therapy_days": draft.therapy_days,
        "valid_until": checked.valid_until,
    }


async def insert_prescriptions(uow: UnitOfWork, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await uow.conn.execute(_P.insert(), list(rows))


# --- reading ----------------------------------------------------------------------------------


def _at(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


def _issuer(row: Any) -> IssuerOut:
    return IssuerOut(id=row.doctor_id, name=row.doctor_name, licence_number=row.doctor_licence)


def _issued(row: Any) -> dict[str, Any]:
    """What every issued document's payload says of its issue: which, at which visit, when and
    by whom (the row joined by ``_doctor_join``)."""
    return {
        "id": row.id,
        "consultation_id": row.consultation_id,
        "issued_at": as_utc(row.issued_at),
        "doctor": _issuer(row),
    }


def _keyed(row: Any) -> dict[str, Any]:
    """``_issued``, and the key and access code a package or a referral is read with."""
    return {**_issued(row), "key": row.key, "access_code": row.access_code}


def _doctor_join(table: sa.Table) -> tuple[Any, list[Any]]:
    doctor = t.users.alias("doctor")
    columns = [doctor.c.name.label("doctor_name"), doctor.c.licence_number.label("doctor_licence")]
    return table.join(doctor, doctor.c.id == table.c.doctor_id), columns


def product_of(row: Any) -> Product:
    """The product as it was prescribed (the row's copy), for the renewal rules."""
    category = Category(row.category)
    return Product(
        id=row.product_id,
        name=row.product_name,
        substance=row.substance,
        strength=row.strength,
        form=row.form,
        pack_sizes=(row.pack_size,),
        antibiotic=category is Category.ANTIBIOTIC,
        psychotropic_narcotic=category is Category.PSYCHOTROPIC_NARCOTIC,
        immunological=category is Category.IMMUNOLOGICAL,
        long_term_eligible=row.long_term_eligible,
    )


def validity_of(row: Any) -> Validity:
    return Validity(
        issued_on=row.issued_on,
        valid_until=row.valid_until,
        dispense_from=row.dispense_from,
        cancelled=row.cancelled_at is not None,
    )


def _renewable(row: Any, now: datetime) -> bool:
    try:
        check_renewable(product_of(row), validity_of(row), now)
    except Conflict:
        return False
    return True


def prescription_out(
    row: Any, now: datetime, renewal_status: RenewalStatus | None = None
) -> PrescriptionOut:
    state = status(validity_of(row), now)
    return PrescriptionOut(
        id=row.id,
        package_id=row.package_id,
        product_id=row.product_id,
        product_name=row.product_name,
        substance=row.substance,
        strength=row.strength,
        form=row.form,
        category=row.category,
        pack_size=row.pack_size,
        packs=row.packs,
        dosage_instruction=row.dosage_instruction,
        payment_level=row.payment_level,
        issued_on=row.issued_on,
        dispense_from=row.dispense_from,
        validity_days=row.validity_days,
        therapy_days=row.therapy_days,
        valid_until=row.valid_until,
        status=state.state,
        expires_in_days=state.expires_in_days,
        cancelled_at=_at(row.cancelled_at),
        cancel_reason=row.cancel_reason,
        renewable=_renewable(row, now),
        renewal_status=renewal_status,
    )


async def renewal_statuses(
    uow: UnitOfWork, prescription_ids: Sequence[int]
) -> dict[int, RenewalStatus]:
    """The latest renewal request's status of each prescription that has one, in one query."""
    if not prescription_ids:
        return {}
    renewal = t.renewal_requests
    found = await uow.conn.execute(
        sa.select(renewal.c.prescription_id, renewal.c.status)
        .where(renewal.c.prescription_id.in_(prescription_ids))
        .order_by(renewal.c.requested_at, renewal.c.id)
    )
    return {r.prescription_id: RenewalStatus(r.status) for r in found}  # the last one wins


async def packages(uow: UnitOfWork, where: Any, now: datetime) -> list[PackageOut]:
    """Packages matching ``where`` (on prescription_packages), newest first, each with its
    prescriptions in the order issued."""
    joined, doctor = _doctor_join(_K)
    renewal = t.renewal_requests
    found = await uow.conn.execute(
        sa.select(_K, *doctor, renewal.c.prescription_id.label("renewal_of"))
        .select_from(joined.outerjoin(renewal, renewal.c.id == _K.c.renewal_id))
        .where(where)
        .order_by(_K.c.issued_at.desc(), _K.c.id.desc())
    )
    rows = found.all()
    if not rows:
        return []
    items = (
        await uow.conn.execute(
            sa.select(_P)
            .where(_P.c.package_id.in_([r.id for r in rows]))
            .order_by(_P.c.package_id, _P.c.position)
        )
    ).all()
    renewals = await renewal_statuses(uow, [i.id for i in items])
    by_package: dict[int, list[PrescriptionOut]] = {}
    for item in items:
        out = prescription_out(item, now, renewals.get(item.id))
        by_package.setdefault(item.package_id, []).append(out)
    return [
        PackageOut(
            **_keyed(r),
            renewal_of=r.renewal_of,
            prescriptions=by_package.get(r.id, []),
        )
        for r in rows
    ]


def _diagnosis(row: Any) -> DiagnosisOut:
    return DiagnosisOut(code=row.diagnosis_code, title=row.diagnosis_title)


async def referrals(uow: UnitOfWork, where: Any) -> list[ReferralOut]:
    joined, doctor = _doctor_join(_R)
    booking = t.bookings
    found = await uow.conn.execute(
        sa.select(_R, *doctor, booking.c.id.label("booking_id"))
        .select_from(
            joined.outerjoin(
                booking, sa.and_(booking.c.referral_id == _R.c.id, booking.c.status == "active")
            )
        )
        .where(where)
        .order_by(_R.c.issued_at.desc(), _R.c.position)
    )
    return [
        ReferralOut(
            **_keyed(r),
            kind=r.kind,
            target=r.target,
            diagnosis=_diagnosis(r),
            reason=r.reason,
            priority=r.priority,
            cancelled_at=_at(r.cancelled_at),
            cancel_reason=r.cancel_reason,
            used_by_booking=r.booking_id,
        )
        for r in found
    ]


async def sick_leaves(uow: UnitOfWork, where: Any) -> list[SickLeaveOut]:
    joined, doctor = _doctor_join(_S)
    found = await uow.conn.execute(
        sa.select(_S, *doctor).select_from(joined).where(where).order_by(_S.c.issued_at.desc())
    )
    return [
        SickLeaveOut(
            **_issued(r),
            start=r.start,
            end=r.end,
            days=(r.end - r.start).days + 1,
            backdating_reason=r.backdating_reason,
            recommendation=r.recommendation,
            diagnosis=_diagnosis(r),
            letter_codes=list(r.letter_codes),
            employer_nip=r.employer_nip,
            cancelled_at=_at(r.cancelled_at),
            cancel_reason=r.cancel_reason,
        )
        for r in found
    ]


async def active_substances(uow: UnitOfWork, patient_id: int, today: date) -> list[str]:
    """Substances of the patient's prescriptions not cancelled and not expired."""
    found = await uow.conn.execute(
        sa.select(_P.c.substance)
        .where(
            _P.c.patient_id == patient_id,
            _P.c.cancelled_at.is_(None),
            _P.c.valid_until >= today,
        )
        .distinct()
    )
    return list(found.scalars())


async def lock_document(uow: UnitOfWork, table: sa.Table, document_id: int) -> Any:
    # SQLite has one writer at a time: FOR UPDATE is for PostgreSQL (SQLAlchemy leaves it out).
    statement = sa.select(table).where(table.c.id == document_id).with_for_update()
    return (await uow.conn.execute(statement)).first()


async def cancel_document(
    uow: UnitOfWork, table: sa.Table, document_id: int, now: datetime, reason: str
) -> None:
    await uow.conn.execute(
        table.update()
        .where(table.c.id == document_id)
        .values(cancelled_at=now, cancel_reason=reason)
    )


def ids(rows: Iterable[Any]) -> list[int]:
    return [r.id for r in rows]
