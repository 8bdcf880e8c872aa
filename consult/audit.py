"""The append-only audit log: who did what to which patient's data, when, from where,
allowed or denied. The database refuses updates and deletes (see migration 0001)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import Any

from consult.clock import Clock
from consult.domain import Actor
from consult.errors import Unavailable
from consult.storage import tables as t
from consult.storage.uow import Database, UnitOfWork

log = logging.getLogger(__name__)

# The columns of a row, in this order, as ``Audit.entry`` fills them: the one definition of
# a row, for the inserts here and for statements that write rows with other work (the chat's
# PostgreSQL batch passes entries as column arrays: ``Audit.columns``).
COLUMNS = (
    "at",
    "actor_id",
    "actor_role",
    "action",
    "patient_id",
    "consultation_id",
    "ip",
    "allowed",
    "detail",
    "client",
)

# Built once: a new insert() per call costs its cache key at every execution.
_INSERT = t.audit_log.insert()

# The edges (HTTP error middleware, Socket.IO acks) audit every refusal they answer, unless the
# service that refused has written a row of its own (with the patient and consultation): it
# notes that here. A list, shared by reference, so a refusal noted in a copied context counts.
_REFUSALS_NOTED: ContextVar[list[str] | None] = ContextVar("refusals_noted", default=None)

# The action of a refusal audited at an edge (the detail names the code, route or event).
REFUSED = "refused"
# A 429 refusal repeated by one user within this window is counted in the next row instead of
# written (``Audit.refused_at_edge``); at most this many users' floods are remembered.
FLOOD_WINDOW = timedelta(seconds=10)
FLOOD_KEYS = 10_000


@contextmanager
def refusals_watched() -> Iterator[list[str]]:
    """Around one request or event: the refusals the services audited themselves while it ran."""
    noted: list[str] = []
    token = _REFUSALS_NOTED.set(noted)
    try:
        yield noted
    finally:
        _REFUSALS_NOTED.reset(token)


def refusals_noted() -> list[str] | None:
    """The current request's list (None outside one): work done for it in another task (the
    chat's group writer) notes its refusals there with ``note_refusal``."""
    return _REFUSALS_NOTED.get()


def note_refusal(noted: list[str] | None, action: str) -> None:
    if noted is not None:
        noted.append(action)


def _note_refusal(action: str) -> None:
    note_refusal(_REFUSALS_NOTED.get(), action)


