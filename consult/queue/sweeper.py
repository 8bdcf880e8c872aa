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

from consult.clock import Clock
from consult.domain import ConsultationStatus, PresenceStatus
from consult.events import (
    ConsultationInterrupted,
    OfferWithdrawn,
    PresenceChanged,
    QueueChanged,
    TicketDropped,
)
from consult.queue import repository as repo
from consult.queue.matcher import Matcher
from consult.queue.policy import FRONT_PRIORITY, QueueRules, rank_at
from consult.queue.service import ConsultationService, queues_changed
from consult.storage.retry import retry_transient
from consult.storage.uow import Database, UnitOfWork

log = logging.getLogger(__name__)


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
        rows = await repo.lock_lapsed_offers(uow, self._clock.now())
        # Only a doctor who was there and did not answer is excluded from the ticket: one whose
        # console has dropped (in its grace period) may never have seen the offer.
        attentive = await repo.attentive_doctors(uow, {r.doctor_id for r in rows})
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
        doctors = await repo.leases_run_out(uow, now - self._rules.doctor_grace)
        for doctor_id in doctors:
            rows = await repo.lock_doctor_consultations(uow, doctor_id)
            if rows is None:  # one is being changed right now: next sweep
                continue
            status = await repo.lock_lapsed_lease(uow, doctor_id)
            if status is None:  # reconnected meanwhile
                continue
            away = PresenceStatus.AWAY if status == PresenceStatus.ONLINE else status
            await repo.end_lease(uow, doctor_id, away, now)
            if status == PresenceStatus.ONLINE:
                uow.collect(PresenceChanged(doctor_id, PresenceStatus.AWAY, "console disconnected"))
                await queues_changed(uow, doctor_id)
            for row in rows:
                if row.status == ConsultationStatus.OFFERED:
                    await self._consultations.return_to_queue(uow, row, reason="doctor away")
                    continue
                # Cut off by the doctor's side: back at the front, same consultation.
                await repo.requeue(
                    uow, row.id, FRONT_PRIORITY, rank_at(row.created_at, FRONT_PRIORITY)
                )
                uow.collect(ConsultationInterrupted(row.patient_id, row.id, "doctor disconnected"))
                uow.collect(QueueChanged(row.specialty_code, row.form))
                log.info("consultation %s back to the front: doctor %s lost", row.id, doctor_id)
        return len(doctors)

    async def _drop_abandoned_tickets(self, uow: UnitOfWork) -> int:
        now = self._clock.now()
        rows = await repo.lock_abandoned(uow, now - self._rules.patient_grace)
        for row in rows:
            await repo.cancel(uow, row, now)
            if row.status == ConsultationStatus.OFFERED:
                uow.collect(OfferWithdrawn(row.doctor_id, row.id, "patient left"))
            uow.collect(TicketDropped(row.patient_id, row.id, "disconnected too long"))
            uow.collect(QueueChanged(row.specialty_code, row.form))
            log.info("ticket %s dropped: patient gone for the grace period", row.id)
        return len(rows)
