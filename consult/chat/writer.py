"""Group commit: the messages that arrive while one transaction is being written are stored
together in the next one.

A transaction per message costs a lock, four statements and a commit (an fsync on SQLite, a
round trip and a WAL flush on PostgreSQL) for every message; under load that, not the socket
work, bounds the throughput. Here the first sender with nothing in flight writes its message
at once (no added latency when the chat is quiet). Senders arriving meanwhile queue up; when
the transaction commits, the first of them takes every queued message (up to ``max_batch``)
into the next transaction. There is no background task: the work runs in the senders' own
coroutines, handed from one to the next ("leader/follower").

Each message keeps its own outcome: a refused message (not a participant, consultation not
active) fails alone, a retry of a stored message gets the stored one, and the batch's other
messages are stored. Every message is acknowledged only after its transaction committed.
Sequence numbers follow the order in which messages reached this writer. The next batch's
transaction starts as soon as the previous one has committed, while that one's events go out;
events are published batch after batch, in commit order, so within a process the
``chat:message`` events of a consultation leave in ``seq`` order. A sender's ack follows its
batch's events.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.exc import DBAPIError

from consult.chat import repository as repo
from consult.clock import Clock
from consult.domain import Actor, ConsultationStatus
from consult.errors import Conflict, NotAllowed, NotFound
from consult.events import Event, MessagePosted
from consult.queue.repository import is_participant
from consult.schemas import MessageOut
from consult.storage import tables as t
from consult.storage.retry import is_transient
from consult.storage.uow import Database, UnitOfWork

log = logging.getLogger(__name__)

_ATTEMPTS = 4


@dataclass(eq=False)
class Draft:
    """A message on its way to the store, with the future its sender waits on."""

    actor: Actor
    consultation_id: int
    client_id: str
    body: str
    document_id: int | None = None
    outcome: asyncio.Future[MessageOut] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    # Set when the sender should wake: its outcome is known, or it must lead the next batch.
    wake: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    @property
    def key(self) -> tuple[int, int, str]:
        return (self.consultation_id, self.actor.user_id, self.client_id)

    def settle(self, result: MessageOut | BaseException) -> None:
        if self.outcome.done():
            return
        if isinstance(result, BaseException):
            self.outcome.set_exception(result)
        else:
            self.outcome.set_result(result)
        if not self.wake.done():
            self.wake.set_result(None)


Outcome = tuple[Draft, MessageOut | Exception]


class GroupWriter:
    def __init__(
        self, db: Database, clock: Clock, *, max_batch: int = 256, concurrency: int | None = None
    ) -> None:
        self._db = db
        self._clock = clock
        self._max_batch = max_batch
        # Batches in flight at once: one on SQLite (one writer); two on PostgreSQL, where a
        # batch mostly waits on round trips and batches of other consultations do not conflict
        # (a batch touching the same consultation waits for the other's row lock).
        self._concurrency = concurrency or (1 if db.writer_lock is not None else 2)
        self._pending: list[Draft] = []
        self._leaders = 0  # batches being written, or senders woken to write one
        self._published: asyncio.Future[None] | None = None

    async def write(self, draft: Draft) -> MessageOut:
        self._pending.append(draft)
        if self._leaders < self._concurrency:
            self._leaders += 1
            await self._lead()
        else:
            try:
                await draft.wake
            except asyncio.CancelledError:
                self._abandon(draft)
                raise
            if not draft.outcome.done():  # woken to write the next batch
                await self._lead()
        # Another leader's batch may have taken this draft: wait for that batch.
        return await draft.outcome

    def _abandon(self, draft: Draft) -> None:
        """The sender went away while waiting. Its message is still written if a batch took it
        (a retry with the same client id finds it); otherwise it is dropped, unacknowledged. If
        it had just been handed the lead, the lead passes on."""
        if draft in self._pending:
            self._pending.remove(draft)
        if draft.wake.done() and not draft.outcome.done():
            draft.outcome.cancel()
            self._leaders -= 1
            self._hand_over()

    async def _lead(self) -> None:
        batch, self._pending = (
            self._pending[: self._max_batch],
            self._pending[self._max_batch :],
        )
        if not batch:  # another leader took them
            self._leaders -= 1
            self._hand_over()
            return
        try:
            outcomes, events = await self._write_batch(batch)
        except BaseException as exc:
            for draft in batch:
                draft.settle(exc if isinstance(exc, Exception) else ConnectionAbortedError())
            raise
        finally:
            # Committed (or failed): the next batch may start its transaction now, while this
            # one's events go out.
            self._leaders -= 1
            self._hand_over()
        await self._publish_in_turn(events)
        for draft, outcome in outcomes:
            draft.settle(outcome)

    async def _publish_in_turn(self, events: list[Event]) -> None:
        """Publish after the previous batch's events, so that within this process the
        ``chat:message`` events of a consultation leave in ``seq`` order."""
        previous = self._published
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._published = mine
        try:
            if previous is not None and not previous.done():
                await asyncio.shield(previous)
            for event in events:
                await self._db.bus.publish(event)
        finally:
            mine.set_result(None)
            if self._published is mine:
                self._published = None

    def _hand_over(self) -> None:
        """Wake the first waiting sender to write the next batch, if there is room."""
        if self._pending and self._leaders < self._concurrency:
            nxt = self._pending[0]
            if not nxt.wake.done():
                self._leaders += 1
                nxt.wake.set_result(None)

    async def _write_batch(self, batch: list[Draft]) -> tuple[list[Outcome], list[Event]]:
        """Each draft's outcome and the events to publish, once committed."""
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                fast = await self._fast_transaction(batch)
                return fast if fast is not None else await self._transaction(batch)
            except DBAPIError as exc:
                if is_transient(exc) and attempt < _ATTEMPTS:
                    log.warning("chat batch: transient database conflict, retry %d", attempt)
                    await asyncio.sleep(0.005 * attempt)
                    continue
                return await self._one_by_one(batch, exc)
            except Exception as exc:
                return await self._one_by_one(batch, exc)
        raise AssertionError("unreachable")

    async def _one_by_one(
        self, batch: list[Draft], exc: Exception
    ) -> tuple[list[Outcome], list[Event]]:
        if len(batch) == 1:
            log.error("chat message to consultation %s failed: %r", batch[0].consultation_id, exc)
            return [(batch[0], exc)], []
        # One bad message must not fail the others: write them one by one.
        log.warning("chat batch of %d failed (%r); writing one by one", len(batch), exc)
        outcomes: list[Outcome] = []
        events: list[Event] = []
        for draft in batch:
            o, e = await self._write_batch([draft])
            outcomes += o
            events += e
        return outcomes, events

    async def _fast_transaction(
        self, batch: list[Draft]
    ) -> tuple[list[Outcome], list[Event]] | None:
        """The common case in three statements: every message new, every sender a participant,
        every consultation active. One ``UPDATE … RETURNING`` locks the consultations and
        reserves their sequence numbers, one insert skips any message already stored, one
        insert writes the audit entries. Anything else (a retry, a refusal) rolls back and
        returns None: ``_transaction`` then looks at each message."""
        keys = [d.key for d in batch]
        if len(set(keys)) != len(keys):
            return None
        counts = Counter(d.consultation_id for d in batch)
        now = self._clock.now()
        async with self._db.uow() as uow:
            rows = await repo.reserve_seqs(uow, counts)
            if len(rows) != len(counts):
                return None
            for draft in batch:
                row = rows[draft.consultation_id]
                if row.status != ConsultationStatus.ACTIVE or not is_participant(draft.actor, row):
                    return None
            seqs = {cid: row.last_seq - counts[cid] for cid, row in rows.items()}
            new_rows: list[dict[str, Any]] = []
            audits: list[dict[str, Any]] = []
            for draft in batch:
                row = rows[draft.consultation_id]
                seqs[row.id] += 1
                new_rows.append(_message_row(draft, row.id, seqs[row.id], now))
                audits.append(_audit_row(draft.actor, row, now, allowed=True))
            ids = await repo.insert_new_messages(uow, new_rows)
            if ids is None:  # some were stored already (retries)
                return None
            await uow.conn.execute(t.audit_log.insert(), audits)
            stored: dict[tuple[int, int, str], MessageOut] = {}
            events = await self._messages_out(uow, batch, rows, new_rows, ids, stored)
            await uow.commit()
        return [(d, stored[d.key]) for d in batch], events

    async def _transaction(self, batch: list[Draft]) -> tuple[list[Outcome], list[Event]]:
        now = self._clock.now()
        results: dict[Draft, Exception] = {}
        async with self._db.uow() as uow:
            rows = await repo.lock_consultations(uow, list({d.consultation_id for d in batch}))
            stored = await repo.messages_by_client_ids(uow, {d.key for d in batch})
            last_seqs: dict[int, int] = {}
            fresh: dict[tuple[int, int, str], dict[str, Any]] = {}
            audits: list[dict[str, Any]] = []
            for draft in batch:
                row = rows.get(draft.consultation_id)
                if row is None:
                    results[draft] = NotFound(
                        f"no consultation {draft.consultation_id}", code="consultation_not_found"
                    )
                    continue
                if not is_participant(draft.actor, row):
                    audits.append(_audit_row(draft.actor, row, now, allowed=False))
                    log.info(
                        "denied chat.write to user %s (consultation %s)",
                        draft.actor.user_id,
                        row.id,
                    )
                    results[draft] = NotAllowed(
                        "you are not part of this consultation", code="not_participant"
                    )
                    continue
                if draft.key in stored or draft.key in fresh:
                    continue  # a retry: answered with the stored message below
                if row.status != ConsultationStatus.ACTIVE:
                    results[draft] = Conflict(
                        "messages can be sent only while the consultation is active",
                        code="consultation_not_active",
                    )
                    continue
                seq = last_seqs.get(row.id, row.last_seq) + 1
                last_seqs[row.id] = seq
                fresh[draft.key] = _message_row(draft, row.id, seq, now)
                audits.append(_audit_row(draft.actor, row, now, allowed=True))
            new_rows = list(fresh.values())
            ids = await repo.insert_messages(uow, new_rows)
            await repo.set_last_seqs(uow, last_seqs)
            if audits:
                await uow.conn.execute(t.audit_log.insert(), audits)
            events = await self._messages_out(uow, batch, rows, new_rows, ids, stored)
            # Nothing collected in the unit of work: the events are published by _lead, after
            # this commit, in turn with the other batches'.
            await uow.commit()
        outcomes: list[Outcome] = [
            (d, results[d] if d in results else stored[d.key]) for d in batch
        ]
        return outcomes, events

    async def _messages_out(
        self,
        uow: UnitOfWork,
        batch: list[Draft],
        rows: dict[int, Any],
        new_rows: list[dict[str, Any]],
        ids: list[int],
        stored: dict[tuple[int, int, str], MessageOut],
    ) -> list[Event]:
        """The new messages as acked and pushed (added to ``stored``), and their events."""
        if any(d.document_id is not None for d in batch):
            # Read back through the repository, so the ack carries what a later read of
            # the transcript returns (the shared document's details).
            outs = await repo.messages_by_ids(uow, ids)
        else:
            # Built from what was inserted: one round trip fewer per batch.
            roles = {d.actor.user_id: d.actor.role for d in batch}
            outs = [
                MessageOut(
                    id=message_id,
                    consultation_id=values["consultation_id"],
                    seq=values["seq"],
                    sender_id=values["sender_id"],
                    sender_role=roles[values["sender_id"]],
                    client_id=values["client_id"],
                    body=values["body"],
                    created_at=values["created_at"],
                )
                for message_id, values in zip(ids, new_rows, strict=True)
            ]
        events: list[Event] = []
        for out in outs:
            stored[(out.consultation_id, out.sender_id, out.client_id)] = out
            row = rows[out.consultation_id]
            events.append(MessagePosted(row.patient_id, row.doctor_id, out.model_dump(mode="json")))
        return events


def _message_row(draft: Draft, consultation_id: int, seq: int, now: datetime) -> dict[str, Any]:
    row: dict[str, Any] = {
        "consultation_id": consultation_id,
        "seq": seq,
        "sender_id": draft.actor.user_id,
        "client_id": draft.client_id,
        "body": draft.body,
        "created_at": now,
    }
    if draft.document_id is not None:
        row["document_id"] = draft.document_id
    return row


def _audit_row(actor: Actor, row: Any, now: datetime, *, allowed: bool) -> dict[str, Any]:
    # The shape Audit.write gives an entry; written in bulk here, in the batch's transaction
    # (a refusal too: the batch commits, so the entry survives, and no second writer is needed).
    return {
        "at": now,
        "actor_id": actor.user_id,
        "actor_role": str(actor.role),
        "action": "chat.write",
        "patient_id": row.patient_id,
        "consultation_id": row.id,
        "ip": actor.ip,
        "allowed": allowed,
        "detail": None,
    }