class Audit:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        # Rate-limit refusals audited at the edge, by user and detail: when the last row was
        # written, and how many like it were not written since (see ``refused_at_edge``).
        self._floods: dict[tuple[int, str], tuple[datetime, int]] = {}

    def entry(
        self,
        actor: Actor | None,
        action: str,
        *,
        patient_id: int | None = None,
        consultation_id: int | None = None,
        allowed: bool = True,
        detail: str | None = None,
        ip: str | None = None,
        at: datetime | None = None,
    ) -> dict[str, Any]:
        """One row of the log (``COLUMNS``), for ``write_many``. ``at`` lets a batch share one
        clock reading."""
        return {
            "at": at if at is not None else self._clock.now(),
            "actor_id": actor.user_id if actor else None,
            "actor_role": str(actor.role) if actor else None,
            "action": action,
            "patient_id": patient_id,
            "consultation_id": consultation_id,
            "ip": (actor.ip if actor else None) or ip,
            "allowed": allowed,
            "detail": detail[:300] if detail else None,
            # The kind of client (consult.domain.Client): the patient's access history shows it.
            "client": actor.client.value if actor and actor.client else None,
        }

    async def write_many(self, uow: UnitOfWork, entries: Sequence[dict[str, Any]]) -> None:
        """Entries made by ``entry``, in one statement within the caller's transaction."""
        for e in entries:
            if not e["allowed"]:
                _note_refusal(e["action"])
        if entries:
            await uow.conn.execute(_INSERT, list(entries))

    @staticmethod
    def columns(entries: Sequence[dict[str, Any]]) -> list[list[Any]]:
        """Entries made by ``entry`` as one list per column, in ``COLUMNS`` order: the
        parameters of a statement that inserts them from arrays. Such a statement notes no
        refusal: it is for allowed entries."""
        return [[e[name] for e in entries] for name in COLUMNS]

    async def reads(
        self,
        uow: UnitOfWork,
        actor: Actor,
        action: str,
        patient_ids: Iterable[int],
        *,
        detail: str | None = None,
    ) -> None:
        """A list read (bookings, follow-ups, the queue overview): one allowed entry per
        patient whose data it showed, none for an empty list, in one statement."""
        at = self._clock.now()
        await self.write_many(
            uow,
            [
                self.entry(actor, action, patient_id=pid, detail=detail, at=at)
                for pid in sorted(set(patient_ids))
            ],
        )

    async def write(
        self,
        uow: UnitOfWork,
        actor: Actor | None,
        action: str,
        *,
        patient_id: int | None = None,
        consultation_id: int | None = None,
        allowed: bool = True,
        detail: str | None = None,
        ip: str | None = None,
    ) -> None:
        """Within the caller's transaction: the entry exists exactly when the access did."""
        await self.write_many(
            uow,
            [
                self.entry(
                    actor,
                    action,
                    patient_id=patient_id,
                    consultation_id=consultation_id,
                    allowed=allowed,
                    detail=detail,
                    ip=ip,
                )
            ],
        )

    def deny_after_rollback(
        self,
        uow: UnitOfWork,
        actor: Actor | None,
        action: str,
        *,
        patient_id: int | None = None,
        consultation_id: int | None = None,
    ) -> None:
        """For a refusal raised inside ``uow``: the entry is written once ``uow`` has rolled back
        (on SQLite a second writer inside the first would wait for it forever)."""

        async def write() -> None:
            await self.deny(actor, action, patient_id=patient_id, consultation_id=consultation_id)

        _note_refusal(action)
        uow.after_rollback(write)

    async def deny(
        self,
        actor: Actor | None,
        action: str,
        *,
        patient_id: int | None = None,
        consultation_id: int | None = None,
        detail: str | None = None,
        ip: str | None = None,
    ) -> None:
        """In a transaction of its own, so the entry survives the refused request's rollback."""
        log.info(
            "denied %s to user %s (consultation %s)",
            action,
            actor.user_id if actor else None,
            consultation_id,
        )
        async with self._db.uow() as uow:
            await self.write(
                uow,
                actor,
                action,
                patient_id=patient_id,
                consultation_id=consultation_id,
                allowed=False,
                detail=detail,
                ip=ip,
            )
            await uow.commit()

    async def refused_at_edge(
        self,
        actor: Actor,
        noted: list[str],
        detail: str,
        *,
        patient_id: int | None = None,
        consultation_id: int | None = None,
        rate_limited: bool = False,
    ) -> None:
        """A refusal answered at an edge (``refusals_watched``): one ``refused`` row, unless
        the service audited it already. A failure to write is logged, and the refusal still
        answered (it changed nothing).

        429s (``rate_limited``) are refused because someone floods: a row for each would turn
        the flood into database writes. One row per user and detail per ``FLOOD_WINDOW`` is
        written, and the next one says how many like it it stands for."""
        if noted:
            return
        if rate_limited:
            now = self._clock.now()
            last, held = self._floods.get((actor.user_id, detail), (None, 0))
            if last is not None and now - last < FLOOD_WINDOW:
                self._floods[(actor.user_id, detail)] = (last, held + 1)
                return
            self._floods[(actor.user_id, detail)] = (now, 0)
            if len(self._floods) > FLOOD_KEYS:  # bounded: forget the oldest
                del self._floods[next(iter(self._floods))]
            if held:
                detail = f"{detail} (and {held} more like it before this one)"
        try:
            await self.deny(
                actor,
                REFUSED,
                patient_id=patient_id,
                consultation_id=consultation_id,
                detail=detail,
            )
        except Unavailable:  # the database's outage is logged once, by the database's watch
            log.warning("could not audit a refusal to user %s (%s)", actor.user_id, detail)
        except Exception:
            log.exception("could not audit a refusal to user %s (%s)", actor.user_id, detail)


def audit_id(value: Any) -> int | None:
    """An id taken from a refused request, for its audit row: only a plain, bounded integer
    (the refusal may be of a malformed id)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    return value if isinstance(value, int) and 0 < value < 2**63 else None
