"""The schedulers' dashboard: every queue's figures at a glance, and the actions a scheduler
takes on them (move a ticket to another specialty, mark a doctor away, drop a stale ticket).

``check_scheduler`` authorises; ``overview`` reads every queue in one transaction and computes
the figures after it (``overview.py``); each action locks what it changes (consultation rows
before presence rows, the order every other path takes), writes its audit entry in the same
transaction and collects events, published after the commit. A refused action changes nothing.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa

from consult.accounts.repository import covered_specialties, doctor_specialties, specialty_name
from consult.audit import Audit
from consult.clock import Clock
from consult.dashboard.overview import build_overview, read_queues
from consult.dashboard.schemas import DoctorAwayOut, OverviewOut
from consult.domain import QUEUED_STATUSES, Actor, ConsultationStatus, PresenceStatus, Role
from consult.errors import Conflict, NotAllowed, NotFound
from consult.events import (
    OfferWithdrawn,
    PresenceChanged,
    QueueChanged,
    TicketDropped,
    TicketMoved,
)
from consult.queue import exclusions
from consult.queue import repository as repo
from consult.queue.matcher import Matcher
from consult.queue.service import ConsultationService
from consult.schemas import ConsultationOut, PersonOut
from consult.storage import tables as t
from consult.storage.retry import retry_transient
from consult.storage.uow import Database, UnitOfWork

log = logging.getLogger(__name__)
_C = t.consultations.c
_P = t.doctor_presence.c


def check_scheduler(actor: Actor) -> None:
    if actor.role is not Role.SCHEDULER:
        raise NotAllowed("only schedulers see the queues and act on them", code="not_a_scheduler")


class DashboardService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        audit: Audit,
        matcher: Matcher,
        consultations: ConsultationService,
        wait_breach: int,
    ) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._matcher = matcher
        self._consultations = consultations
        self._wait_breach = wait_breach

    # --- figures ----------------------------------------------------------------------------

    async def overview_for(self, actor: Actor) -> OverviewOut:
        """The overview for a scheduler: it names the waiting patients, so the read is
        audited, one entry per patient named."""
        check_scheduler(actor)
        out = await self.overview()
        named = [w.patient.id for s in out.specialties for w in s.tickets]
        async with self._db.uow() as uow:
            await self._audit.reads(uow, actor, "queue.overview.read", named)
            await uow.commit()
        return out

    async def overview(self) -> OverviewOut:
        """Every specialty's queues now, all forms together and each form apart."""
        now = self._clock.now()
        async with self._db.reader() as uow:
            queues = await read_queues(uow, now)
        return build_overview(queues, now, self._wait_breach)

    # --- actions ----------------------------------------------------------------------------

    @retry_transient()
    async def move(self, actor: Actor, consultation_id: int, specialty: str) -> ConsultationOut:
        """Move a queued ticket to another specialty's queue (same form). It keeps its place by
        time (``created_at``, ``rank_at`` and priority are kept); an offer is withdrawn first."""
        check_scheduler(actor)
        async with self._db.uow() as uow:
            await specialty_name(uow, specialty)
            row = await _queued_row(uow, consultation_id)
            if row.specialty_code == specialty:
                raise Conflict(
                    f"consultation {consultation_id} is already in the {specialty} queue",
                    code="same_queue",
                )
            if specialty not in await covered_specialties(uow, row.patient_id):
                raise Conflict(f"the patient's plan does not cover {specialty}", code="not_covered")
            offered_to = row.doctor_id if row.status == ConsultationStatus.OFFERED else None
            if offered_to is not None:
                await self._consultations.return_to_queue(uow, row, reason="moved")
            preferred = row.preferred_doctor_id
            if preferred is not None and specialty not in await doctor_specialties(uow, preferred):
                preferred = None  # that doctor could never take it in the new queue
            await uow.conn.execute(
                t.consultations.update()
                .where(_C.id == consultation_id)
                .values(specialty_code=specialty, declined_by=None, preferred_doctor_id=preferred)
            )
            # A new queue, a fresh start: nobody who declined it in the old one is excluded.
            await exclusions.clear(uow, consultation_id)
            await self._audit.write(
                uow,
                actor,
                "scheduler.move",
                patient_id=row.patient_id,
                consultation_id=consultation_id,
                detail=f"{row.specialty_code}/{row.form} -> {specialty}/{row.form}",
            )
            uow.collect(QueueChanged(row.specialty_code, row.form))
            uow.collect(QueueChanged(specialty, row.form))
            await self._matcher.match_ticket(uow, consultation_id)
            if offered_to is not None:
                await self._matcher.match_doctor(uow, offered_to)
            out = await repo.load_consultation(uow, consultation_id)
            assert out is not None
            uow.collect(TicketMoved(row.patient_id, out.model_dump(mode="json")))
            await uow.commit()
        log.info(
            "consultation %s moved from %s to %s by scheduler %s",
            consultation_id,
            row.specialty_code,
            specialty,
            actor.user_id,
        )
        return out

    @retry_transient()
    async def drop(self, actor: Actor, consultation_id: int) -> ConsultationOut:
        """Take a stale ticket out of its queue: it is cancelled, as if the patient had left."""
        check_scheduler(actor)
        async with self._db.uow() as uow:
            row = await _queued_row(uow, consultation_id)
            await uow.conn.execute(
                t.consultations.update()
                .where(_C.id == consultation_id)
                .values(
                    status=ConsultationStatus.CANCELLED,
                    ended_at=self._clock.now(),
                    ended_by=actor.user_id,
                    doctor_id=None,
                    offer_expires_at=None,
                )
            )
            await self._audit.write(
                uow,
                actor,
                "scheduler.drop",
                patient_id=row.patient_id,
                consultation_id=consultation_id,
                detail=f"{row.specialty_code}/{row.form} {row.status}",
            )
            if row.status == ConsultationStatus.OFFERED:
                uow.collect(OfferWithdrawn(row.doctor_id, row.id, "ticket dropped"))
            uow.collect(TicketDropped(row.patient_id, row.id, "dropped by a scheduler"))
            uow.collect(QueueChanged(row.specialty_code, row.form))
            if row.status == ConsultationStatus.OFFERED:
                await self._matcher.match_doctor(uow, row.doctor_id)
            out = await repo.load_consultation(uow, consultation_id)
            await uow.commit()
        assert out is not None
        log.info("ticket %s dropped by scheduler %s", consultation_id, actor.user_id)
        return out

    @retry_transient()
    async def doctor_away(self, actor: Actor, doctor_id: int) -> DoctorAwayOut:
        """Mark an online doctor away: no new patients; their unanswered offers go back to the
        queue (and on to other doctors); consultations in progress carry on."""
        check_scheduler(actor)
        async with self._db.uow() as uow:
            name = await _doctor_name(uow, doctor_id)
            offers = await repo.lock_offers(uow, doctor_id)
            await self._matcher.lock_presence(uow)
            presence = await _online_presence(uow, doctor_id, name)
            for row in offers:
                await self._consultations.return_to_queue(uow, row, reason="doctor away")
            await self._mark_away(uow, presence)
            withdrawn = [row.id for row in offers]
            await self._audit.write(
                uow,
                actor,
                "scheduler.doctor_away",
                detail=f"doctor {doctor_id}; offers withdrawn: {withdrawn or 'none'}",
            )
            for row in offers:
                await self._matcher.match_ticket(uow, row.id)
            await uow.commit()
        log.info(
            "doctor %s marked away by scheduler %s (%d offers withdrawn)",
            doctor_id,
            actor.user_id,
            len(withdrawn),
        )
        return DoctorAwayOut(
            doctor=PersonOut(id=doctor_id, name=name),
            status=PresenceStatus.AWAY,
            withdrawn=withdrawn,
        )

    async def _mark_away(self, uow: UnitOfWork, presence: sa.Row) -> None:
        """Set the doctor away and say so; their queues lose a doctor, so the patients'
        estimates change."""
        await uow.conn.execute(
            t.doctor_presence.update()
            .where(_P.doctor_id == presence.doctor_id)
            .values(status=PresenceStatus.AWAY, since=self._clock.now())
        )
        uow.collect(
            PresenceChanged(presence.doctor_id, PresenceStatus.AWAY, "marked away by a scheduler")
        )
        for specialty in presence.specialties:
            for form in presence.forms:
                uow.collect(QueueChanged(specialty, form))


