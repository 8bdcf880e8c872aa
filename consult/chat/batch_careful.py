"""The reference ``BatchStore``: the write rule applied message by message, in one transaction,
on either database (batch_store.py states the rule)."""

from __future__ import annotations

import logging
from typing import Any

from consult.audit import Audit, note_refusal
from consult.chat import repository as repo
from consult.chat.batch_store import (
    CHAT_WRITE,
    Draft,
    Key,
    StoredBatch,
    message_row,
    messages_out,
    one_by_one_on_failure,
    write_entry,
)
from consult.clock import Clock
from consult.domain import ConsultationStatus
from consult.errors import Conflict, NotAllowed, NotFound
from consult.queue.participation import is_party
from consult.storage.retry import retry_transient
from consult.storage.uow import Database

log = logging.getLogger(__name__)


class CarefulStore:
    """Each message's outcome told apart: a refusal (no consultation, a stranger, an ended
    consultation) fails that message alone, a retry gets the stored message."""

    def __init__(self, db: Database, clock: Clock, audit: Audit) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit

    async def store(self, batch: list[Draft]) -> StoredBatch:
        return await one_by_one_on_failure(self._attempt, batch)

    @retry_transient()
    async def _attempt(self, batch: list[Draft]) -> StoredBatch:
        return await self.transaction(batch)

    async def transaction(self, batch: list[Draft]) -> StoredBatch:
        """The batch in one transaction of its own."""
        now = self._clock.now()
        refused: dict[Draft, Exception] = {}
        async with self._db.uow() as uow:
            rows = await repo.lock_consultations(uow, list({d.consultation_id for d in batch}))
            stored = await repo.messages_by_client_ids(uow, {d.key for d in batch})
            last_seqs: dict[int, int] = {}
            fresh: dict[Key, dict[str, Any]] = {}
            audits: list[dict[str, Any]] = []
            for draft in batch:
                row = rows.get(draft.consultation_id)
                if row is None:
                    refused[draft] = NotFound(
                        f"no consultation {draft.consultation_id}", code="consultation_not_found"
                    )
                elif not is_party(draft.actor, row):
                    # In the batch's own transaction: it commits, so the entry survives, and no
                    # second writer is needed.
                    audits.append(self._denied(draft, row, now))
                    refused[draft] = NotAllowed(
                        "you are not part of this consultation", code="not_participant"
                    )
                elif draft.key in stored or draft.key in fresh:
                    pass  # a retry: answered with the stored message below
                elif row.status != ConsultationStatus.ACTIVE:
                    refused[draft] = Conflict(
                        "messages can be sent only while the consultation is active",
                        code="consultation_not_active",
                    )
                else:
                    seq = last_seqs[row.id] = last_seqs.get(row.id, row.last_seq) + 1
                    fresh[draft.key] = message_row(draft, seq, now)
                    entry = write_entry(self._audit, draft.actor, row.id, row.patient_id, now)
                    audits.append(entry)
            new_rows = list(fresh.values())
            ids = await repo.insert_messages(uow, new_rows)
            await repo.set_last_seqs(uow, last_seqs)
            await self._audit.write_many(uow, audits)
            parties = {cid: (row.patient_id, row.doctor_id) for cid, row in rows.items()}
            events = await messages_out(uow, batch, parties, new_rows, ids, stored)
            # Nothing collected in the unit of work: the writer publishes the events after this
            # commit, in turn with the other batches'.
            await uow.commit()
        outcomes = [(d, refused[d] if d in refused else stored[d.key]) for d in batch]
        return StoredBatch(outcomes, events)

    def _denied(self, draft: Draft, row: Any, now: Any) -> dict[str, Any]:
        note_refusal(draft.noted, CHAT_WRITE)
        log.info("denied %s to user %s (consultation %s)", CHAT_WRITE, draft.actor.user_id, row.id)
        return self._audit.entry(
            draft.actor,
            CHAT_WRITE,
            patient_id=row.patient_id,
            consultation_id=row.id,
            allowed=False,
            at=now,
        )
