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

import sqlalchemy as sa

from consult.accounts.repository import doctor_specialties
from consult.clock import Clock
from consult.domain import OPEN_STATUSES, Actor, ConsultationStatus, PresenceStatus, Role
from consult.errors import Invalid
from consult.events import PresenceChanged
from consult.queue.matcher import Matcher
from consult.queue.policy import QueueRules
from consult.queue.service import ConsultationService, check_doctor, queues_changed
from consult.schemas import PresenceIn, PresenceOut
from consult.storage import tables as t
from consult.storage.retry import retry_transient
from consult.storage.uow import Database, UnitOfWork

log = logging.getLogger(__name__)
_P = t.doctor_presence.c
_S = t.socket_connections.c
_PROC = t.server_processes.c


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
            updated = await uow.conn.execute(
                t.doctor_presence.update().where(_P.doctor_id == actor.user_id).values(**values)
            )
            if updated.rowcount == 0:
                await uow.conn.execute(
                    t.doctor_presence.insert().values(doctor_id=actor.user_id, **values)
                )
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
            await _lock_user(uow, actor.user_id)
            if sid is not None:
                await uow.conn.execute(
                    t.socket_connections.insert().values(
                        sid=sid, process_id=self.process_id, user_id=actor.user_id, connected_at=now
                    )
                )
            if actor.is_doctor:
                back = await uow.conn.execute(
                    t.doctor_presence.update()
                    .where(_P.doctor_id == actor.user_id, _P.disconnected_at.is_not(None))
                    .values(disconnected_at=None)
                )
                if back.rowcount:  # takes patients again, from the front of the queue
                    await queues_changed(uow, actor.user_id)
                    await self._matcher.match_doctor(uow, actor.user_id)
            elif actor.is_patient:
                back = await uow.conn.execute(
                    t.consultations.update()
                    .where(
                        t.consultations.c.patient_id == actor.user_id,
                        t.consultations.c.patient_disconnected_at.is_not(None),
                    )
                    .values(patient_disconnected_at=None)
                    .returning(t.consultations.c.id, t.consultations.c.status)
                )
                for consultation_id, status in back.all():  # offered again, at once
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
            role = await _lock_user(uow, user_id)
            if sid is not None:
                await uow.conn.execute(t.socket_connections.delete().where(_S.sid == sid))
            if process_id is not None:
                await uow.conn.execute(
                    t.socket_connections.delete().where(
                        _S.user_id == user_id, _S.process_id == process_id
                    )
                )
            if role is None or await self._connected_elsewhere(uow, user_id):
                await uow.commit()
                return
            keep_earlier = process_id is not None
            if role == Role.DOCTOR:
                # Whatever the status: an away doctor may still be consulting.
                where = [_P.doctor_id == user_id]
                if keep_earlier:
                    where.append(_P.disconnected_at.is_(None))
                gone = await uow.conn.execute(
                    t.doctor_presence.update().where(*where).values(disconnected_at=now)
                )
                if gone.rowcount:  # an online doctor in the grace counts as away
                    await queues_changed(uow, user_id)
            elif role == Role.PATIENT:
                # Active ones too: if their doctor is lost later, the ticket that returns to the
                # queue must still know its patient is gone.
                where = [
                    t.consultations.c.patient_id == user_id,
                    t.consultations.c.status.in_(OPEN_STATUSES),
                ]
                if keep_earlier:
                    where.append(t.consultations.c.patient_disconnected_at.is_(None))
                await uow.conn.execute(
                    t.consultations.update().where(*where).values(patient_disconnected_at=now)
                )
            await uow.commit()

    async def _connected_elsewhere(self, uow: UnitOfWork, user_id: int) -> bool:
        """Whether the user still holds a connection here or in a process that is alive."""
        cutoff = self._clock.now() - self._dead_after
        live = sa.select(_PROC.id).where(_PROC.heartbeat_at >= cutoff).scalar_subquery()
        found = await uow.conn.execute(
            sa.select(_S.sid)
            .where(
                _S.user_id == user_id,
                sa.or_(_S.process_id == self.process_id, _S.process_id.in_(live)),
            )
            .limit(1)
        )
        return found.first() is not None

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


async def _lock_user(uow: UnitOfWork, user_id: int) -> str | None:
    """Lock the user's row (their role, None if there is no such user): a connection opening
    and another closing are decided one after the other. FOR NO KEY UPDATE, so that rows
    referring to the user (messages, audit) are not held up."""
    return (
        await uow.conn.execute(
            sa.select(t.users.c.role).where(t.users.c.id == user_id).with_for_update(key_share=True)
        )
    ).scalar()
