"""The outbox's delivery: claim due notifications, send each, record the outcome.

Every ``consult serve`` process runs a worker (``run_once`` every ``outbox_interval`` seconds,
and at once when this process commits a notification). A notification is sent at least once
and, barring a crash between the SMTP server's acceptance and the row's update, exactly once;
after such a crash the claim lapses and it is sent again with the same Message-ID. Failures
are retried after 10 s, 20 s, 40 s ... up to an hour, forever: only a recipient the server
refuses for good (5xx) ends as ``failed``, kept. With no SMTP server configured nothing is
sent: the notifications wait in the outbox, each logged once.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from email.message import EmailMessage
from typing import Any, Protocol

from consult.clock import Clock
from consult.events import Event, NotificationQueued
from consult.notify import outbox
from consult.notify.smtp import Permanent, build_message
from consult.storage.retry import retry_transient
from consult.storage.uow import Database

log = logging.getLogger(__name__)

BATCH = 20
FIRST_RETRY = 10.0
LAST_RETRY = 3600.0


class Sender(Protocol):
    @property
    def sender(self) -> str: ...

    async def send(self, message: EmailMessage) -> None: ...


def backoff(attempts: int) -> float:
    """Seconds before the next try after ``attempts`` failed ones."""
    return float(min(LAST_RETRY, FIRST_RETRY * 2 ** min(max(attempts - 1, 0), 20)))


class OutboxWorker:
    def __init__(
        self, db: Database, clock: Clock, sender: Sender | None, *, lease: float = 60.0
    ) -> None:
        self._db = db
        self._clock = clock
        self._sender = sender
        self._lease = lease
        self._wake = asyncio.Event()
        self._logged_unsent: set[tuple[str, str]] = set()

    async def on_event(self, event: Event) -> None:
        if isinstance(event, NotificationQueued):
            self._wake.set()

    async def wait(self, interval: float) -> None:
        """Until ``interval`` seconds pass or a notification is queued here."""
        try:
            await asyncio.wait_for(self._wake.wait(), interval)
        except TimeoutError:
            pass
        self._wake.clear()

    async def run_once(self) -> int:
        """Deliver what is due now; how many were sent."""
        if self._sender is None:
            await self._log_unsent()
            return 0
        sent = 0
        while True:
            rows = await self._claim()
            # A batch's messages go out at once, each on its connection: their rows' updates
            # then commit together (one fsync on SQLite) instead of one after another.
            sent += sum(await asyncio.gather(*(self._deliver(row) for row in rows)))
            if len(rows) < BATCH:
                return sent

    @retry_transient()
    async def _claim(self) -> list[Any]:
        async with self._db.uow() as uow:
            rows = await outbox.claim(uow, self._clock.now(), self._lease, BATCH)
            await uow.commit()
        return rows

    async def _deliver(self, row: Any) -> int:
        assert self._sender is not None
        try:
            await self._sender.send(build_message(row, self._sender.sender))
        except Permanent as exc:
            log.error("notification %s (%s) refused for good: %s", row.id, row.kind, exc)
            await self._record(row.id, str(exc), None)
            return 0
        except Exception as exc:
            wait = backoff(row.attempts + 1)
            log.warning(
                "notification %s (%s) not sent (attempt %s), retry in %.0f s: %s",
                row.id,
                row.kind,
                row.attempts + 1,
                wait,
                exc,
            )
            await self._record(row.id, f"{type(exc).__name__}: {exc}", wait)
            return 0
        async with self._db.uow() as uow:
            await outbox.mark_sent(uow, row.id, self._clock.now())
            await uow.commit()
        log.info("notification %s (%s) sent", row.id, row.kind)
        return 1

    async def _record(self, notification_id: str, error: str, wait: float | None) -> None:
        retry_at = None if wait is None else self._clock.now() + timedelta(seconds=wait)
        async with self._db.uow() as uow:
            await outbox.mark_failed(uow, notification_id, error, retry_at)
            await uow.commit()

    async def _log_unsent(self) -> None:
        async with self._db.reader() as uow:
            pending = await outbox.pending_ids(uow)
        new = [p for p in pending if p not in self._logged_unsent]
        for notification_id, kind in new:
            log.warning(
                "notification %s (%s) kept in the outbox: no SMTP server configured "
                "(CONSULT_SMTP_HOST)",
                notification_id,
                kind,
            )
        self._logged_unsent.update(new)
