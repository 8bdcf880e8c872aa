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

How a batch is stored (the write rule, one implementation per database) is batch_store.py's;
each message keeps its own outcome: a refused message (not a participant, consultation not
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
from dataclasses import dataclass, field

from consult.audit import Audit
from consult.chat.batch_postgres import PostgresStore
from consult.chat.batch_sqlite import SqliteStore
from consult.chat.batch_store import BatchStore, Draft, StoredBatch
from consult.clock import Clock
from consult.events import MessagePosted
from consult.schemas import MessageOut
from consult.storage.uow import Database

# Loop turns a new batch's leader lets pass before taking the queue, so that the messages
# already read from their sockets join it: a message reaches write() several tasks after its
# frame is read (aiohttp's reader, engine.io's receive and message tasks, python-socketio's
# event task), and a busy turn does not move every one a stage. On SQLite a transaction runs
# without yielding, so with no turns nothing queued behind a leader: under load every batch
# held one message. Fewer turns gave smaller batches, more gave no larger ones
# (docs/decisions/2026-11-29-chat-group-commit.md). On an idle loop a turn costs microseconds.
GATHER_TURNS = 12


def store_for(db: Database, clock: Clock, audit: Audit) -> BatchStore:
    """The database's own way of storing a batch."""
    if db.engine.dialect.name == "postgresql":
        return PostgresStore(db, clock, audit)
    return SqliteStore(db, clock, audit)


@dataclass(eq=False)
class _Sender:
    """A draft on its way to the store, with the futures its sender waits on."""

    draft: Draft
    outcome: asyncio.Future[MessageOut] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    # Set when the sender should wake: its outcome is known, or it must lead the next batch.
    wake: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def settle(self, result: MessageOut | BaseException) -> None:
        if self.outcome.done():
            return
        if isinstance(result, BaseException):
            self.outcome.set_exception(result)
        else:
            self.outcome.set_result(result)
        if not self.wake.done():
            self.wake.set_result(None)


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
        self._store = store_for(db, clock, audit)
        self._gather_turns = gather_turns
        self._max_batch = max_batch
        # Batches in flight at once: one on SQLite (one writer); four on PostgreSQL, where a
        # batch mostly waits on round trips, each a loop turn away when the loop is busy, and
        # batches of other consultations do not conflict (a batch touching the same
        # consultation waits for the other's row lock). Four beat two in chat_bench, in
        # throughput and p99.
        self._concurrency = concurrency or (1 if db.writer_lock is not None else 4)
        self._pending: list[_Sender] = []
        self._leaders = 0  # batches being written, or senders woken to write one
        self._published: asyncio.Future[None] | None = None

    async def write(self, draft: Draft) -> MessageOut:
        sender = _Sender(draft)
        self._pending.append(sender)
        if self._leaders < self._concurrency:
            self._leaders += 1
            await self._lead(sender)
        else:
            try:
                await sender.wake
            except asyncio.CancelledError:
                self._abandon(sender)
                raise
            if not sender.outcome.done():  # woken to write the next batch
                await self._lead(sender)
        # Another leader's batch may have taken this draft: wait for that batch.
        return await sender.outcome

    def _abandon(self, sender: _Sender) -> None:
        """The sender went away while waiting. Its message is still written if a batch took it
        (a retry with the same client id finds it); otherwise it is dropped, unacknowledged. If
        it had just been handed the lead, the lead passes on."""
        if sender in self._pending:
            self._pending.remove(sender)
        if sender.wake.done() and not sender.outcome.done():
            sender.outcome.cancel()
            self._leaders -= 1
            self._hand_over()

    async def _lead(self, sender: _Sender) -> None:
        try:
            for _ in range(self._gather_turns):
                await asyncio.sleep(0)
        except asyncio.CancelledError:
            # Gone before taking the queue: its message is dropped (unless another batch took
            # it) and the lead passes on.
            if sender in self._pending:
                self._pending.remove(sender)
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
            stored = await self._write_batch([s.draft for s in batch])
        except BaseException as exc:
            for waiting in batch:
                waiting.settle(exc if isinstance(exc, Exception) else ConnectionAbortedError())
            raise
        finally:
            # Committed (or failed): the next batch may start its transaction now, while this
            # one's events go out.
            self._leaders -= 1
            self._hand_over()
        await self._publish_in_turn(stored.events)
        senders = {s.draft: s for s in batch}
        for draft, outcome in stored.outcomes:
            senders[draft].settle(outcome)

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
        one packet per socket where the relay sends several."""
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

    async def _write_batch(self, batch: list[Draft]) -> StoredBatch:
        """Each draft's outcome and the events to publish, once committed."""
        return await self._store.store(batch)
