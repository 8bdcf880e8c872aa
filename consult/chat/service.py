"""Posting and reading chat messages. A message is acknowledged only after it is committed; a
retry with the same client id returns the stored message instead of storing it twice."""

from __future__ import annotations

import logging

from consult.chat import repository as repo
from consult.clock import Clock
from consult.domain import Actor, ConsultationStatus
from consult.errors import Conflict
from consult.events import MessagePosted
from consult.queue.service import ConsultationService
from consult.records.audit import Audit
from consult.schemas import MessageOut
from consult.storage import tables as t
from consult.storage.retry import retry_transient
from consult.storage.uow import Database

log = logging.getLogger(__name__)


class ChatService:
    def __init__(
        self, db: Database, clock: Clock, audit: Audit, consultations: ConsultationService
    ) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._consultations = consultations

    @retry_transient()
    async def post(
        self, actor: Actor, consultation_id: int, client_id: str, body: str
    ) -> MessageOut:
        async with self._db.uow() as uow:
            # The row lock orders concurrent senders: sequence numbers follow commit order.
            row = await self._consultations.participant_row(
                uow, actor, consultation_id, "chat.write"
            )
            existing = await repo.message_by_client_id(
                uow, consultation_id, actor.user_id, client_id
            )
            if existing is not None:
                return existing
            if row.status != ConsultationStatus.ACTIVE:
                raise Conflict(
                    "messages can be sent only while the consultation is active",
                    code="consultation_not_active",
                )
            seq = row.last_seq + 1
            now = self._clock.now()
            await uow.conn.execute(
                t.consultations.update()
                .where(t.consultations.c.id == consultation_id)
                .values(last_seq=seq)
            )
            await uow.conn.execute(
                t.messages.insert().values(
                    consultation_id=consultation_id,
                    seq=seq,
                    sender_id=actor.user_id,
                    client_id=client_id,
                    body=body,
                    created_at=now,
                )
            )
            await self._audit.write(
                uow, actor, "chat.write", patient_id=row.patient_id, consultation_id=consultation_id
            )
            message = await repo.message_by_client_id(
                uow, consultation_id, actor.user_id, client_id
            )
            assert message is not None
            uow.collect(
                MessagePosted(row.patient_id, row.doctor_id, message.model_dump(mode="json"))
            )
            await uow.commit()
        return message

    async def transcript(
        self, actor: Actor, consultation_id: int, after_seq: int = 0
    ) -> list[MessageOut]:
        async with self._db.uow() as uow:
            row = await self._consultations.participant_row(
                uow, actor, consultation_id, "chat.read"
            )
            messages = await repo.messages_after(uow, consultation_id, after_seq)
            await self._audit.write(
                uow, actor, "chat.read", patient_id=row.patient_id, consultation_id=consultation_id
            )
            await uow.commit()
        return messages
