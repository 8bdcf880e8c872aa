"""Joining and leaving the walk-in queue, answering offers, ending consultations.

``check_*`` functions validate and authorise; the service methods mutate inside one unit of
work and collect events, which are published only after commit. Matching (``Matcher``) runs
in the same transaction as the change that made it possible.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from consult.accounts.checks import check_verified_patient
from consult.accounts.repository import covered_specialties, doctor_specialties, specialty_name
from consult.audit import Audit
from consult.clock import Clock
from consult.domain import OPEN_STATUSES, Actor, ConsultationStatus, PresenceStatus
from consult.errors import Conflict, Invalid, NotAllowed, NotFound
from consult.events import (
    ConsultationEnded,
    ConsultationMatched,
    OfferWithdrawn,
    PresenceChanged,
    QueueChanged,
)
from consult.queue import participation
from consult.queue import repository as repo
from consult.queue.matcher import Matcher
from consult.queue.policy import rank_at
from consult.schemas import ConsultationOut, EtaOut, StartConsultationIn
from consult.storage import tables as t
from consult.storage.retry import retry_transient
from consult.storage.uow import Database, UnitOfWork

log = logging.getLogger(__name__)
_C = t.consultations.c


Estimator = Callable[[UnitOfWork, ConsultationOut], Awaitable[EtaOut]]


def _seconds(minutes: int | None) -> int | None:
    return None if minutes is None else minutes * 60


# Built once, bound per call (statement building costs more than running: performance.md).
_ONE = _C.id == sa.bindparam("cid")
_SHOWN = (
    t.consultations.update()
    .where(_ONE)
    .values(eta_low_s=sa.bindparam("low"), eta_high_s=sa.bindparam("high"))
)
_ACCEPT = (
    t.consultations.update()
    .where(_ONE)
    .values(status=ConsultationStatus.ACTIVE, started_at=sa.bindparam("now"), offer_expires_at=None)
)
_END = (
    t.consultations.update()
    .where(_ONE)
    .values(
        status=sa.bindparam("new_status"),
        ended_at=sa.bindparam("now"),
        ended_by=sa.bindparam("by"),
        offer_expires_at=None,
    )
)


def _offered_to_actor(row: Any, actor: Actor) -> bool:
    return row.status == ConsultationStatus.OFFERED and row.doctor_id == actor.user_id


def check_patient_may_start(actor: Actor) -> None:
    check_verified_patient(
        actor, only_patients="start consultations", feature="online consultations"
    )


def check_doctor(actor: Actor) -> None:
    if not actor.is_doctor:
        raise NotAllowed("only doctors do this", code="not_a_doctor")


async def _check_may_join(uow: UnitOfWork, actor: Actor, request: StartConsultationIn) -> None:
    """The patient's plan covers the specialty, a preferred doctor practises it, and the
    patient has no open consultation or ticket already."""
    specialty = request.specialty
    await specialty_name(uow, specialty)
    if specialty not in await covered_specialties(uow, actor.user_id):
        raise NotAllowed(
            f"your plan does not cover {specialty!r}; book a visit or change plan",
            code="not_covered",
        )
    if request.preferred_doctor_id is not None and specialty not in (
        await doctor_specialties(uow, request.preferred_doctor_id)
    ):
        raise Invalid(
            "the preferred doctor does not practise this specialty",
            code="unknown_doctor",
        )
    open_ = await repo.list_consultations(
        uow, _C.patient_id == actor.user_id, _C.status.in_(OPEN_STATUSES)
    )
    if open_:
        raise Conflict(
            "you already have an open consultation or queue ticket",
            code="already_in_consultation",
            details={"consultation_id": open_[0].id},
        )


async def _insert_ticket(
    uow: UnitOfWork, actor: Actor, request: StartConsultationIn, now: datetime
) -> int:
    """The new ticket's id, waiting at the end of its queue."""
    try:
        return int(
            (
                await uow.conn.execute(
                    t.consultations.insert()
                    .values(
                        patient_id=actor.user_id,
                        specialty_code=request.specialty,
                        form=str(request.form),
                        status=ConsultationStatus.WAITING,
                        created_at=now,
                        rank_at=rank_at(now, 0),
                        priority=0,
                        language=request.language.lower() if request.language else None,
                        preferred_doctor_id=request.preferred_doctor_id,
                    )
                    .returning(_C.id)
                )
            ).scalar_one()
        )
    except IntegrityError as exc:  # a concurrent join by the same patient won
        raise Conflict(
            "you already have an open consultation or queue ticket",
            code="already_in_consultation",
        ) from exc


