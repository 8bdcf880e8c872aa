"""Doctors' presence: a lease kept alive by the console's connection.

A doctor goes online for some specialties and forms with a capacity. When the console's last
connection drops, the lease runs for the grace period (``doctor_grace``): meanwhile the doctor
gets no new patients, and after it the doctor is away and the patients they were consulting
go back to the front of the queue (see ``sweeper.py``). Reconnecting within the grace keeps
everything as it was. Patients' tickets work the same way with ``patient_grace``.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa

from consult.accounts.service import doctor_specialties
from consult.clock import Clock
from consult.domain import OPEN_STATUSES, Actor, ConsultationStatus, PresenceStatus
from consult.errors import Invalid
from consult.events import PresenceChanged
from consult.queue.matcher import Matcher
from consult.queue.policy import QueueRules
from consult.queue.service import ConsultationService, check_doctor
from consult.schemas import PresenceIn, PresenceOut
from consult.storage import tables as t
from consult.storage.retry import retry_transient
from consult.storage.uow import Database

log = logging.getLogger(__name__)
_P = t.doctor_presence.c


class PresenceService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        rules: QueueRules,
        matcher: Matcher,
        consultations: ConsultationService,
    ) -> None:
        self._consultations = consultations
        self._db = db
        self._clock = clock
        self._rules = rules
        self._matcher = matcher

    @retry_transient()
    async def go_online(self, actor: Actor, request: PresenceIn) -> PresenceOut:
        check_doctor(actor)
        forms = sorted({str(f) for f in request.forms})
        presence = PresenceOut(
            status=PresenceStatus.ONLINE,
            specialties=sorted(set(request.specialties)),
            forms=forms,  # type: ignore[arg-type]
            capacity=self._rules.capacity(forms, request.capacity),
            languages=sorted({lang.lower() for lang in request.languages}),
        )
        async with self._db.uow() as uow:
            practised = set(await doctor_specialties(uow, actor.user_id))
            unknown = sorted(set(presence.specialties) - practised)
            if unknown:
                raise Invalid(
                    f"you do not practise {', '.join(unknown)}",
                    code="specialty_not_practised",
                    details={"specialties": unknown},
                )
            values = {
                **presence.model_dump(mode="json"),
                "since": self._clock.now(),
                "disconnected_at": None,
            }
            updated = await uow.conn.execute(
                t.doctor_presence.update().where(_P.doctor_id == actor.user_id).values(**values)
            )
            if updated.rowcount == 0:
                await uow.conn.execute(
                    t.doctor_presence.insert().values(doctor_id=actor.user_id, **values)
                )
            uow.collect(PresenceChanged(actor.user_id, PresenceStatus.ONLINE, "went online"))
            await self._matcher.match_doctor(uow, actor.user_id)
            await uow.commit()
        log.info("doctor %s online for %s", actor.user_id, presence.specialties)
        return presence

    async def go_offline(self, actor: Actor) -> PresenceOut:
        """Stop taking new patients; consultations in progress carry on."""
        return await self._set_status(actor, PresenceStatus.OFFLINE, "went offline")

    async def go_away(self, actor: Actor) -> PresenceOut:
        return await self._set_status(actor, PresenceStatus.AWAY, "went away")

    @retry_transient()
    async def _set_status(self, actor: Actor, status: PresenceStatus, reason: str) -> PresenceOut:
        """Stop taking patients: offers not yet answered go back to the queue, without
        excluding the doctor from them (back online, they may be offered them again at once).
        Consultations are locked before the presence row, the order every other path uses."""
        check_doctor(actor)
        async with self._db.uow() as uow:
            offers = (
                await uow.conn.execute(
                    sa.select(t.consultations)
                    .where(
                        t.consultations.c.doctor_id == actor.user_id,
                        t.consultations.c.status == ConsultationStatus.OFFERED,
                    )
                    # Handed on in queue order: the first in line gets the next free doctor.
                    .order_by(t.consultations.c.rank_at, t.consultations.c.id)
                    .with_for_update()
                )
            ).all()
            await self._matcher.lock_presence(uow)
            for row in offers:
                await self._consultations.return_to_queue(uow, row, reason=f"doctor {status}")
            changed = await uow.conn.execute(
                t.doctor_presence.update()
                .where(_P.doctor_id == actor.user_id)
                .values(status=status, since=self._clock.now())
            )
            if changed.rowcount:
                uow.collect(PresenceChanged(actor.user_id, status, reason))
            for row in offers:
                await self._matcher.match_ticket(uow, row.id)
            await uow.commit()
        return PresenceOut(status=status, specialties=[], forms=[], capacity=0)

    @retry_transient()
    async def connected(self, actor: Actor) -> None:
        """A connection of this user came (back): their lease or ticket holds again."""
        async with self._db.uow() as uow:
            if actor.is_doctor:
                back = await uow.conn.execute(
                    t.doctor_presence.update()
                    .where(_P.doctor_id == actor.user_id, _P.disconnected_at.is_not(None))
                    .values(disconnected_at=None)
                )
                if back.rowcount:  # takes patients again, from the front of the queue
                    await self._matcher.match_doctor(uow, actor.user_id)
            elif actor.is_patient:
                await uow.conn.execute(
                    t.consultations.update()
                    .where(
                        t.consultations.c.patient_id == actor.user_id,
                        t.consultations.c.patient_disconnected_at.is_not(None),
                    )
                    .values(patient_disconnected_at=None)
                )
            await uow.commit()

    @retry_transient()
    async def disconnected(self, actor: Actor) -> None:
        """The user's last connection (in this process) dropped: the grace period starts."""
        now = self._clock.now()
        async with self._db.uow() as uow:
            if actor.is_doctor:
                # Whatever the status: an away doctor may still be consulting.
                await uow.conn.execute(
                    t.doctor_presence.update()
                    .where(_P.doctor_id == actor.user_id)
                    .values(disconnected_at=now)
                )
            elif actor.is_patient:
                # Active ones too: if their doctor is lost later, the ticket that returns to the
                # queue must still know its patient is gone.
                await uow.conn.execute(
                    t.consultations.update()
                    .where(
                        t.consultations.c.patient_id == actor.user_id,
                        t.consultations.c.status.in_(OPEN_STATUSES),
                    )
                    .values(patient_disconnected_at=now)
                )
            await uow.commit()

    async def state(self, actor: Actor) -> PresenceOut:
        check_doctor(actor)
        async with self._db.uow() as uow:
            row = (
                await uow.conn.execute(
                    sa.select(t.doctor_presence).where(_P.doctor_id == actor.user_id)
                )
            ).first()
        if row is None:
            return PresenceOut(status=PresenceStatus.OFFLINE, specialties=[], forms=[], capacity=0)
        return PresenceOut(
            status=row.status,
            specialties=row.specialties,
            forms=row.forms,
            capacity=row.capacity,
            languages=row.languages or [],
        )
