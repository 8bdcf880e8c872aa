"""Starting, matching and ending consultations; doctors going online and offline.

``check_*`` functions validate and authorise; ``do_*``/public methods mutate and collect
events, which the unit of work publishes after commit. Matching happens inside the
transaction that made it possible (a patient arriving, a doctor coming online or freeing up)
and holds the doctors' presence rows locked, so a patient is never given to two doctors and a
doctor never exceeds their capacity, whatever the number of server processes.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from consult.accounts.service import covered_specialties, doctor_specialties, specialty_name
from consult.clock import Clock
from consult.domain import (
    OPEN_STATUSES,
    Actor,
    ConsultationStatus,
    Form,
    Identity,
    PresenceStatus,
)
from consult.errors import Conflict, Invalid, NotAllowed, NotFound
from consult.events import ConsultationEnded, ConsultationMatched
from consult.queue import repository as repo
from consult.queue.matching import DoctorSlot, Waiting, pick_doctor, pick_waiting
from consult.records.audit import Audit
from consult.schemas import ConsultationOut, PresenceOut
from consult.storage import tables as t
from consult.storage.uow import Database, UnitOfWork

log = logging.getLogger(__name__)


def check_patient_may_start(actor: Actor) -> None:
    if not actor.is_patient:
        raise NotAllowed("only patients start consultations", code="not_a_patient")
    if actor.identity is not Identity.VERIFIED:
        raise NotAllowed(
            "online consultations need a verified account; confirm your identity first",
            code="identity_not_verified",
        )


def check_doctor(actor: Actor) -> None:
    if not actor.is_doctor:
        raise NotAllowed("only doctors do this", code="not_a_doctor")


class ConsultationService:
    def __init__(self, db: Database, clock: Clock, audit: Audit) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit

    # --- patients ---------------------------------------------------------------------------

    async def start(self, actor: Actor, specialty: str, form: Form) -> ConsultationOut:
        check_patient_may_start(actor)
        async with self._db.uow() as uow:
            await specialty_name(uow, specialty)
            if specialty not in await covered_specialties(uow, actor.user_id):
                raise NotAllowed(
                    f"your plan does not cover {specialty!r}; book a visit or change plan",
                    code="not_covered",
                )
            open_ = await repo.list_consultations(
                uow,
                t.consultations.c.patient_id == actor.user_id,
                t.consultations.c.status.in_(OPEN_STATUSES),
            )
            if open_:
                raise Conflict(
                    "you already have an open consultation",
                    code="already_in_consultation",
                    details={"consultation_id": open_[0].id},
                )
            try:
                cid = (
                    await uow.conn.execute(
                        t.consultations.insert()
                        .values(
                            patient_id=actor.user_id,
                            specialty_code=specialty,
                            form=str(form),
                            status=ConsultationStatus.WAITING,
                            created_at=self._clock.now(),
                        )
                        .returning(t.consultations.c.id)
                    )
                ).scalar_one()
            except IntegrityError as exc:  # a concurrent start by the same patient won
                raise Conflict(
                    "you already have an open consultation", code="already_in_consultation"
                ) from exc
            await self._audit.write(
                uow, actor, "consultation.start", patient_id=actor.user_id, consultation_id=cid
            )
            await self._match_consultation(uow, cid, specialty, str(form))
            out = await repo.load_consultation(uow, cid)
            await uow.commit()
        assert out is not None
        log.info("consultation %s started (%s)", cid, out.status)
        return out

    # --- doctors ----------------------------------------------------------------------------

    async def go_online(
        self, actor: Actor, specialties: list[str], forms: list[Form]
    ) -> PresenceOut:
        check_doctor(actor)
        async with self._db.uow() as uow:
            practised = set(await doctor_specialties(uow, actor.user_id))
            unknown = sorted(set(specialties) - practised)
            if unknown:
                raise Invalid(
                    f"you do not practise {', '.join(unknown)}",
                    code="specialty_not_practised",
                    details={"specialties": unknown},
                )
            presence = PresenceOut(
                status=PresenceStatus.ONLINE,
                specialties=sorted(set(specialties)),
                forms=sorted(set(forms)),
                capacity=1,
            )
            values = {**presence.model_dump(mode="json"), "since": self._clock.now()}
            updated = await uow.conn.execute(
                t.doctor_presence.update()
                .where(t.doctor_presence.c.doctor_id == actor.user_id)
                .values(**values)
            )
            if updated.rowcount == 0:
                await uow.conn.execute(
                    t.doctor_presence.insert().values(doctor_id=actor.user_id, **values)
                )
            await self._match_doctor(uow, actor.user_id)
            await uow.commit()
        log.info("doctor %s online for %s", actor.user_id, presence.specialties)
        return presence

    async def go_offline(self, actor: Actor) -> PresenceOut:
        check_doctor(actor)
        async with self._db.uow() as uow:
            await uow.conn.execute(
                t.doctor_presence.update()
                .where(t.doctor_presence.c.doctor_id == actor.user_id)
                .values(status=PresenceStatus.OFFLINE, since=self._clock.now())
            )
            await uow.commit()
        return PresenceOut(status=PresenceStatus.OFFLINE, specialties=[], forms=[], capacity=0)

    # --- either side ------------------------------------------------------------------------

    async def end(self, actor: Actor, consultation_id: int) -> ConsultationOut:
        async with self._db.uow() as uow:
            row = await self.participant_row(uow, actor, consultation_id, "consultation.end")
            if row.status not in OPEN_STATUSES:
                raise Conflict("the consultation has already ended", code="consultation_ended")
            status = (
                ConsultationStatus.ENDED
                if row.status == ConsultationStatus.ACTIVE
                else ConsultationStatus.CANCELLED
            )
            await uow.conn.execute(
                t.consultations.update()
                .where(t.consultations.c.id == consultation_id)
                .values(status=status, ended_at=self._clock.now(), ended_by=actor.user_id)
            )
            await self._audit.write(
                uow,
                actor,
                "consultation.end",
                patient_id=row.patient_id,
                consultation_id=consultation_id,
            )
            out = await repo.load_consultation(uow, consultation_id)
            assert out is not None
            uow.collect(ConsultationEnded(out.model_dump(mode="json")))
            if row.doctor_id is not None:
                await self._match_doctor(uow, row.doctor_id)
            await uow.commit()
        log.info("consultation %s %s by user %s", consultation_id, status, actor.user_id)
        return out

    async def get(self, actor: Actor, consultation_id: int) -> ConsultationOut:
        async with self._db.uow() as uow:
            await self.participant_row(uow, actor, consultation_id, "consultation.read")
            out = await repo.load_consultation(uow, consultation_id)
        assert out is not None
        return out

    async def open_for(self, actor: Actor) -> list[ConsultationOut]:
        """The actor's waiting or active consultations (a doctor may have several chats)."""
        side = t.consultations.c.doctor_id if actor.is_doctor else t.consultations.c.patient_id
        async with self._db.uow() as uow:
            return await repo.list_consultations(
                uow, side == actor.user_id, t.consultations.c.status.in_(OPEN_STATUSES)
            )

    async def participant_row(
        self, uow: UnitOfWork, actor: Actor, consultation_id: int, action: str
    ) -> sa.Row:
        """The consultation's row, locked, if the actor takes part in it; denied (and audited)
        otherwise."""
        row = await repo.lock_consultation(uow, consultation_id)
        if row is None:
            raise NotFound(f"no consultation {consultation_id}", code="consultation_not_found")
        if not repo.is_participant(actor, row):
            self._audit.deny_after_rollback(
                uow, actor, action, patient_id=row.patient_id, consultation_id=consultation_id
            )
            raise NotAllowed("you are not part of this consultation", code="not_participant")
        return row

    # --- matching ---------------------------------------------------------------------------

    async def _doctor_slots(
        self, uow: UnitOfWork, doctor_id: int | None = None
    ) -> list[DoctorSlot]:
        query = (
            sa.select(t.doctor_presence)
            .where(t.doctor_presence.c.status == PresenceStatus.ONLINE)
            .order_by(t.doctor_presence.c.doctor_id)
            .with_for_update()
        )
        if doctor_id is not None:
            query = query.where(t.doctor_presence.c.doctor_id == doctor_id)
        rows = (await uow.conn.execute(query)).all()
        if not rows:
            return []
        active: dict[int, int] = dict(
            (
                await uow.conn.execute(
                    sa.select(t.consultations.c.doctor_id, sa.func.count())
                    .where(
                        t.consultations.c.doctor_id.in_([r.doctor_id for r in rows]),
                        t.consultations.c.status == ConsultationStatus.ACTIVE,
                    )
                    .group_by(t.consultations.c.doctor_id)
                )
            ).all()
        )
        return [
            DoctorSlot(
                doctor_id=r.doctor_id,
                specialties=frozenset(r.specialties),
                forms=frozenset(r.forms),
                capacity=r.capacity,
                active=int(active.get(r.doctor_id, 0)),
            )
            for r in rows
        ]

    async def _match_consultation(
        self, uow: UnitOfWork, consultation_id: int, specialty: str, form: str
    ) -> None:
        doctor = pick_doctor(await self._doctor_slots(uow), specialty, form)
        if doctor is not None:
            await self._assign(uow, consultation_id, doctor.doctor_id)

    async def _match_doctor(self, uow: UnitOfWork, doctor_id: int) -> None:
        slots = await self._doctor_slots(uow, doctor_id)
        if not slots:
            return
        doctor = slots[0]
        while doctor.free > 0:
            rows = await uow.conn.execute(
                sa.select(
                    t.consultations.c.id, t.consultations.c.specialty_code, t.consultations.c.form
                )
                .where(
                    t.consultations.c.status == ConsultationStatus.WAITING,
                    t.consultations.c.specialty_code.in_(doctor.specialties),
                    t.consultations.c.form.in_(doctor.forms),
                )
                .order_by(t.consultations.c.created_at, t.consultations.c.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            queue = [Waiting(r.id, r.specialty_code, r.form) for r in rows]
            chosen = pick_waiting(doctor, queue)
            if chosen is None:
                return
            await self._assign(uow, chosen.consultation_id, doctor_id)
            doctor = DoctorSlot(
                doctor.doctor_id,
                doctor.specialties,
                doctor.forms,
                doctor.capacity,
                doctor.active + 1,
            )

    async def _assign(self, uow: UnitOfWork, consultation_id: int, doctor_id: int) -> None:
        await uow.conn.execute(
            t.consultations.update()
            .where(
                t.consultations.c.id == consultation_id,
                t.consultations.c.status == ConsultationStatus.WAITING,
            )
            .values(
                doctor_id=doctor_id, status=ConsultationStatus.ACTIVE, started_at=self._clock.now()
            )
        )
        out = await repo.load_consultation(uow, consultation_id)
        assert out is not None
        uow.collect(ConsultationMatched(out.model_dump(mode="json")))
        log.info("consultation %s matched with doctor %s", consultation_id, doctor_id)
