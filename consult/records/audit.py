"""The append-only audit log: who did what to which patient's data, when, from where,
allowed or denied. The database refuses updates and deletes (see migration 0001)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from consult.clock import Clock
from consult.domain import Actor
from consult.storage import tables as t
from consult.storage.uow import Database, UnitOfWork

log = logging.getLogger(__name__)

# Built once: a new insert() per call costs its cache key at every execution.
_INSERT = t.audit_log.insert()


class Audit:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

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
        """One row of the log, for ``write_many``. ``at`` lets a batch share one clock reading."""
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
        }

    async def write_many(self, uow: UnitOfWork, entries: Sequence[dict[str, Any]]) -> None:
        """Entries made by ``entry``, in one statement within the caller's transaction."""
        if entries:
            await uow.conn.execute(_INSERT, list(entries))

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
