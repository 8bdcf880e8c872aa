"""Runs out offers and leases: the queue's timeouts, driven by the injected clock.

``sweep()`` is called every ``sweep_interval`` seconds by a task the app owns; tests call it
directly after moving a manual clock. Every step is idempotent and locks what it changes, so
several processes may sweep the same database at once. Each sweep first closes the connections
of dead server processes (``presence/processes.py``, given as ``reap``), so that their users'
grace periods start.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import sqlalchemy as sa

from consult.clock import Clock
from consult.domain import QUEUED_STATUSES, ConsultationStatus, PresenceStatus
from consult.events import (
    ConsultationInterrupted,
    OfferWithdrawn,
    PresenceChanged,
    QueueChanged,
    TicketDropped,
)
from consult.queue.matcher import Matcher
from consult.queue.policy import FRONT_PRIORITY, QueueRules, rank_at
from consult.queue.service import ConsultationService, queues_changed
from consult.storage import tables as t
from consult.storage.retry import retry_transient
from consult.storage.uow import Database, UnitOfWork

log = logging.getLogger(__name__)
_C = t.consultations.c
_P = t.doctor_presence.c


class Sweeper:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        rules: QueueRules,
        matcher: Matcher,
        consultations: ConsultationService,
        reap: Callable[[], Awaitable[int]] | None = None,
    ) -> None:
        # presence.Processes.reap, given by the composition root (presence sits above the queue).
        self._reap = reap
        self._db = db
        self._clock = clock
        self._rules = rules
        self._matcher = matcher
        self._consultations = consultations

    async def sweep(self) -> int:
        """Apply every timeout that is due; returns how many things changed."""
        closed = await self._reap() if self._reap is not None else 0
        return closed + await self._sweep_queues()

    @retry_transient()
    async def _sweep_queues(self) -> int:
        async with self._db.uow() as uow:
            # Presence rows first, all in id order; consultations are then taken with
            # SKIP LOCKED, so a sweep never waits on a row another transaction holds.
            await self._matcher.lock_presence(uow)
            changed = (
                await self._lapse_offers(uow)
                + await self._expire_doctor_leases(uow)
                + await self._drop_abandoned_tickets(uow)
            )
            # Also a safety net: a join and a doctor's arrival committed at the same instant
            # on PostgreSQL may not see each other; the next sweep pairs them.
            await self._matcher.match_all(uow)
            await uow.commit()
        return changed

    async def _lapse_offers(self, uow: UnitOfWork) -> int:
        rows = (
            await uow.conn.execute(
                sa.select(t.consultations)
                .where(
                    _C.status == ConsultationStatus.OFFERED,
                    _C.offer_expires_at <= self._clock.now(),
                )
                .with_for_update(skip_locked=True)
            )
        ).all()
        # Only a doctor who was there and did not answer is excluded from the ticket: one whose
        # console has dropped (in its grace period) may never have seen the offer.
        attentive: set[int] = set()
        if rows:
            attentive = set(
                (
                    await uow.conn.execute(
                        _ATTENTIVE, {"doctor_ids": sorted({r.doctor_id for r in rows})}
                    )
                ).scalars()
            )
        for row in rows:
            await self._consultations.return_to_queue(
                uow, row, reason="timeout", exclude=row.doctor_id in attentive
            )
        return len(rows)

    async def _expire_doctor_leases(self, uow: UnitOfWork) -> int:
        """Doctors whose console has been gone for the grace period: online ones go away, and
        the patients they were consulting return to the front of the queue. Consultations are
        locked before presence rows, the order every other path takes."""
        now = self._clock.now()
        doctors = (
            (
                await uow.conn.execute(
                    sa.select(_P.doctor_id).where(
                        _P.disconnected_at <= now - self._rules.doctor_grace
                    )
                )
            )
            .scalars()
            .all()
        )
        for doctor_id in doctors:
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
            if len(rows) != total:  # one is being changed right now: next sweep
                continue
            presence = (
                await uow.conn.execute(
                    sa.select(_P.status)
                    .where(_P.doctor_id == doctor_id, _P.disconnected_at.is_not(None))
                    .with_for_update()
                )
            ).first()
            if presence is None:  # reconnected meanwhile
                continue
            await uow.conn.execute(
                t.doctor_presence.update()
                .where(_P.doctor_id == doctor_id)
                .values(
                    disconnected_at=None,
                    status=PresenceStatus.AWAY
                    if presence.status == PresenceStatus.ONLINE
                    else presence.status,
                    since=now,
                )
            )
            if presence.status == PresenceStatus.ONLINE:
                uow.collect(PresenceChanged(doctor_id, PresenceStatus.AWAY, "console disconnected"))
                await queues_changed(uow, doctor_id)
            for row in rows:
                if row.status == ConsultationStatus.OFFERED:
                    await self._consultations.return_to_queue(uow, row, reason="doctor away")
                    continue
                # Cut off by the doctor's side: back at the front, same consultation.
                await uow.conn.execute(
                    t.consultations.update()
                    .where(_C.id == row.id)
                    .values(
                        status=ConsultationStatus.WAITING,
                        doctor_id=None,
                        priority=FRONT_PRIORITY,
                        rank_at=rank_at(row.created_at, FRONT_PRIORITY),
                    )
                )
                uow.collect(ConsultationInterrupted(row.patient_id, row.id, "doctor disconnected"))
                uow.collect(QueueChanged(row.specialty_code, row.form))
                log.info("consultation %s back to the front: doctor %s lost", row.id, doctor_id)
        return len(doctors)

    async def _drop_abandoned_tickets(self, uow: UnitOfWork) -> int:
        now = self._clock.now()
        rows = (
            await uow.conn.execute(
                sa.select(t.consultations)
                .where(
                    _C.status.in_(QUEUED_STATUSES),
                    _C.patient_disconnected_at <= now - self._rules.patient_grace,
                )
                .with_for_update(skip_locked=True)
            )
        ).all()
        for row in rows:
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
            if row.status == ConsultationStatus.OFFERED:
                uow.collect(OfferWithdrawn(row.doctor_id, row.id, "patient left"))
            uow.collect(TicketDropped(row.patient_id, row.id, "disconnected too long"))
            uow.collect(QueueChanged(row.specialty_code, row.form))
            log.info("ticket %s dropped: patient gone for the grace period", row.id)
        return len(rows)


# Of these doctors, those online with a connected console (their rows are locked by the sweep).
_ATTENTIVE = sa.select(_P.doctor_id).where(
    _P.doctor_id.in_(sa.bindparam("doctor_ids", expanding=True)),
    _P.status == PresenceStatus.ONLINE,
    _P.disconnected_at.is_(None),
)
