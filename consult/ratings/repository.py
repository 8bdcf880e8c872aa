"""Rating rows, and the visits they are about, read and written inside a unit of work."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from consult.clock import as_utc
from consult.ratings.figures import Tally
from consult.ratings.policy import RatingKind, Visit, changeable_until
from consult.ratings.schemas import RatedSpecialtyOut, RatingCommentOut, RatingOut
from consult.schemas import PersonOut
from consult.storage import tables as t
from consult.storage.uow import UnitOfWork

_R = t.ratings.c
_B = t.bookings.c
_S = t.slots.c
_doctor = t.users.alias("rating_doctor")
_specialty = t.specialties.c

_RATING = (
    sa.select(
        t.ratings,
        _doctor.c.name.label("doctor_name"),
        _specialty.name.label("specialty_name"),
    )
    .join(_doctor, _doctor.c.id == _R.doctor_id)
    .join(t.specialties, _specialty.code == _R.specialty_code)
)


def rating_out(row: Any) -> RatingOut:
    rated_at = as_utc(row.rated_at)
    return RatingOut(
        id=row.id,
        kind=RatingKind(row.kind),
        consultation_id=row.consultation_id,
        booking_id=row.booking_id,
        doctor=PersonOut(id=row.doctor_id, name=row.doctor_name),
        specialty=RatedSpecialtyOut(code=row.specialty_code, name=row.specialty_name),
        score=row.score,
        comment=row.comment,
        rated_at=rated_at,
        changed_at=as_utc(row.changed_at) if row.changed_at is not None else None,
        changeable_until=changeable_until(rated_at),
    )


async def lock_booking(uow: UnitOfWork, booking_id: int) -> Any:
    """The booking with its slot's doctor, specialty and end, locked (one rating at a time)."""
    statement = (
        sa.select(
            _B.id,
            _B.patient_id,
            _B.status,
            _S.doctor_id,
            _S.specialty_code,
            _S.ends_at,
        )
        .join(t.slots, _S.id == _B.slot_id)
        .where(_B.id == booking_id)
        .with_for_update(of=t.bookings)
    )
    return (await uow.conn.execute(statement)).first()


async def find(uow: UnitOfWork, visit: Visit, kind: RatingKind) -> RatingOut | None:
    """The rating of this kind the visit has, if any."""
    target = (
        _R.booking_id == visit.booking_id
        if visit.booking_id is not None
        else _R.consultation_id == visit.consultation_id
    )
    row = (await uow.conn.execute(_RATING.where(target, _R.kind == kind))).first()
    return None if row is None else rating_out(row)


async def load(uow: UnitOfWork, rating_id: int) -> RatingOut:
    return rating_out((await uow.conn.execute(_RATING.where(_R.id == rating_id))).one())


async def insert(
    uow: UnitOfWork, visit: Visit, kind: RatingKind, score: int, comment: str, at: datetime
) -> int:
    statement = (
        t.ratings.insert()
        .values(
            patient_id=visit.patient_id,
            kind=kind,
            consultation_id=visit.consultation_id,
            booking_id=visit.booking_id,
            doctor_id=visit.doctor_id,
            specialty_code=visit.specialty_code,
            score=score,
            comment=comment,
            rated_at=at,
        )
        .returning(_R.id)
    )
    return int((await uow.conn.execute(statement)).scalar_one())


async def change(uow: UnitOfWork, rating_id: int, score: int, comment: str, at: datetime) -> None:
    await uow.conn.execute(
        t.ratings.update()
        .where(_R.id == rating_id)
        .values(score=score, comment=comment, changed_at=at)
    )


async def of_patient(uow: UnitOfWork, patient_id: int) -> list[RatingOut]:
    return await listed(uow, _R.patient_id == patient_id)


async def listed(uow: UnitOfWork, *where: Any) -> list[RatingOut]:
    """The ratings matching ``where``, the newest first."""
    rows = await uow.conn.execute(_RATING.where(*where).order_by(_R.rated_at.desc(), _R.id.desc()))
    return [rating_out(r) for r in rows]


async def tallies(uow: UnitOfWork, since: datetime, doctor_id: int | None = None) -> list[Tally]:
    """How many ratings gave each score since ``since``, by specialty, doctor and kind: one
    row per group, whatever the number of ratings."""
    where = [_R.rated_at >= since]
    if doctor_id is not None:
        where.append(_R.doctor_id == doctor_id)
    keys = (_R.specialty_code, _specialty.name, _R.doctor_id, _doctor.c.name, _R.kind, _R.score)
    rows = await uow.conn.execute(
        sa.select(*keys, sa.func.count().label("n"))
        .select_from(t.ratings)
        .join(_doctor, _doctor.c.id == _R.doctor_id)
        .join(t.specialties, _specialty.code == _R.specialty_code)
        .where(*where)
        .group_by(*keys)
    )
    return [Tally(r[0], r[1], r[2], r[3], RatingKind(r[4]), r[5], r[6]) for r in rows]


async def comments(
    uow: UnitOfWork, doctor_id: int, since: datetime, limit: int
) -> list[tuple[int, RatingCommentOut]]:
    """The doctor's newest comments since ``since``, each with its patient's id (for the
    audit log only: the payload names nobody)."""
    rows = await uow.conn.execute(
        _RATING.where(_R.doctor_id == doctor_id, _R.rated_at >= since, _R.comment != "")
        .order_by(_R.rated_at.desc(), _R.id.desc())
        .limit(limit)
    )
    return [
        (
            r.patient_id,
            RatingCommentOut(
                kind=RatingKind(r.kind),
                score=r.score,
                comment=r.comment,
                rated_on=as_utc(r.rated_at).date(),
                specialty=RatedSpecialtyOut(code=r.specialty_code, name=r.specialty_name),
            ),
        )
        for r in rows
    ]
