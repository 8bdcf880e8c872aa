"""Domain events and the in-process bus they are published on after a commit.

Features collect events in the unit of work; the unit of work publishes them only once the
transaction has committed (persist, then publish). Subscribers are the edges (Socket.IO
notifier); with several processes the Socket.IO Redis manager carries the emits across.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    pass


@dataclass(frozen=True)
class SessionEnded(Event):
    """A logout: the session's sockets are disconnected."""

    token_hash: str


@dataclass(frozen=True)
class NotificationQueued(Event):
    """A notification was committed to the outbox: this process's worker looks at once."""


@dataclass(frozen=True)
class ConsultationMatched(Event):
    consultation: dict[str, Any]


@dataclass(frozen=True)
class ConsultationEnded(Event):
    consultation: dict[str, Any]


@dataclass(frozen=True)
class MessagePosted(Event):
    patient_id: int
    doctor_id: int
    message: dict[str, Any]


@dataclass(frozen=True)
class MessagesRead(Event):
    """A participant has read the chat up to ``receipt["read_seq"]`` (a read receipt)."""

    patient_id: int
    doctor_id: int
    receipt: dict[str, Any]


@dataclass(frozen=True)
class Typing(Event):
    """A participant started or stopped typing; told to the other participant only."""

    to_user_id: int
    typing: dict[str, Any]


@dataclass(frozen=True)
class OfferMade(Event):
    doctor_id: int
    consultation: dict[str, Any]
    expires_at: str


@dataclass(frozen=True)
class OfferWithdrawn(Event):
    doctor_id: int
    consultation_id: int
    reason: str


@dataclass(frozen=True)
class QueueChanged(Event):
    specialty: str
    form: str


@dataclass(frozen=True)
class TicketDropped(Event):
    patient_id: int
    consultation_id: int
    reason: str


@dataclass(frozen=True)
class TicketMoved(Event):
    """A scheduler moved the patient's ticket to another specialty's queue."""

    patient_id: int
    consultation: dict[str, Any]


@dataclass(frozen=True)
class ConsultationInterrupted(Event):
    """The doctor's side was lost; the patient is back at the front of the queue."""

    patient_id: int
    consultation_id: int
    reason: str


@dataclass(frozen=True)
class PresenceChanged(Event):
    doctor_id: int
    status: str
    reason: str


@dataclass(frozen=True)
class RecordChanged(Event):
    patient_id: int
    consultation_id: int


@dataclass(frozen=True)
class RatingStored(Event):
    """A rating was given or changed: the schedulers' figures have moved."""

    doctor_id: int
    specialty_code: str


@dataclass(frozen=True)
class Push(Event):
    """A notification that needs no logic at the edge: ``payload`` goes out as the Socket.IO
    event ``name`` to the users ``user_ids`` (every tab of each). Events that other subscribers
    act on, or whose recipients or payload the edge works out, keep a class of their own."""

    user_ids: tuple[int, ...]
    name: str
    payload: dict[str, Any]


Handler = Callable[[Event], Awaitable[None]]


class EventBus:
    def __init__(self) -> None:
        self._handlers: list[Handler] = []

    def subscribe(self, handler: Handler) -> None:
        self._handlers.append(handler)

    async def publish(self, event: Event) -> None:
        for handler in self._handlers:
            try:
                await handler(event)
            except Exception:  # a failing subscriber must not undo a committed change
                log.exception("event handler failed for %s", type(event).__name__)
