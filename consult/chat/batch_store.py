"""Storing a batch of chat messages: the write rule, the interface its implementations share,
and what they build alike.

The rule: a message is stored only if its consultation is active and its sender is one of the
consultation's two parties (``is_party``); it gets the consultation's next sequence number, in
the order the batch lists the messages; each stored message has an allowed ``chat.write``
audit row, and each refused stranger a denied one. A message whose client id is stored already
(a retry) is answered with the stored message and stores nothing.

Implementations (``BatchStore``): ``CarefulStore`` (batch_careful.py) applies the rule message
by message in one transaction, on either database, and is the reference; ``SqliteStore``
(batch_sqlite.py) and ``PostgresStore`` (batch_postgres.py), careful stores themselves, store
the common case in fewer statements and leave the rest to the careful way.
tests/integration/test_chat_batch_stores.py drives them with the same random batches and
expects identical results.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pydantic import TypeAdapter

from consult.audit import Audit, refusals_noted
from consult.chat import repository as repo
from consult.domain import Actor, ConsultationStatus
from consult.errors import Unavailable
from consult.events import MessagePosted
from consult.queue.participation import is_party
from consult.schemas import MessageOut
from consult.storage.uow import UnitOfWork

log = logging.getLogger(__name__)

CHAT_WRITE = "chat.write"  # the audit action

_DATETIME = TypeAdapter(datetime)

Key = tuple[int, int, str]  # (consultation_id, sender_id, client_id): unique among messages


@dataclass(eq=False)
class Draft:
    """A message to store."""

    actor: Actor
    consultation_id: int
    client_id: str
    body: str
    document_id: int | None = None
    # The sender's request: a refusal audited in the batch is noted there, once (consult.audit).
    noted: list[str] | None = field(default_factory=refusals_noted)

    @property
    def key(self) -> Key:
        return (self.consultation_id, self.actor.user_id, self.client_id)


Outcome = tuple[Draft, MessageOut | Exception]


@dataclass
class StoredBatch:
    """Each draft's outcome (the stored message, or why it was refused), and the events to
    publish once committed (one per new message, in sequence order per consultation)."""

    outcomes: list[Outcome] = field(default_factory=list)
    events: list[MessagePosted] = field(default_factory=list)

    def add(self, other: StoredBatch) -> None:
        self.outcomes += other.outcomes
        self.events += other.events


class BatchStore(Protocol):
    async def store(self, batch: list[Draft]) -> StoredBatch:
        """Stores the batch by the write rule, committed when this returns."""
        ...


def admitted(draft: Draft, row: Any) -> bool:
    """The rule's test: the consultation is active and the sender one of its two parties."""
    return row.status == ConsultationStatus.ACTIVE and is_party(draft.actor, row)


def write_entry(
    audit: Audit, actor: Actor, consultation_id: int, patient_id: int | None, at: datetime
) -> dict[str, Any]:
    """The audit row of a stored message (``patient_id`` None: the statement fills it in)."""
    return audit.entry(
        actor, CHAT_WRITE, patient_id=patient_id, consultation_id=consultation_id, at=at
    )


def message_row(draft: Draft, seq: int, now: datetime) -> dict[str, Any]:
    # Every row with the same keys, a document or not: a multi-row insert needs them.
    return {
        "consultation_id": draft.consultation_id,
        "seq": seq,
        "sender_id": draft.actor.user_id,
        "client_id": draft.client_id,
        "body": draft.body,
        "created_at": now,
        "document_id": draft.document_id,
    }


async def one_by_one_on_failure(
    attempt: Callable[[list[Draft]], Awaitable[StoredBatch]], batch: list[Draft]
) -> StoredBatch:
    """``attempt(batch)``; if it fails, each message on its own, so that one bad message does
    not fail the others (a message that fails alone gets the error as its outcome)."""
    try:
        return await attempt(batch)
    except Unavailable as exc:
        # Not this batch's fault: every message fails alike (unacknowledged, for the clients
        # to send again), without a try each against a database that is not there.
        return StoredBatch([(draft, exc) for draft in batch])
    except Exception as exc:
        if len(batch) == 1:
            log.error("chat message to consultation %s failed: %r", batch[0].consultation_id, exc)
            return StoredBatch([(batch[0], exc)])
        log.warning("chat batch of %d failed (%r); writing one by one", len(batch), exc)
    result = StoredBatch()
    for draft in batch:
        result.add(await one_by_one_on_failure(attempt, [draft]))
    return result


async def messages_out(
    uow: UnitOfWork,
    batch: list[Draft],
    parties: dict[int, tuple[int, int]],
    new_rows: list[dict[str, Any]],
    ids: list[int],
    stored: dict[Key, MessageOut],
) -> list[MessagePosted]:
    """The new messages as acked and pushed (added to ``stored``), and their events.
    ``parties``: each consultation's (patient_id, doctor_id)."""
    if not any(d.document_id is not None for d in batch):
        return built_out(batch, parties, new_rows, ids, stored)
    # Read back through the repository, so the ack carries what a later read of the transcript
    # returns (the shared document's details).
    events: list[MessagePosted] = []
    for out in await repo.messages_by_ids(uow, ids):
        stored[(out.consultation_id, out.sender_id, out.client_id)] = out
        patient_id, doctor_id = parties[out.consultation_id]
        events.append(MessagePosted(patient_id, doctor_id, out.model_dump(mode="json")))
    return events


def built_out(
    batch: list[Draft],
    parties: dict[int, tuple[int, int]],
    new_rows: list[dict[str, Any]],
    ids: list[int],
    stored: dict[Key, MessageOut],
) -> list[MessagePosted]:
    """``messages_out`` from what was inserted (one read fewer per batch), without validating
    values this writer made and serialising the batch's one ``created_at`` once: per message,
    pydantic's validation and dump cost more than the rest of the batch's Python work
    (tests/integration/test_chat.py checks the push equals the ack)."""
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
