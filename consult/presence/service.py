"""Doctors' presence: a lease kept alive by the console's connection.

A doctor goes online for some specialties and forms with a capacity. When the console's last
connection drops, the lease runs for the grace period (``doctor_grace``): meanwhile the doctor
gets no new patients, and after it the doctor is away and the patients they were consulting
go back to the front of the queue (see ``queue/sweeper.py``). Reconnecting within the grace keeps
everything as it was. Patients' tickets work the same way with ``patient_grace``.

Each connection is a row of ``socket_connections`` naming its server process, so "the last
connection dropped" is known across processes and survives a crash: a user's grace starts when
they hold no connection in a live process, whether their last socket closed or the process
holding it died (``processes.py``). Every change that moves a queue's doctor figures (online,
away, offline, a console dropping or coming back) tells that queue's patients (``QueueChanged``).
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from consult.accounts.repository import doctor_specialties, lock_user_role
from consult.clock import Clock
from consult.domain import Actor, ConsultationStatus, PresenceStatus, Role
from consult.errors import Invalid
from consult.events import PresenceChanged
from consult.presence import repository as repo
from consult.queue import repository as queue_repo
from consult.queue.matcher import Matcher
from consult.queue.policy import QueueRules
from consult.queue.service import ConsultationService, check_doctor, queues_changed
from consult.schemas import PresenceIn, PresenceOut
from consult.storage.retry import retry_transient
from consult.storage.uow import Database

log = logging.getLogger(__name__)


def new_process_id() -> str:
    """This server process's id: new at every start, so a restarted process is a new one."""
    return uuid.uuid4().hex


class PresenceService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        rules: QueueRules,
        matcher: Matcher,
        consultations: ConsultationService,
        *,
        process_id: str = "",
        dead_after: timedelta = timedelta(seconds=20),
    ) -> None:
        self._consultations = consultations
        self.process_id = process_id or new_process_id()
        self._dead_after = dead_after
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
            await queues_changed(uow, actor.user_id)  # those they leave
            values = {
                **presence.model_dump(mode="json"),
                "since": self._clock.now(),
                "disconnected_at": None,
            }
            await repo.put_presence(uow, actor.user_id, values)
            uow.collect(PresenceChanged(actor.user_id, PresenceStatus.ONLINE, "went online"))
            await queues_changed(uow, actor.user_id)  # those they join
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
            offers = await queue_repo.lock_offers(uow, actor.user_id)
            await self._matcher.lock_presence(uow)
            for row in offers:
                await self._consultations.return_to_queue(uow, row, reason=f"doctor {status}")
            if await repo.set_status(uow, actor.user_id, status, self._clock.now()):
                uow.collect(PresenceChanged(actor.user_id, status, reason))
                await queues_changed(uow, actor.user_id)
            for row in offers:
                await self._matcher.match_ticket(uow, row.id)
            await uow.commit()
        return PresenceOut(status=status, specialties=[], forms=[], capacity=0)

    @retry_transient()
    async def connected(self, actor: Actor, sid: str | None = None) -> None:
        """A connection of this user came (back): their lease or ticket holds again. With
        ``sid``, the connection is recorded as held by this process."""
        now = self._clock.now()
        async with self._db.uow() as uow:
            await lock_user_role(uow, actor.user_id)
            if sid is not None:
                await repo.add_connection(uow, sid, self.process_id, actor.user_id, now)
            if actor.is_doctor:
                if await repo.doctor_back(uow, actor.user_id):
                    # Takes patients again, from the front of the queue.
                    await queues_changed(uow, actor.user_id)
                    await self._matcher.match_doctor(uow, actor.user_id)
            elif actor.is_patient:
                back = await repo.patient_back(uow, actor.user_id)
                for consultation_id, status in back:  # offered again, at once
                    if status == ConsultationStatus.WAITING:
                        await self._matcher.match_ticket(uow, consultation_id)
            await uow.commit()

    async def disconnected(self, actor: Actor, sid: str | None = None) -> None:
        """A connection of this user dropped (``sid``, or one not recorded): if it was their
        last in a live process, the grace period starts now."""
        await self.release(actor.user_id, sid=sid)

    @retry_transient()
    async def release(
        self, user_id: int, *, sid: str | None = None, process_id: str | None = None
    ) -> None:
        """Close one connection (``sid``) or every connection the user holds in a process
        (``process_id``, a dead or stopping one) and, if the user holds none left in a live
        process, start their grace period now. Closing a dead process's connections keeps a
        grace that had already started earlier; a socket's own disconnect restarts it."""
        now = self._clock.now()
        async with self._db.uow() as uow:
            role = await lock_user_role(uow, user_id)
            if sid is not None:
                await repo.remove_connection(uow, sid)
            if process_id is not None:
                await repo.remove_process_connections(uow, user_id, process_id)
            alive_since = now - self._dead_after
            if role is None or await repo.connected_elsewhere(
                uow, user_id, self.process_id, alive_since
            ):
                await uow.commit()
                return
            keep_earlier = process_id is not None
            if role == Role.DOCTOR:
                if await repo.doctor_gone(uow, user_id, now, keep_earlier):
                    # An online doctor in the grace counts as away.
                    await queues_changed(uow, user_id)
            elif role == Role.PATIENT:
                await repo.patient_gone(uow, user_id, now, keep_earlier)
            await uow.commit()

    async def state(self, actor: Actor) -> PresenceOut:
        check_doctor(actor)
        async with self._db.uow() as uow:
            row = await repo.presence_row(uow, actor.user_id)
        if row is None:
            return PresenceOut(status=PresenceStatus.OFFLINE, specialties=[], forms=[], capacity=0)
        return PresenceOut(
            status=row.status,
            specialties=row.specialties,
            forms=row.forms,
            capacity=row.capacity,
            languages=row.languages or [],
        )
