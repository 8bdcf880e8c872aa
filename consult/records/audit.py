"""The append-only audit log: who did what to which patient's data, when, from where,
allowed or denied. The database refuses updates and deletes (see migration 0001)."""

from __future__ import annotations

import logging

from consult.clock import Clock
from consult.domain import Actor
from consult.storage import tables as t
from consult.storage.uow import Database, UnitOfWork

log = logging.getLogger(__name__)


class Audit:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

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
        await uow.conn.execute(
            t.audit_log.insert().values(
                at=self._clock.now(),
                actor_id=actor.user_id if actor else None,
                actor_role=str(actor.role) if actor else None,
                action=action,
                patient_id=patient_id,
                consultation_id=consultation_id,
                ip=(actor.ip if actor else None) or ip,
                allowed=allowed,
                detail=detail[:300] if detail else None,
            )
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
