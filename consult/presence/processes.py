"""Server processes' heartbeats: presence that survives a crash.

Each ``consult serve`` process has an id of its own (new at every start), a row in
``server_processes`` written at start and refreshed every ``heartbeat_interval``, and a row in
``socket_connections`` for each Socket.IO connection it holds (``service.py``). A process
whose heartbeat is older than ``dead_after`` is dead (SIGKILL, power cut, a loop frozen that
long): the sweep of every live process (``queue/sweeper.py``) closes its connections, which starts
the grace periods of the users left without a live connection, from that moment. A process
stopped by SIGTERM closes its own connections at once (``stop``).

A process whose database has just come back from an outage counts nobody dead for
``dead_after`` (every heartbeat failed meanwhile, not only the dead ones'). A process never
counts itself dead; one that finds its row gone (it was frozen past
``dead_after`` and another process reaped it) records itself again and its connections must
be re-made (the caller disconnects its sockets so that they reconnect).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa

from consult.clock import Clock
from consult.presence.service import PresenceService
from consult.storage import tables as t
from consult.storage.retry import retry_transient
from consult.storage.uow import Database

log = logging.getLogger(__name__)
_PROC = t.server_processes.c
_S = t.socket_connections.c


class Processes:
    def __init__(
        self, db: Database, clock: Clock, presence: PresenceService, dead_after: timedelta
    ) -> None:
        self._db = db
        self._clock = clock
        self._presence = presence
        self._dead_after = dead_after

    @property
    def id(self) -> str:
        return self._presence.process_id

    @retry_transient()
    async def register(self) -> None:
        now = self._clock.now()
        async with self._db.uow() as uow:
            await uow.conn.execute(
                t.server_processes.insert().values(id=self.id, started_at=now, heartbeat_at=now)
            )
            await uow.commit()
        log.info("server process %s registered", self.id)

    @retry_transient()
    async def beat(self) -> bool:
        """Refresh the heartbeat; False if this process had been reaped as dead (its row is
        written again, but the connections it held were closed)."""
        now = self._clock.now()
        async with self._db.uow() as uow:
            alive = await uow.conn.execute(
                t.server_processes.update().where(_PROC.id == self.id).values(heartbeat_at=now)
            )
            if alive.rowcount == 0:
                await uow.conn.execute(
                    t.server_processes.insert().values(id=self.id, started_at=now, heartbeat_at=now)
                )
            await uow.commit()
        if alive.rowcount == 0:
            log.warning("server process %s was counted dead: its connections were closed", self.id)
        return bool(alive.rowcount)

    async def reap(self) -> int:
        """Close the connections of every dead process (and of processes with no row); forget
        the dead processes. Returns how many connections were closed."""
        cutoff = self._clock.now() - self._dead_after
        async with self._db.reader() as uow:
            live = sa.select(_PROC.id).where(_PROC.heartbeat_at >= cutoff).scalar_subquery()
            held = (
                await uow.conn.execute(
                    sa.select(_S.process_id, _S.user_id, sa.func.count())
                    .where(_S.process_id != self.id, _S.process_id.not_in(live))
                    .group_by(_S.process_id, _S.user_id)
                    .order_by(_S.process_id, _S.user_id)
                )
            ).all()
            dead = (
                (
                    await uow.conn.execute(
                        sa.select(_PROC.id).where(_PROC.heartbeat_at < cutoff, _PROC.id != self.id)
                    )
                )
                .scalars()
                .all()
            )
        if self._db.outage.back_within(self._dead_after.total_seconds()):
            # Every heartbeat failed in the outage just ended: the others get dead_after to
            # beat again before a stale one counts as death.
            return 0
        for process_id, user_id, _ in held:
            await self._presence.release(user_id, process_id=process_id)
        for process_id in sorted({p for p, _, _ in held}):
            log.warning("server process %s is dead: its connections are closed", process_id)
        if dead:
            await self._forget(cutoff)
        return sum(n for _, _, n in held)

    @retry_transient()
    async def _forget(self, cutoff: datetime) -> None:
        async with self._db.uow() as uow:
            await uow.conn.execute(
                t.server_processes.delete().where(_PROC.heartbeat_at < cutoff, _PROC.id != self.id)
            )
            await uow.commit()

    async def stop(self) -> None:
        """This process is stopping (SIGTERM): its connections count as closed now."""
        async with self._db.uow() as uow:
            await uow.conn.execute(t.server_processes.delete().where(_PROC.id == self.id))
            await uow.commit()
        async with self._db.reader() as uow:
            users = (
                (
                    await uow.conn.execute(
                        sa.select(_S.user_id).where(_S.process_id == self.id).distinct()
                    )
                )
                .scalars()
                .all()
            )
        for user_id in sorted(users):
            await self._presence.release(user_id, process_id=self.id)
        log.info("server process %s stopped: %d users' connections closed", self.id, len(users))
