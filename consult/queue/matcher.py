"""Matching inside a unit of work: offer a waiting ticket to a free doctor.

It runs in the transaction that made a match possible (a ticket joining, a doctor coming
online, accepting, declining or freeing up) and holds the doctors' presence rows locked
(``FOR UPDATE``; SQLite serialises writers), so a ticket is never offered to two doctors and a
doctor never holds more offers and consultations than their capacity, whatever the number of
server processes. Waiting tickets are read with ``FOR UPDATE SKIP LOCKED``.

A join first looks without locking (``match_ticket``): when every doctor who could take the
ticket is busy, as in any queue, it takes no presence lock, so joins do not wait for each other
(on PostgreSQL, 2,000 joins at 50/s queued behind those locks until the pool ran dry). The price
is a race on PostgreSQL: a doctor freeing up in a transaction that cannot see a ticket still
being inserted, while that join cannot see the doctor free yet, leaves the ticket for the next
sweep (``sweep_interval``, 1 s), which matches every doctor with room.

Declines. A ticket is not offered to the doctors it excludes now (``exclusions.py``: each
doctor who declined it, or let its offer lapse while online, until their own exclusion ends):
``_next_ticket`` says so in SQL, ``match_ticket`` reads them when some doctor could take the
ticket. Every sweep first ends the exclusions that ran out (``end_exclusions``).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from consult.clock import Clock
from consult.domain import ConsultationStatus, PresenceStatus
from consult.events import OfferMade, QueueChanged
from consult.queue import exclusions
from consult.queue import repository as repo
from consult.queue.policy import DoctorSlot, QueueRules, Waiting, pick_doctor, pick_waiting
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
        await uow.conn.execute(_LOCK_PRESENCE)

    async def doctor_slots(
        self, uow: UnitOfWork, doctor_id: int | None = None, *, lock: bool = True
    ) -> list[DoctorSlot]:
        if doctor_id is None:
            rows = (await uow.conn.execute(_SLOTS if lock else _SLOTS_UNLOCKED)).all()
        else:
            rows = (await uow.conn.execute(_DOCTOR_SLOT, {"doctor_id": doctor_id})).all()
        if not rows:
            return []
        load: dict[int, int] = {
            did: int(n)
            for did, n in await uow.conn.execute(
                _LOADS, {"doctor_ids": [r.doctor_id for r in rows]}
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

    async def exclude(self, uow: UnitOfWork, consultation_id: int, doctor_id: int) -> None:
        """The doctor declined the ticket, or let its offer lapse: not offered it again for
        ``decline_exclusion`` (with 0, nothing is recorded)."""
        if self._rules.decline_exclusion:
            ends_at = self._rules.exclusion_ends(self._clock.now())
            await exclusions.record(uow, consultation_id, doctor_id, ends_at)

    async def match_ticket(self, uow: UnitOfWork, consultation_id: int) -> bool:
        row = (await uow.conn.execute(_TICKET, {"consultation_id": consultation_id})).first()
        if row is None or row.status != ConsultationStatus.WAITING:
            return False
        if row.patient_disconnected_at is not None:
            return False  # the patient has no connection now: offered when one comes back
        ticket = _waiting(row)
        free = await self.doctor_slots(uow, lock=False)
        if pick_doctor(free, ticket) is None:
            return False  # nobody free for it: no locks (module docstring)
        # Someone could take it: read whom it excludes (a join's new ticket excludes nobody,
        # but the read is only made when a match may follow).
        excluded = await exclusions.of_ticket(uow, consultation_id, self._clock.now())
        if excluded:
            ticket = replace(ticket, excluded=excluded)
            if pick_doctor(free, ticket) is None:
                return False
        doctor = pick_doctor(await self.doctor_slots(uow), ticket)
        if doctor is None:
            return False
        await self.offer(uow, consultation_id, doctor.doctor_id)
        return True

    async def match_doctor(self, uow: UnitOfWork, doctor_id: int) -> None:
        slots = await self.doctor_slots(uow, doctor_id)
        if not slots:
            return
        doctor = slots[0]
        now = self._clock.now()
        while doctor.free > 0:
            # The doctor's rules are in the query so that exactly one row is locked: locking a
            # page of candidates would make concurrent doctors skip them all and match nobody.
            row = (
                await uow.conn.execute(
                    _NEXT_FOR_LANGUAGES if doctor.languages else _NEXT,
                    _next_ticket_params(doctor, now),
                )
            ).first()
            # The query left out the tickets that exclude this doctor.
            if row is None or pick_waiting(doctor, [_waiting(row)]) is None:
                return
            await self.offer(uow, row.id, doctor_id)
            doctor = doctor.with_one_more()

    async def match_all(self, uow: UnitOfWork) -> None:
        """Every doctor with room, after ending the exclusions that ran out (the sweep)."""
        await self.end_exclusions(uow)
        for slot in await self.doctor_slots(uow):
            if slot.free > 0:
                await self.match_doctor(uow, slot.doctor_id)

    async def end_exclusions(self, uow: UnitOfWork) -> None:
        """Delete the exclusions that ran out, and push the queues of their waiting tickets:
        the ticket may have said nobody else could take the patient, and its doctor, if busy
        now, is not offered it (which would push the queue) until they free up. Tickets another
        transaction holds are left to the next sweep."""
        for specialty, form in sorted(await exclusions.end_expired(uow, self._clock.now())):
            uow.collect(QueueChanged(specialty, form))

    async def offer(self, uow: UnitOfWork, consultation_id: int, doctor_id: int) -> None:
        expires: datetime = self._clock.now() + self._rules.offer_timeout
        await uow.conn.execute(
            _OFFER, {"consultation_id": consultation_id, "to_doctor": doctor_id, "expires": expires}
        )
        out = await repo.load_consultation(uow, consultation_id)
        assert out is not None
        uow.collect(OfferMade(doctor_id, out.model_dump(mode="json"), _iso(expires)))
        uow.collect(QueueChanged(out.specialty.code, out.form))
        log.info("consultation %s offered to doctor %s", consultation_id, doctor_id)


def _iso(moment: datetime) -> str:
    """The same shape as every other timestamp in the payloads (pydantic's ``...Z``)."""
    return moment.isoformat().replace("+00:00", "Z")


# Statements built once, bound per call: matching runs on every join, end, accept and decline,
# and building a statement and its cache key costs more than running it (docs/performance.md).
_P = t.doctor_presence.c
_OPEN = [ConsultationStatus.ACTIVE, ConsultationStatus.OFFERED]
_LOCK_PRESENCE = sa.select(_P.doctor_id).order_by(_P.doctor_id).with_for_update()
_SLOTS_UNLOCKED = (
    sa.select(*repo.presence_columns())
    .where(
        _P.status == PresenceStatus.ONLINE,
        # A console that dropped gets no new patients during its grace period.
        _P.disconnected_at.is_(None),
    )
    .order_by(_P.doctor_id)
)
_SLOTS = _SLOTS_UNLOCKED.with_for_update()
_DOCTOR_SLOT = _SLOTS.where(_P.doctor_id == sa.bindparam("doctor_id"))
_LOADS = (
    sa.select(_C.doctor_id, sa.func.count())
    .where(_C.doctor_id.in_(sa.bindparam("doctor_ids", expanding=True)), _C.status.in_(_OPEN))
    .group_by(_C.doctor_id)
)
_TICKET = sa.select(t.consultations).where(_C.id == sa.bindparam("consultation_id"))
_OFFER = (
    t.consultations.update()
    .where(_C.id == sa.bindparam("consultation_id"), _C.status == ConsultationStatus.WAITING)
    .values(
        doctor_id=sa.bindparam("to_doctor"),
        status=ConsultationStatus.OFFERED,
        offer_expires_at=sa.bindparam("expires"),
    )
)


def _next_ticket(*, languages: bool) -> sa.Select[Any]:
    """The first waiting ticket a doctor serves (``DoctorSlot.serves`` as SQL), locked."""
    doctor = sa.bindparam("doctor_id", type_=sa.Integer)
    now = sa.bindparam("now", type_=t.Timestamp)
    rules = [
        _C.status == ConsultationStatus.WAITING,
        # A patient without a connection (in their grace) keeps their place, but a doctor is
        # not offered someone who may be gone; they are offered again once a connection is back.
        _C.patient_disconnected_at.is_(None),
        _C.specialty_code.in_(sa.bindparam("specialties", expanding=True)),
        _C.form.in_(sa.bindparam("forms", expanding=True)),
        sa.or_(_C.preferred_doctor_id.is_(None), _C.preferred_doctor_id == doctor),
        exclusions.not_excluded(doctor, now),
    ]
    if languages:
        rules.append(
            sa.or_(
                _C.language.is_(None), _C.language.in_(sa.bindparam("languages", expanding=True))
            )
        )
    return (
        sa.select(t.consultations)
        .where(*rules)
        .order_by(_C.rank_at, _C.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )


_NEXT = _next_ticket(languages=False)
_NEXT_FOR_LANGUAGES = _next_ticket(languages=True)


def _next_ticket_params(doctor: DoctorSlot, now: datetime) -> dict[str, Any]:
    """The parameters of ``_NEXT``/``_NEXT_FOR_LANGUAGES`` for this doctor."""
    params: dict[str, Any] = {
        "doctor_id": doctor.doctor_id,
        "now": now,
        "specialties": sorted(doctor.specialties),
        "forms": sorted(doctor.forms),
    }
    if doctor.languages:
        params["languages"] = sorted(doctor.languages)
    return params


def _waiting(row: sa.Row) -> Waiting:
    """The ticket as the pure rules see it, without its exclusions (read apart)."""
    return Waiting(
        consultation_id=row.id,
        specialty=row.specialty_code,
        form=row.form,
        preferred_doctor_id=row.preferred_doctor_id,
        language=row.language,
    )
