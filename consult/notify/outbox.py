"""The transactional outbox: a notification is a row written in the transaction of what
caused it (so it exists exactly when that change does), delivered later by the worker
(worker.py). A worker claims due rows for ``lease`` seconds (on PostgreSQL with ``FOR UPDATE
SKIP LOCKED``, so several processes never claim the same row; SQLite has one writer), sends
them, then marks each sent or due again after a backoff."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from consult.events import NotificationQueued
from consult.storage import tables as t
from consult.storage.uow import UnitOfWork

PENDING = "pending"
SENT = "sent"
FAILED = "failed"  # refused for good by the mail server (kept, logged)


@dataclass(frozen=True)
class Attachment:
    name: str
    content_type: str
    text: str


@dataclass(frozen=True)
class Mail:
    kind: str
    recipient: str
    subject: str
    body: str
    user_id: int | None = None
    attachment: Attachment | None = None


async def enqueue(uow: UnitOfWork, mail: Mail, now: datetime) -> str:
    """Add ``mail`` to the outbox inside the caller's transaction; its id (the Message-ID)."""
    notification_id = str(uuid.uuid4())
    attached = mail.attachment
    await uow.conn.execute(
        t.notifications.insert().values(
            id=notification_id,
            kind=mail.kind,
            user_id=mail.user_id,
            recipient=mail.recipient,
            subject=mail.subject[:200],
            body=mail.body,
            attachment_name=attached.name if attached else None,
            attachment_type=attached.content_type if attached else None,
            attachment=attached.text if attached else None,
            status=PENDING,
            created_at=now,
            attempts=0,
            next_attempt_at=now,
        )
    )
    uow.collect(NotificationQueued())
    return notification_id


async def claim(uow: UnitOfWork, now: datetime, lease: float, limit: int) -> list[Any]:
    """Due, unclaimed notifications, oldest first, claimed until ``now + lease``."""
    n = t.notifications
    rows = (
        await uow.conn.execute(
            sa.select(n)
            .where(
                n.c.status == PENDING,
                n.c.next_attempt_at <= now,
                sa.or_(n.c.claimed_until.is_(None), n.c.claimed_until <= now),
            )
            .order_by(n.c.next_attempt_at, n.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()
    if rows:
        await uow.conn.execute(
            n.update()
            .where(n.c.id.in_([r.id for r in rows]))
            .values(claimed_until=now + timedelta(seconds=lease))
        )
    return list(rows)


async def mark_sent(uow: UnitOfWork, notification_id: str, now: datetime) -> None:
    # The body goes: it may hold a single-use link or an access code, of no use once sent.
    n = t.notifications
    await uow.conn.execute(
        n.update()
        .where(n.c.id == notification_id)
        .values(
            status=SENT,
            sent_at=now,
            attempts=n.c.attempts + 1,
            body=None,
            attachment=None,
            claimed_until=None,
            last_error=None,
        )
    )


async def mark_failed(
    uow: UnitOfWork, notification_id: str, error: str, retry_at: datetime | None
) -> None:
    """Due again at ``retry_at``; with None, refused for good (status ``failed``, kept)."""
    n = t.notifications
    values: dict[str, Any] = {
        "attempts": n.c.attempts + 1,
        "claimed_until": None,
        "last_error": error[:300],
    }
    if retry_at is None:
        values["status"] = FAILED
    else:
        values["next_attempt_at"] = retry_at
    await uow.conn.execute(n.update().where(n.c.id == notification_id).values(**values))


async def counts(uow: UnitOfWork) -> dict[str, int]:
    n = t.notifications
    rows = await uow.conn.execute(sa.select(n.c.status, sa.func.count()).group_by(n.c.status))
    return {status: int(count) for status, count in rows}


async def pending_ids(uow: UnitOfWork, limit: int = 1000) -> list[tuple[str, str]]:
    """(id, kind) of pending notifications, oldest first."""
    n = t.notifications
    rows = await uow.conn.execute(
        sa.select(n.c.id, n.c.kind)
        .where(n.c.status == PENDING)
        .order_by(n.c.created_at, n.c.id)
        .limit(limit)
    )
    return [(i, k) for i, k in rows]
