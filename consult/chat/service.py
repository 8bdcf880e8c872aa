"""Posting and reading chat messages, read receipts and typing notices.

A message is acknowledged only after it is committed; a retry with the same client id returns
the stored message instead of storing it twice. Messages are written by a group-commit writer
(``writer.py``). After a reconnect a client resumes from the last sequence number it holds.
"""

from __future__ import annotations

from typing import Any

from consult.audit import Audit
from consult.chat import repository as repo
from consult.chat.batch_store import Draft
from consult.chat.limits import RateLimiter, SharedLimiter, check_length
from consult.chat.writer import GroupWriter
from consult.clock import Clock
from consult.domain import Actor, ConsultationStatus
from consult.errors import Conflict
from consult.events import MessagesRead, Typing
from consult.queue.service import ConsultationService
from consult.schemas import (
    MESSAGES_PAGE,
    MessageOut,
    MessagesOut,
    ReadStateOut,
    ReceiptOut,
    ResumeOut,
    TypingOut,
)
from consult.shared_counters import SharedCounters
from consult.storage.retry import retry_transient
from consult.storage.uow import Database, UnitOfWork

# Typing notices are advisory; a page sends one every few seconds at most while typing.
TYPING_RATE = 2.0
TYPING_BURST = 5


class ChatService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        audit: Audit,
        consultations: ConsultationService,
        *,
        max_length: int = 4000,
        rate: float = 10.0,
        burst: int = 20,
        counters: SharedCounters,
    ) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._consultations = consultations
        self.max_length = max_length
        # Per (consultation, user); shared by every process when Redis is configured.
        self.limiter = SharedLimiter(RateLimiter(clock, rate, burst), counters, "chat")
        typing = RateLimiter(clock, TYPING_RATE, TYPING_BURST, what="typing notices")
        self._typing_limiter = SharedLimiter(typing, counters, "typing")
        self._writer = GroupWriter(db, clock, audit)

    async def post(
        self,
        actor: Actor,
        consultation_id: int,
        client_id: str,
        body: str,
        *,
        document_id: int | None = None,
    ) -> MessageOut:
        """Store a message (or find it again, for a retry) and return it once committed.

        Too long, or too fast for this participant: refused before anything is stored.
        """
        check_length(body, self.max_length)
        await self.limiter.take(consultation_id, actor.user_id)
        return await self._writer.write(
            Draft(actor, consultation_id, client_id, body, document_id=document_id)
        )

    async def transcript(
        self, actor: Actor, consultation_id: int, after_seq: int = 0, limit: int = MESSAGES_PAGE
    ) -> MessagesOut:
        """A page of the transcript: at most ``limit`` messages after ``after_seq``."""
        async with self._db.uow() as uow:
            # No row lock, as for resume: reading the transcript must not hold up the senders.
            row = await self._participant_row(uow, actor, consultation_id, "chat.read", read=True)
            messages, more = await repo.messages_after(uow, consultation_id, after_seq, limit)
            await self._audit.write(
                uow, actor, "chat.read", patient_id=row.patient_id, consultation_id=consultation_id
            )
            await uow.commit()
        return MessagesOut(messages=messages, has_more=more)

    @retry_transient()
    async def resume(
        self, actor: Actor, consultation_id: int, after_seq: int, limit: int = MESSAGES_PAGE
    ) -> ResumeOut:
        """After a (re)connect: the messages after ``after_seq`` in order (a page of at most
        ``limit``; ``has_more`` asks for the next), the consultation's status and both read
        receipts. Messages pushed meanwhile carry higher seqs, so a client that applies
        messages in seq order neither misses nor repeats one."""
        async with self._db.uow() as uow:
            # No row lock: a resume must not hold up the senders of this consultation.
            row = await self._participant_row(uow, actor, consultation_id, "chat.read", read=True)
            messages, more = await repo.messages_after(uow, consultation_id, after_seq, limit)
            await self._audit.write(
                uow, actor, "chat.read", patient_id=row.patient_id, consultation_id=consultation_id
            )
            await uow.commit()
        last_seq = max([row.last_seq, after_seq, *(m.seq for m in messages)])
        return ResumeOut(
            consultation_id=consultation_id,
            status=row.status,
            messages=messages,
            has_more=more,
            last_seq=last_seq,
            read=_read_state(row),
        )

    @retry_transient()
    async def mark_read(self, actor: Actor, consultation_id: int, seq: int) -> ReceiptOut:
        """A read receipt: the actor has seen every message up to ``seq``. It only moves
        forward, and never past the last message; both participants are told when it moves."""
        async with self._db.uow() as uow:
            # Locked: the receipt returned is computed from this row.
            row = await self._participant_row(
                uow, actor, consultation_id, "chat.receipt", lock=True
            )
            column = "patient_read_seq" if actor.user_id == row.patient_id else "doctor_read_seq"
            read_seq = min(seq, row.last_seq)
            state = {
                "patient_read_seq": row.patient_read_seq,
                "doctor_read_seq": row.doctor_read_seq,
            }
            moved = read_seq > state[column]
            state[column] = max(read_seq, state[column])
            receipt = ReceiptOut(
                consultation_id=consultation_id,
                reader_id=actor.user_id,
                reader_role=actor.role,
                read_seq=state[column],
                read=ReadStateOut(**state),
            )
            if moved:
                await repo.advance_read(uow, consultation_id, column, read_seq)
                await self._audit.write(
                    uow,
                    actor,
                    "chat.receipt",
                    patient_id=row.patient_id,
                    consultation_id=consultation_id,
                    detail=f"read up to {read_seq}",
                )
                uow.collect(
                    MessagesRead(row.patient_id, row.doctor_id, receipt.model_dump(mode="json"))
                )
                await uow.commit()
        return receipt

    async def typing(self, actor: Actor, consultation_id: int, typing: bool) -> TypingOut:
        """Tell the other participant that the actor is (or stopped) typing. Nothing is
        stored; a lost notice is harmless (the page clears the indicator after a few seconds)."""
        await self._typing_limiter.take(consultation_id, actor.user_id)
        async with self._db.reader() as uow:
            row = await self._participant_row(uow, actor, consultation_id, "chat.typing")
            if row.status != ConsultationStatus.ACTIVE:
                raise Conflict("the consultation is not active", code="consultation_not_active")
            out = TypingOut(
                consultation_id=consultation_id,
                user_id=actor.user_id,
                role=actor.role,
                typing=typing,
            )
            other = row.doctor_id if actor.user_id == row.patient_id else row.patient_id
            uow.collect(Typing(other, out.model_dump(mode="json")))
            await uow.commit()
        return out

    async def _participant_row(
        self,
        uow: UnitOfWork,
        actor: Actor,
        consultation_id: int,
        action: str,
        *,
        lock: bool = False,
        read: bool = False,
    ) -> Any:
        """``ConsultationService.participant_row`` (the one participant check), unlocked unless
        asked: reads must not hold up the senders."""
        return await self._consultations.participant_row(
            uow, actor, consultation_id, action, read=read, lock=lock
        )


def _read_state(row: Any) -> ReadStateOut:
    return ReadStateOut(patient_read_seq=row.patient_read_seq, doctor_read_seq=row.doctor_read_seq)
