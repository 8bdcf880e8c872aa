"""The referral rows booking reads: a referral with the active booking that uses it, and the
specialty it refers to."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from consult.booking.policy import BookingStatus
from consult.booking.referrals import ReferralState
from consult.storage import tables as t
from consult.storage.uow import UnitOfWork

_R = t.referrals
_B = t.bookings


async def load_referral(
    uow: UnitOfWork, referral_id: int, lock: bool = False
) -> tuple[int, ReferralState] | None:
    """(patient id, state) of the referral, or None. ``lock``: FOR SHARE on its row (PostgreSQL),
    so that the doctor's cancelling it waits for the booking that is using it."""
    statement = (
        sa.select(
            _R.c.id,
            _R.c.patient_id,
            _R.c.kind,
            _R.c.target,
            _R.c.cancelled_at,
            _B.c.id.label("booking_id"),
        )
        .select_from(
            _R.outerjoin(
                _B, sa.and_(_B.c.referral_id == _R.c.id, _B.c.status == BookingStatus.ACTIVE)
            )
        )
        .where(_R.c.id == referral_id)
    )
    if lock:
        statement = statement.with_for_update(read=True, of=_R)
    row = (await uow.conn.execute(statement)).first()
    if row is None:
        return None
    state = ReferralState(
        id=row.id,
        kind=row.kind,
        target=row.target,
        cancelled=row.cancelled_at is not None,
        used_by_booking=row.booking_id,
    )
    return row.patient_id, state


async def specialty(uow: UnitOfWork, code: str) -> Any:
    """(name, referral_required) of the specialty ``code``, or None."""
    statement = sa.select(t.specialties.c.name, t.specialties.c.referral_required).where(
        t.specialties.c.code == code
    )
    return (await uow.conn.execute(statement)).first()
