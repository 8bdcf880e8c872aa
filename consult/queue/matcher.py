"""Matching inside a unit of work: offer a waiting ticket to a free doctor.

It runs in the transaction that made a match possible (a ticket joining, a doctor coming
online, accepting, declining or freeing up) and holds the doctors' presence rows locked
(``FOR UPDATE``; SQLite serialises writers), so a ticket is never offered to two doctors and a
doctor never holds more offers and consultations than their capacity, whatever the number of
server processes. Waiting tickets are read with ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import logging
from datetime import datetime

import sqlalchemy as sa

from consult.clock import Clock
from consult.domain import ConsultationStatus, PresenceStatus
from consult.events import OfferMade, QueueChanged
from consult.queue import repository as repo
from consult.queue.matching import DoctorSlot, Waiting, pick_doctor, pick_waiting
from consult.queue.policy import QueueRules
from consult.storage import tables as t
from consult.storage.uow import UnitOfWork

log = logging.getLogger(__name__)

_C = t.consultations.c


class Matcher:
    def __init__(self, clock: Clock, rules: QueueRules) -> None:
        self._clock = clock
        self._rules = rules

    async def lock_presence(self, uow: UnitOfWork) -> None:
        """Lock every presence row, in doctor id order, before changing one of them.

        Matching locks the online doctors' rows in id order; a transaction that updated one
        doctor's row first and matched afterwards would hold a higher id while waiting for a
        lower one, and deadlock with a concurrent join. Taking them all in order up front keeps
        every transaction's presence locks in one order."""
        await uow.conn.execute(
            sa.select(t.doctor_presence.c.doctor_id)
            .order_by(t.doctor_presence.c.doctor_id)
            .with_for_update()
        )

    async def doctor_slots(self, uow: UnitOfWork, doctor_id: int | None = None) -> list[DoctorSlot]:
        query = (
            sa.select(*repo.presence_columns())
            .where(
                t.doctor_presence.c.status == PresenceStatus.ONLINE,
                # A console that dropped gets no new patients during its grace period.
                t.doctor_presence.c.disconnected_at.is_(None),
            )
            .order_by(t.doctor_presence.c.doctor_id)
            .with_for_update()
        )
        if doctor_id is not None:
            query = query.where(t.doctor_presence.c.doctor_id == doctor_id)
        rows = (await uow.conn.execute(query)).all()
        if not rows:
            return []
        load: dict[int, int] = {
            did: int(n)
            for did, n in await uow.conn.execute(
                sa.select(_C.doctor_id, sa.func.count())
                .where(
                    _C.doctor_id.in_([r.doctor_id for r in rows]),
                    _C.status.in_([ConsultationStatus.ACTIVE, ConsultationStatus.OFFERED]),
                )
                .group_by(_C.doctor_id)
            )
        }
        return [
            DoctorSlot(
                doctor_id=r.doctor_id,
                specialties=repo.code_set(r.specialties),
                forms=repo.code_set(r.forms),
                capacity=r.capacity,
                active=load.get(r.doctor_id, 0),
                languages=repo.code_set(r.languages),
            )
            for r in rows
        ]

    async def match_ticket(self, uow: UnitOfWork, consultation_id: int) -> bool:
        row = (
            await uow.conn.execute(sa.select(t.consultations).where(_C.id == consultation_id))
        ).first()
        if row is None or row.status != ConsultationStatus.WAITING:
            return False
        doctor = pick_doctor(await self.doctor_slots(uow), _waiting(row))
        if doctor is None:
            return False
        await self.offer(uow, consultation_id, doctor.doctor_id)
        return True

    async def match_doctor(self, uow: UnitOfWork, doctor_id: int) -> None:
        slots = await self.doctor_slots(uow, doctor_id)
        if not slots:
            return
        doctor = slots[0]
        while doctor.free > 0:
            # The doctor's rules are in the query so that exactly one row is locked: locking a
            # page of candidates would make concurrent doctors skip them all and match nobody.
            row = (
                await uow.conn.execute(
                    sa.select(t.consultations)
                    .where(_serves(doctor))
                    .order_by(_C.rank_at, _C.id)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
            ).first()
            if row is None or pick_waiting(doctor, [_waiting(row)]) is None:
                return
            await self.offer(uow, row.id, doctor_id)
            doctor = doctor.with_one_more()

    async def match_all(self, uow: UnitOfWork) -> None:
        for slot in await self.doctor_slots(uow):
            if slot.free > 0:
                await self.match_doctor(uow, slot.doctor_id)

    async def offer(self, uow: UnitOfWork, consultation_id: int, doctor_id: int) -> None:
        expires: datetime = self._clock.now() + self._rules.offer_timeout
        await uow.conn.execute(
            t.consultations.update()
            .where(_C.id == consultation_id, _C.status == ConsultationStatus.WAITING)
            .values(
                doctor_id=doctor_id, status=ConsultationStatus.OFFERED, offer_expires_at=expires
            )
        )
        out = await repo.load_consultation(uow, consultation_id)
        assert out is not None
        uow.collect(OfferMade(doctor_id, out.model_dump(mode="json"), _iso(expires)))
        uow.collect(QueueChanged(out.specialty.code, out.form))
        log.info("consultation %s offered to doctor %s", consultation_id, doctor_id)


def _iso(moment: datetime) -> str:
    """The same shape as every other timestamp in the payloads (pydantic's ``...Z``)."""
    return moment.isoformat().replace("+00:00", "Z")


def _serves(doctor: DoctorSlot) -> sa.ColumnElement[bool]:
    """``DoctorSlot.serves`` as SQL, for the tickets waiting."""
    language: sa.ColumnElement[bool] = sa.true()
    if doctor.languages:
        language = sa.or_(_C.language.is_(None), _C.language.in_(sorted(doctor.languages)))
    return sa.and_(
        _C.status == ConsultationStatus.WAITING,
        _C.specialty_code.in_(sorted(doctor.specialties)),
        _C.form.in_(sorted(doctor.forms)),
        sa.or_(_C.preferred_doctor_id.is_(None), _C.preferred_doctor_id == doctor.doctor_id),
        sa.or_(_C.declined_by.is_(None), _C.declined_by != doctor.doctor_id),
        language,
    )


def _waiting(row: sa.Row) -> Waiting:
    return Waiting(
        consultation_id=row.id,
        specialty=row.specialty_code,
        form=row.form,
        preferred_doctor_id=row.preferred_doctor_id,
        language=row.language,
        declined_by=row.declined_by,
    )