async def _doctor_name(uow: UnitOfWork, doctor_id: int) -> str:
    """The doctor's name; 404 when the id is nobody's or not a doctor's."""
    doctor = (
        await uow.conn.execute(
            sa.select(t.users.c.name).where(
                t.users.c.id == doctor_id, t.users.c.role == Role.DOCTOR
            )
        )
    ).first()
    if doctor is None:
        raise NotFound(f"no doctor {doctor_id}", code="doctor_not_found")
    return str(doctor.name)


async def _online_presence(uow: UnitOfWork, doctor_id: int, name: str) -> sa.Row:
    """The doctor's presence row; 409 unless they are online."""
    presence = (
        await uow.conn.execute(sa.select(t.doctor_presence).where(_P.doctor_id == doctor_id))
    ).first()
    if presence is None or presence.status != PresenceStatus.ONLINE:
        status = presence.status if presence is not None else PresenceStatus.OFFLINE
        raise Conflict(
            f"{name} is not online (they are {status})",
            code="doctor_not_online",
            details={"status": str(status)},
        )
    return presence


async def _queued_row(uow: UnitOfWork, consultation_id: int) -> sa.Row:
    row = await repo.lock_consultation(uow, consultation_id)
    if row is None:
        raise NotFound(f"no consultation {consultation_id}", code="consultation_not_found")
    if row.status not in QUEUED_STATUSES:
        raise Conflict(
            f"consultation {consultation_id} is {row.status}, not waiting in a queue",
            code="not_queued",
            details={"status": row.status},
        )
    return row
