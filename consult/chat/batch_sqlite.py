"""The SQLite ``BatchStore``: the common case in three statements, anything else by the
careful store (batch_store.py states the rule)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from consult.chat import repository as repo
from consult.chat.batch_careful import CarefulStore
from consult.chat.batch_store import (
    Draft,
    Key,
    StoredBatch,
    admitted,
    message_row,
    messages_out,
    write_entry,
)
from consult.schemas import MessageOut
from consult.storage.retry import retry_transient


class SqliteStore(CarefulStore):
    """The careful store, with a fast transaction tried first."""

    @retry_transient()
    async def _attempt(self, batch: list[Draft]) -> StoredBatch:
        fast = await self._fast_transaction(batch)
        return fast if fast is not None else await self.transaction(batch)

    async def _fast_transaction(self, batch: list[Draft]) -> StoredBatch | None:
        """Every message new, every consultation active, every sender a party: one
        ``UPDATE … RETURNING`` locks the consultations and reserves their sequence numbers, one
        insert skips any message already stored, one insert writes the audit rows. Anything
        else (a retry, a refusal) rolls back and returns None: the careful store then looks at
        each message."""
        keys = [d.key for d in batch]
        if len(set(keys)) != len(keys):
            return None
        counts = Counter(d.consultation_id for d in batch)
        now = self._clock.now()
        async with self._db.uow() as uow:
            rows = await repo.reserve_seqs(uow, counts)
            if len(rows) != len(counts) or not all(
                admitted(d, rows[d.consultation_id]) for d in batch
            ):
                return None
            seqs = {cid: row.last_seq - counts[cid] for cid, row in rows.items()}
            new_rows: list[dict[str, Any]] = []
            audits: list[dict[str, Any]] = []
            for draft in batch:
                row = rows[draft.consultation_id]
                seqs[row.id] += 1
                new_rows.append(message_row(draft, seqs[row.id], now))
                audits.append(write_entry(self._audit, draft.actor, row.id, row.patient_id, now))
            ids = await repo.insert_new_messages(uow, new_rows)
            if ids is None:  # some were stored already (retries)
                return None
            await self._audit.write_many(uow, audits)
            stored: dict[Key, MessageOut] = {}
            parties = {cid: (row.patient_id, row.doctor_id) for cid, row in rows.items()}
            events = await messages_out(uow, batch, parties, new_rows, ids, stored)
            await uow.commit()
        return StoredBatch([(d, stored[d.key]) for d in batch], events)
