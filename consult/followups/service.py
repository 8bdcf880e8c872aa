"""Follow-up questions: a patient asks the doctor of a finished consultation, within a window of
days after it ended; the question lands in that doctor's inbox; the doctor answers once, the
answer goes live to the patient and stays in their record. Every read and write is audited.

Both the question and the answer carry a client-chosen id: a repeat (a double click, a retry
after a lost response) is answered with what was stored the first time, never stored twice,
told to nobody again and not audited again, as chat messages are.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa

from consult.accounts.checks import check_verified_patient
from consult.audit import Audit
from consult.clock import Clock, as_utc
from consult.domain import Actor, ConsultationStatus
from consult.errors import Conflict, NotAllowed, NotFound
from consult.events import Push, RecordChanged
from consult.followups import repository as repo
from consult.followups.schemas import AnswerIn, AskIn
from consult.notify import messages
from consult.notify.outbox import enqueue
from consult.queue.service import ConsultationService, check_doctor
from consult.schemas import FollowUpOut
from consult.storage.retry import retry_transient
from consult.storage.uow import Database

log = logging.getLogger(__name__)


def check_patient(actor: Actor) -> None:
    check_verified_patient(
        actor, only_patients="ask follow-up questions", feature="follow-up questions"
    )


class FollowUpService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        audit: Audit,
        consultations: ConsultationService,
        *,
        window_days: int,
    ) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._consultations = consultations
        self.window = timedelta(days=window_days)

    @retry_transient()
    async def ask(self, actor: Actor, consultation_id: int, request: AskIn) -> FollowUpOut:
        """Store the question (or find it again, for a repeat of ``request.client_id``)."""
        check_patient(actor)
        async with self._db.uow() as uow:
            row = await self._consultations.participant_row(
                uow, actor, consultation_id, "follow_up.ask"
            )
            # A repeat gets the stored question, whatever has changed since (the window may
            # have closed); what else it carries is ignored.
            stored = await repo.by_client_id(uow, consultation_id, actor.user_id, request.client_id)
            if stored is not None:
                return self._repeated(stored)
            now = self._clock.now()
            self._check_open(row, request, now)
            fid = await repo.insert_new(
                uow,
                consultation_id=consultation_id,
                patient_id=actor.user_id,
                doctor_id=row.doctor_id,
                question=request.question,
                client_id=request.client_id,
                asked_at=now,
            )
            if fid is None:
                # A concurrent repeat was stored first (the consultation row lock makes this
                # rare); uq_follow_ups_client_id kept it to one row.
                stored = await repo.by_client_id(
                    uow, consultation_id, actor.user_id, request.client_id
                )
                assert stored is not None
                return self._repeated(stored)
            await self._audit.write(
                uow,
                actor,
                "follow_up.ask",
                patient_id=actor.user_id,
                consultation_id=consultation_id,
            )
            out = await repo.load(uow, fid)
            assert out is not None
            asked = {"follow_up": out.model_dump(mode="json")}
            uow.collect(Push((row.doctor_id,), "follow-up:asked", asked))
            await uow.commit()
        log.info("follow-up %s asked about consultation %s", fid, consultation_id)
        return out

    @retry_transient()
    async def answer(self, actor: Actor, follow_up_id: int, request: AnswerIn) -> FollowUpOut:
        """Store the answer, once (or find it again, for a repeat of ``request.client_id``)."""
        check_doctor(actor)
        async with self._db.uow() as uow:
            row = await repo.lock(uow, follow_up_id)
            if row is None:
                raise NotFound(f"no follow-up question {follow_up_id}", code="follow_up_not_found")
            if row.doctor_id != actor.user_id:
                self._audit.deny_after_rollback(
                    uow,
                    actor,
                    "follow_up.answer",
                    patient_id=row.patient_id,
                    consultation_id=row.consultation_id,
                )
                raise NotAllowed(
                    "this question was asked to another doctor", code="not_your_follow_up"
                )
            if row.answered_at is not None or not await repo.answer(
                uow, follow_up_id, request.answer, request.client_id, self._clock.now()
            ):
                # Answered already: by this very request if the client id is the same (the
                # stored answer, whatever the repeat says), else by another one.
                if row.answered_at is None:  # answered meanwhile: read what was stored
                    row = await repo.lock(uow, follow_up_id)
                if row.answer_client_id == request.client_id:
                    stored = await repo.load(uow, follow_up_id)
                    assert stored is not None
                    return self._repeated(stored)
                raise Conflict(
                    "this question has been answered already", code="follow_up_already_answered"
                )
            await self._audit.write(
                uow,
                actor,
                "follow_up.answer",
                patient_id=row.patient_id,
                consultation_id=row.consultation_id,
            )
            out = await repo.load(uow, follow_up_id)
            assert out is not None
            to = await messages.recipient(uow, row.patient_id)
            mail = messages.follow_up_answered(row.patient_id, to.email, to.name, actor.name)
            await enqueue(uow, mail, self._clock.now())
            # To the doctor too: their other tabs take it out of the inbox.
            answered = {"follow_up": out.model_dump(mode="json")}
            uow.collect(Push((row.patient_id, row.doctor_id), "follow-up:answered", answered))
            uow.collect(RecordChanged(row.patient_id, row.consultation_id))
            await uow.commit()
        log.info("follow-up %s answered (consultation %s)", follow_up_id, row.consultation_id)
        return out

    def _check_open(self, row: sa.Row, request: AskIn, now: datetime) -> None:
        """A question goes to the doctor of a finished consultation, within the window."""
        if row.status != ConsultationStatus.ENDED or row.doctor_id is None:
            raise Conflict(
                "follow-up questions can be asked only after a finished consultation",
                code="consultation_not_finished",
            )
        if request.doctor_id is not None and request.doctor_id != row.doctor_id:
            raise NotAllowed(
                "a follow-up question goes to the doctor of the consultation only",
                code="not_the_consulting_doctor",
            )
        closes = as_utc(row.ended_at) + self.window
        if now > closes:
            raise Conflict(
                f"follow-up questions to this consultation's doctor were possible for "
                f"{self.window.days} days after it ended; book a new consultation instead",
                code="follow_up_window_closed",
                details={"closed_at": closes.isoformat()},
            )

    @staticmethod
    def _repeated(stored: FollowUpOut) -> FollowUpOut:
        # Nothing is written (the caller's transaction rolls back), pushed or audited again.
        log.info(
            "follow-up %s sent again with the same client id (consultation %s)",
            stored.id,
            stored.consultation_id,
        )
        return stored

    async def list_for(self, actor: Actor, *, answered: bool = False) -> list[FollowUpOut]:
        """A doctor's inbox (unanswered, oldest first; ``answered``: those answered), or a
        patient's own questions."""
        async with self._db.uow() as uow:
            if actor.is_doctor:
                found = await repo.inbox(uow, actor.user_id, answered=answered)
            elif actor.is_patient:
                found = await repo.of_patient(uow, actor.user_id)
            else:
                raise NotAllowed("only patients and doctors have follow-ups", code="not_allowed")
            await self._audit.reads(uow, actor, "follow_up.read", (f.patient.id for f in found))
            await uow.commit()
        return found
