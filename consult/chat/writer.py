"""Group commit: the messages that arrive while one transaction is being written are stored
together in the next one.

A transaction per message costs a lock, four statements and a commit (an fsync on SQLite, a
round trip and a WAL flush on PostgreSQL) for every message; under load that, not the socket
work, bounds the throughput. Here the first sender with nothing in flight lets a few loop
turns pass (``GATHER_TURNS``: microseconds on a quiet loop, so a quiet chat waits for nothing)
for the messages already read from their sockets to join it, then writes them together.
Senders arriving meanwhile queue up; when
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

from pydantic import TypeAdapter

from consult.audit import Audit, note_refusal, refusals_noted
from consult.chat import repository as repo
from consult.clock import Clock
from consult.domain import Actor, ConsultationStatus
from consult.errors import Conflict, NotAllowed, NotFound
from consult.events import MessagePosted
from consult.queue.participation import is_party
from consult.schemas import MessageOut
from consult.storage.retry import retry_transient
from consult.storage.uow import Database, UnitOfWork

log = logging.getLogger(__name__)

_DATETIME = TypeAdapter(datetime)

# Loop turns a new batch's leader lets pass before taking the queue, so that the messages
# already read from their sockets join it: a message reaches write() several tasks after its
# frame is read (aiohttp's reader, engine.io's receive and message tasks, python-socketio's
# event task), and a busy turn does not move every one a stage. On SQLite a transaction runs
# without yielding, so with no turns nothing queued behind a leader: under load every batch
# held one message, at ~0.5 ms of CPU each. chat_bench, 50 pairs on SQLite: 3 turns gave 3-10
# messages a batch, 8 gave ~39, 12 ~45 (consult's CPU per message 2.5-3.6x the relay's, then
# 1.6x), 20 no more. On an idle loop a turn costs microseconds.
GATHER_TURNS = 12

CHAT_WRITE = "chat.write"  # the audit action


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
    # The sender's request: a refusal audited in the batch is noted there, once (consult.audit).
    noted: list[str] | None = field(default_factory=refusals_noted)

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
        self,
        db: Database,
        clock: Clock,
        audit: Audit,
        *,
        max_batch: int = 256,
        concurrency: int | None = None,
        gather_turns: int = GATHER_TURNS,
    ) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._gather_turns = gather_turns
        self._max_batch = max_batch
        # Batches in flight at once: one on SQLite (one writer); four on PostgreSQL, where a
        # batch mostly waits on round trips, each a loop turn away when the loop is busy, and
        # batches of other consultations do not conflict (a batch touching the same
        # consultation waits for the other's row lock). chat_bench, 50 pairs: four gave ~5 %
        # more messages a second than two, and a lower p99.
        self._concurrency = concurrency or (1 if db.writer_lock is not None else 4)
        self._one_statement = db.engine.dialect.name == "postgresql"
        self._pending: list[Draft] = []
        self._leaders = 0  # batches being written, or senders woken to write one
        self._published: asyncio.Future[None] | None = None

    async def write(self, draft: Draft) -> MessageOut:
        self._pending.append(draft)
        if self._leaders < self._concurrency:
            self._leaders += 1
            await self._lead(draft)
        else:
            try:
                await draft.wake
            except asyncio.CancelledError:
                self._abandon(draft)
                raise
            if not draft.outcome.done():  # woken to write the next batch
                await self._lead(draft)
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

    async def _lead(self, draft: Draft) -> None:
        try:
            for _ in range(self._gather_turns):
                await asyncio.sleep(0)
        except asyncio.CancelledError:
            # Gone before taking the queue: its message is dropped (unless another batch took
            # it) and the lead passes on.
            if draft in self._pending:
                self._pending.remove(draft)
            self._leaders -= 1
            self._hand_over()
            raise
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

    async def _publish_in_turn(self, events: list[MessagePosted]) -> None:
        """Publish after the previous batch's events, so that within this process the
        ``chat:message`` events of a consultation leave in ``seq`` order."""
        previous = self._published
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._published = mine
        try:
            if previous is not None and not previous.done():
                await asyncio.shield(previous)
            await self._publish(events)
        finally:
            mine.set_result(None)
            if self._published is mine:
                self._published = None

    async def _publish(self, events: list[MessagePosted]) -> None:
        """Each consultation's events in order, the consultations side by side. python-socketio
        sends an emit through tasks of its own, so each awaited emit took a loop turn or two:
        one after the other, a batch of n messages took 2n turns to go out, each turn sending
        one packet per socket where the relay sends several (chat_bench, cProfile: ten times
        the relay's loop turns per message)."""
        groups: dict[int, list[MessagePosted]] = {}
        for event in events:
            groups.setdefault(event.message["consultation_id"], []).append(event)
        if len(groups) <= 1:
            await self._publish_each(events)
        else:
            await asyncio.gather(*(self._publish_each(group) for group in groups.values()))

    async def _publish_each(self, events: list[MessagePosted]) -> None:
        for event in events:
            await self._db.bus.publish(event)

    def _hand_over(self) -> None:
        """Wake the first waiting sender to write the next batch, if there is room."""
        if self._pending and self._leaders < self._concurrency:
            nxt = self._pending[0]
            if not nxt.wake.done():
                self._leaders += 1
                nxt.wake.set_result(None)

    async def _write_batch(self, batch: list[Draft]) -> tuple[list[Outcome], list[MessagePosted]]:
        """Each draft's outcome and the events to publish, once committed."""
        if not self._one_statement:
            return await self._in_transaction(batch)
        try:
            outcomes, events, rest = await self._in_one_statement(batch)
        except Exception as exc:
            # The statement is all-or-nothing: nothing of it was stored.
            log.warning("chat batch of %d failed in one statement (%r)", len(batch), exc)
            return await self._in_transaction(batch)
        if rest:
            more, more_events = await self._in_transaction(rest)
            outcomes += more
            events += more_events
        return outcomes, events

    async def _in_transaction(
        self, batch: list[Draft]
    ) -> tuple[list[Outcome], list[MessagePosted]]:
        try:
            return await self._attempt(batch)
        except Exception as exc:
            return await self._one_by_one(batch, exc)

    @retry_transient()
    async def _attempt(self, batch: list[Draft]) -> tuple[list[Outcome], list[MessagePosted]]:
        if not self._one_statement:
            fast = await self._fast_transaction(batch)
            if fast is not None:
                return fast
        return await self._transaction(batch)

    async def _one_by_one(
        self, batch: list[Draft], exc: Exception
    ) -> tuple[list[Outcome], list[MessagePosted]]:
        if len(batch) == 1:
            log.error("chat message to consultation %s failed: %r", batch[0].consultation_id, exc)
            return [(batch[0], exc)], []
        # One bad message must not fail the others: write them one by one.
        log.warning("chat batch of %d failed (%r); writing one by one", len(batch), exc)
        outcomes: list[Outcome] = []
        events: list[MessagePosted] = []
        for draft in batch:
            o, e = await self._in_transaction([draft])
            outcomes += o
            events += e
        return outcomes, events

    async def _in_one_statement(
        self, batch: list[Draft]
    ) -> tuple[list[Outcome], list[MessagePosted], list[Draft]]:
        """PostgreSQL, the common case in one round trip and no transaction of our own
        (``repo.post_new_messages``): the consultations that are active and whose senders are
        participants. Returns their outcomes and events, and the drafts left for
        ``_transaction`` (a refusal, a shared document, a client id twice in the batch, or the
        whole batch if a retry made PostgreSQL refuse the statement: rare), whole
        consultations at a time so that each one's sequence stays in arrival order.
        chat_bench, 200 pairs: five round trips a batch through SQLAlchemy took ~2x the
        relay's CPU per message."""
        keys = Counter(d.key for d in batch)
        aside = {d.consultation_id for d in batch if d.document_id is not None or keys[d.key] > 1}
        direct = [d for d in batch if d.consultation_id not in aside]
        now = self._clock.now()
        records: list[Any] = []
        if direct:
            messages = [
                (
                    d.consultation_id,
                    d.actor.user_id,
                    str(d.actor.role),
                    d.client_id,
                    d.body,
                    d.actor.ip,
                )
                for d in direct
            ]
            # None: refused as a whole, nothing stored.
            records = await repo.post_new_messages(self._db, messages, now, CHAT_WRITE) or []
        found = {(r["consultation_id"], r["sender_id"], r["client_id"]): r for r in records}
        done = [d for d in direct if d.key in found]
        parties = {r["consultation_id"]: (r["patient_id"], r["doctor_id"]) for r in records}
        new_rows = [_message_row(d, d.consultation_id, found[d.key]["seq"], now) for d in done]
        ids = [found[d.key]["id"] for d in done]
        stored: dict[tuple[int, int, str], MessageOut] = {}
        events = self._built_out(done, parties, new_rows, ids, stored)
        rest = [d for d in batch if d.key not in found]
        return [(d, stored[d.key]) for d in done], events, rest

    async def _fast_transaction(
        self, batch: list[Draft]
    ) -> tuple[list[Outcome], list[MessagePosted]] | None:
        """SQLite, the common case in three statements: every message new, every sender a
        participant, every consultation active. One ``UPDATE … RETURNING`` locks the
        consultations and reserves their sequence numbers, one insert skips any message
        already stored, one insert writes the audit entries. Anything else (a retry, a
        refusal) rolls back and returns None: ``_transaction`` then looks at each message."""
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
                if row.status != ConsultationStatus.ACTIVE or not is_party(draft.actor, row):
                    return None
            seqs = {cid: row.last_seq - counts[cid] for cid, row in rows.items()}
            new_rows: list[dict[str, Any]] = []
            audits: list[dict[str, Any]] = []
            for draft in batch:
                row = rows[draft.consultation_id]
                seqs[row.id] += 1
                new_rows.append(_message_row(draft, row.id, seqs[row.id], now))
                audits.append(self._audit_entry(draft.actor, row, now, allowed=True))
            ids = await repo.insert_new_messages(uow, new_rows)
            if ids is None:  # some were stored already (retries)
                return None
            await self._audit.write_many(uow, audits)
            stored: dict[tuple[int, int, str], MessageOut] = {}
            events = await self._messages_out(uow, batch, rows, new_rows, ids, stored)
            await uow.commit()
        return [(d, stored[d.key]) for d in batch], events

    async def _transaction(self, batch: list[Draft]) -> tuple[list[Outcome], list[MessagePosted]]:
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
                if not is_party(draft.actor, row):
                    # In the batch's own transaction: it commits, so the entry survives, and no
                    # second writer is needed.
                    audits.append(self._audit_entry(draft.actor, row, now, allowed=False))
                    note_refusal(draft.noted, "chat.write")
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
                audits.append(self._audit_entry(draft.actor, row, now, allowed=True))
            new_rows = list(fresh.values())
            ids = await repo.insert_messages(uow, new_rows)
            await repo.set_last_seqs(uow, last_seqs)
            await self._audit.write_many(uow, audits)
            events = await self._messages_out(uow, batch, rows, new_rows, ids, stored)
            # Nothing collected in the unit of work: the events are published by _lead, after
            # this commit, in turn with the other batches'.
            await uow.commit()
        outcomes: list[Outcome] = [
            (d, results[d] if d in results else stored[d.key]) for d in batch
        ]
        return outcomes, events

    def _audit_entry(
        self, actor: Actor, row: Any, now: datetime, *, allowed: bool
    ) -> dict[str, Any]:
        return self._audit.entry(
            actor,
            CHAT_WRITE,
            patient_id=row.patient_id,
            consultation_id=row.id,
            allowed=allowed,
            at=now,
        )

    async def _messages_out(
        self,
        uow: UnitOfWork,
        batch: list[Draft],
        rows: dict[int, Any],
        new_rows: list[dict[str, Any]],
        ids: list[int],
        stored: dict[tuple[int, int, str], MessageOut],
    ) -> list[MessagePosted]:
        """The new messages as acked and pushed (added to ``stored``), and their events."""
        if any(d.document_id is not None for d in batch):
            # Read back through the repository, so the ack carries what a later read of
            # the transcript returns (the shared document's details).
            outs = await repo.messages_by_ids(uow, ids)
        else:
            parties = {cid: (row.patient_id, row.doctor_id) for cid, row in rows.items()}
            return self._built_out(batch, parties, new_rows, ids, stored)
        events: list[MessagePosted] = []
        for out in outs:
            stored[(out.consultation_id, out.sender_id, out.client_id)] = out
            row = rows[out.consultation_id]
            events.append(MessagePosted(row.patient_id, row.doctor_id, out.model_dump(mode="json")))
        return events

    def _built_out(
        self,
        batch: list[Draft],
        parties: dict[int, tuple[int, int]],
        new_rows: list[dict[str, Any]],
        ids: list[int],
        stored: dict[tuple[int, int, str], MessageOut],
    ) -> list[MessagePosted]:
        """``_messages_out`` from what was inserted (one read fewer per batch), without
        validating values this writer made and serialising the batch's one ``created_at`` once:
        per message, pydantic's validation and dump cost more than the rest of the batch's
        Python work (tests/integration/test_chat.py checks the push equals the ack)."""
        roles = {d.actor.user_id: d.actor.role for d in batch}
        created: dict[datetime, str] = {}
        events: list[MessagePosted] = []
        for message_id, values in zip(ids, new_rows, strict=True):
            at = values["created_at"]
            if at not in created:
                created[at] = _DATETIME.dump_python(at, mode="json")
            fields = {
                "id": message_id,
                "consultation_id": values["consultation_id"],
                "seq": values["seq"],
                "sender_id": values["sender_id"],
                "sender_role": roles[values["sender_id"]],
                "client_id": values["client_id"],
                "body": values["body"],
                "created_at": at,
                "document": None,
            }
            out = MessageOut.model_construct(**fields)
            stored[(out.consultation_id, out.sender_id, out.client_id)] = out
            patient_id, doctor_id = parties[out.consultation_id]
            pushed = fields | {"sender_role": str(fields["sender_role"]), "created_at": created[at]}
            events.append(MessagePosted(patient_id, doctor_id, pushed))
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