class ConsultationService:
    def __init__(self, db: Database, clock: Clock, audit: Audit, matcher: Matcher) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._matcher = matcher

    # --- patients ---------------------------------------------------------------------------

    @retry_transient()
    async def start(
        self, actor: Actor, request: StartConsultationIn, estimate: Estimator | None = None
    ) -> ConsultationOut:
        """Join the queue: a free doctor is offered the ticket at once if there is one.
        ``estimate`` gives the wait shown to the patient, read in this transaction; it is kept
        on the ticket, to compare with the real wait later."""
        check_patient_may_start(actor)
        specialty, form = request.specialty, str(request.form)
        async with self._db.uow() as uow:
            await _check_may_join(uow, actor, request)
            cid = await _insert_ticket(uow, actor, request, self._clock.now())
            await self._audit.write(
                uow, actor, "consultation.start", patient_id=actor.user_id, consultation_id=cid
            )
            uow.collect(QueueChanged(specialty, form))
            await self._matcher.match_ticket(uow, cid)
            out = await repo.load_consultation(uow, cid)
            assert out is not None
            if estimate is not None:
                shown = await estimate(uow, out)
                await uow.conn.execute(
                    _SHOWN,
                    {
                        "cid": cid,
                        "low": _seconds(shown.low_minutes),
                        "high": _seconds(shown.high_minutes),
                    },
                )
            await uow.commit()
        log.info("consultation %s joined the %s/%s queue (%s)", cid, specialty, form, out.status)
        return out

    # --- doctors ----------------------------------------------------------------------------

    @retry_transient()
    async def accept(self, actor: Actor, consultation_id: int) -> ConsultationOut:
        check_doctor(actor)
        async with self._db.uow() as uow:
            row = await self._offered_to(uow, actor, consultation_id)
            now = self._clock.now()
            await uow.conn.execute(_ACCEPT, {"cid": consultation_id, "now": now})
            await participation.record_acceptance(uow, consultation_id, actor.user_id, now)
            await self._audit.write(
                uow,
                actor,
                "consultation.accept",
                patient_id=row.patient_id,
                consultation_id=consultation_id,
            )
            out = await repo.load_consultation(uow, consultation_id)
            assert out is not None
            uow.collect(ConsultationMatched(out.model_dump(mode="json")))
            uow.collect(QueueChanged(row.specialty_code, row.form))
            await uow.commit()
        log.info("consultation %s accepted by doctor %s", consultation_id, actor.user_id)
        return out

    @retry_transient()
    async def decline(self, actor: Actor, consultation_id: int) -> ConsultationOut:
        check_doctor(actor)
        async with self._db.uow() as uow:
            row = await self._offered_to(uow, actor, consultation_id)
            await self.return_to_queue(uow, row, reason="declined", exclude=True)
            # Answer with the ticket as the decliner left it, not whoever is offered it next.
            out = await repo.load_consultation(uow, consultation_id)
            await self._matcher.match_ticket(uow, consultation_id)
            # The decliner is free again: the next ticket they serve goes to them.
            await self._matcher.match_doctor(uow, actor.user_id)
            await uow.commit()
        assert out is not None
        return out

    async def return_to_queue(
        self, uow: UnitOfWork, row: sa.Row, *, reason: str, exclude: bool = False
    ) -> None:
        """An offer withdrawn: the ticket keeps its place. With ``exclude`` (the doctor declined
        it, or let the offer lapse while online), that doctor is not offered it again for
        ``decline_exclusion``, and is kept as ``declined_by``; an offer withdrawn because the
        doctor went away or offline, or the ticket moved, excludes nobody. A lapsed offer
        (``reason="timeout"``) also sends that doctor, if still online, away. The caller holds
        the consultation row."""
        values: dict[str, Any] = {
            "status": ConsultationStatus.WAITING,
            "doctor_id": None,
            "offer_expires_at": None,
        }
        if exclude:
            values["declined_by"] = row.doctor_id
        await uow.conn.execute(
            t.consultations.update()
            .where(_C.id == row.id, _C.status == ConsultationStatus.OFFERED)
            .values(values)
        )
        if exclude:
            await self._matcher.exclude(uow, row.id, row.doctor_id)
        uow.collect(OfferWithdrawn(row.doctor_id, row.id, reason))
        uow.collect(QueueChanged(row.specialty_code, row.form))
        if reason == "timeout":
            await uow.conn.execute(
                t.doctor_presence.update()
                .where(
                    t.doctor_presence.c.doctor_id == row.doctor_id,
                    t.doctor_presence.c.status == PresenceStatus.ONLINE,
                )
                .values(status=PresenceStatus.AWAY, since=self._clock.now())
            )
            uow.collect(PresenceChanged(row.doctor_id, PresenceStatus.AWAY, "offer not answered"))
        log.info("offer of consultation %s to doctor %s %s", row.id, row.doctor_id, reason)

    async def _offered_to(self, uow: UnitOfWork, actor: Actor, consultation_id: int) -> sa.Row:
        row = await repo.lock_consultation(uow, consultation_id)
        if row is None:
            raise NotFound(f"no consultation {consultation_id}", code="consultation_not_found")
        if not _offered_to_actor(row, actor):
            raise Conflict("this patient is not offered to you (any more)", code="no_such_offer")
        return row

    # --- either side ------------------------------------------------------------------------

    @retry_transient()
    async def end(self, actor: Actor, consultation_id: int) -> ConsultationOut:
        """End an active consultation, or (patient) leave the queue: the ticket is cancelled."""
        async with self._db.uow() as uow:
            offered = await repo.lock_consultation(uow, consultation_id)
            if offered is not None and _offered_to_actor(offered, actor):
                # Not a party yet, but the offer is theirs: they are told what to do instead.
                raise Conflict("accept or decline the offer instead", code="no_such_offer")
            row = await self.participant_row(uow, actor, consultation_id, "consultation.end")
            if row.status not in OPEN_STATUSES:
                raise Conflict("the consultation has already ended", code="consultation_ended")
            if row.status != ConsultationStatus.ACTIVE and actor.user_id != row.patient_id:
                raise Conflict("accept or decline the offer instead", code="no_such_offer")
            out = await self.close_open(uow, actor, row)
            await uow.commit()
        log.info("consultation %s %s by user %s", consultation_id, out.status, actor.user_id)
        return out

    async def close_open(self, uow: UnitOfWork, actor: Actor, row: sa.Row) -> ConsultationOut:
        """Within the caller's transaction, with the consultation's row locked: an active
        consultation ends, a waiting or offered ticket is cancelled; the events are collected."""
        consultation_id = row.id
        active = row.status == ConsultationStatus.ACTIVE
        status = ConsultationStatus.ENDED if active else ConsultationStatus.CANCELLED
        await uow.conn.execute(
            _END,
            {
                "cid": consultation_id,
                "new_status": status,
                "now": self._clock.now(),
                "by": actor.user_id,
            },
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
        if row.status == ConsultationStatus.OFFERED:
            uow.collect(OfferWithdrawn(row.doctor_id, row.id, "patient left"))
        if not active:
            uow.collect(QueueChanged(row.specialty_code, row.form))
        if row.doctor_id is not None:
            await self._matcher.match_doctor(uow, row.doctor_id)
        return out

    async def get(self, actor: Actor, consultation_id: int) -> ConsultationOut:
        async with self._db.uow() as uow:
            row = await self.participant_row(
                uow, actor, consultation_id, "consultation.read", read=True
            )
            out = await repo.load_consultation(uow, consultation_id)
            await self._audit.write(
                uow,
                actor,
                "consultation.read",
                patient_id=row.patient_id,
                consultation_id=consultation_id,
            )
            await uow.commit()
        assert out is not None
        return out

    async def open_for(self, actor: Actor) -> list[ConsultationOut]:
        """The actor's open consultations: a patient's ticket, a doctor's offers and chats."""
        side = _C.doctor_id if actor.is_doctor else _C.patient_id
        async with self._db.uow() as uow:
            found = await repo.list_consultations(
                uow, side == actor.user_id, _C.status.in_(OPEN_STATUSES)
            )
            # A doctor's list names patients: audited (a patient's own ticket needs no entry).
            if actor.is_doctor and found:
                await self._audit.reads(
                    uow, actor, "consultation.read", (c.patient.id for c in found)
                )
                await uow.commit()
        return found

    async def participant_row(
        self,
        uow: UnitOfWork,
        actor: Actor,
        consultation_id: int,
        action: str,
        *,
        read: bool = False,
        lock: bool = True,
    ) -> sa.Row:
        """The consultation's row, locked (unless ``lock`` is False: reads that must not hold up
        the writers), if the actor is one of its two parties now (or, to ``read`` it, any doctor
        who ever accepted it: ``participation``); denied (and audited) otherwise. A doctor only
        offered it is neither."""
        row = await repo.lock_consultation(uow, consultation_id, lock=lock)
        if row is None:
            raise NotFound(f"no consultation {consultation_id}", code="consultation_not_found")
        allowed = (
            await participation.may_read(uow, actor, row)
            if read
            else participation.is_party(actor, row)
        )
        if not allowed:
            self._audit.deny_after_rollback(
                uow, actor, action, patient_id=row.patient_id, consultation_id=consultation_id
            )
            raise NotAllowed("you are not part of this consultation", code="not_participant")
        return row


async def queues_changed(uow: UnitOfWork, doctor_id: int) -> None:
    """The doctor's queues (each specialty and form they are present for) have new figures:
    their waiting patients get fresh tickets (the fan-out coalesces repeats)."""
    row = await repo.doctor_queues(uow, doctor_id)
    if row is None:
        return
    for specialty in row.specialties:
        for form in row.forms:
            uow.collect(QueueChanged(specialty, form))
