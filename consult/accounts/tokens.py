"""Single-use tokens sent by e-mail or held for a step: e-mail confirmation, password reset, a
new account's first password, a login's second (TOTP) step. Only a hash is stored; a token
works once, before it expires, for its purpose only."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa

from consult.clock import as_utc
from consult.errors import Invalid
from consult.storage import tables as t
from consult.storage.uow import UnitOfWork

CONFIRM_EMAIL = "confirm_email"
RESET_PASSWORD = "reset_password"
SET_PASSWORD = "set_password"
LOGIN_TOTP = "login_totp"

LIFETIMES = {
    CONFIRM_EMAIL: timedelta(days=2),
    RESET_PASSWORD: timedelta(minutes=30),
    SET_PASSWORD: timedelta(days=3),
    LOGIN_TOTP: timedelta(minutes=5),
}


def hashed(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue(uow: UnitOfWork, user_id: int, purpose: str, now: datetime) -> str:
    token = secrets.token_urlsafe(32)
    await uow.conn.execute(
        t.account_tokens.insert().values(
            token_hash=hashed(token),
            user_id=user_id,
            purpose=purpose,
            created_at=now,
            expires_at=now + LIFETIMES[purpose],
        )
    )
    return token


async def peek(uow: UnitOfWork, token: str, purposes: tuple[str, ...], now: datetime) -> int:
    """The token's user, if it may be used now; ``token_invalid``, ``token_used`` or
    ``token_expired`` otherwise. Locks the row (PostgreSQL): two uses race to one winner."""
    a = t.account_tokens
    row = (
        await uow.conn.execute(
            sa.select(a)
            .where(a.c.token_hash == hashed(token), a.c.purpose.in_(purposes))
            .with_for_update()
        )
    ).first()
    if row is None:
        raise Invalid("this link is not valid (mistyped or cut?)", code="token_invalid")
    if row.used_at is not None:
        raise Invalid("this link has been used already", code="token_used")
    if as_utc(row.expires_at) <= now:
        raise Invalid("this link has expired; ask for a new one", code="token_expired")
    return int(row.user_id)


async def consume(uow: UnitOfWork, token: str, purposes: tuple[str, ...], now: datetime) -> int:
    """``peek``, then mark the token used (in the caller's transaction)."""
    user_id = await peek(uow, token, purposes, now)
    a = t.account_tokens
    await uow.conn.execute(a.update().where(a.c.token_hash == hashed(token)).values(used_at=now))
    return user_id


async def retire(uow: UnitOfWork, user_id: int, purpose: str, now: datetime) -> None:
    """Every unused token of the user for ``purpose`` stops working (a newer one was sent)."""
    a = t.account_tokens
    await uow.conn.execute(
        a.update()
        .where(a.c.user_id == user_id, a.c.purpose == purpose, a.c.used_at.is_(None))
        .values(used_at=now)
    )
