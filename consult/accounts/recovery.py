"""Passwords after sign-up: a reset by e-mail, a change by the logged-in user, and the first
password of an account an operator made (``consult create-user``).

A reset request answers the same 202 whether or not the address has an account (no account
enumeration); only an existing account gets the e-mail. The link works once, for 30 minutes;
using it sets the password, confirms the e-mail (the link proved the mailbox) and ends every
session of the account. A change ends every other session. A new password is checked before
anything else, so a refused one changes nothing (not even the link, which still works).
"""

from __future__ import annotations

import asyncio

from consult.accounts import repository as repo
from consult.accounts import tokens
from consult.accounts.password_policy import check_new_password
from consult.accounts.passwords import hash_password, verify_password
from consult.accounts.signup import normal_email
from consult.accounts.throttle import LoginThrottle, TooManyAttempts
from consult.audit import Audit
from consult.clock import Clock
from consult.domain import Actor, Identity, Role
from consult.errors import NotAllowed
from consult.events import SessionEnded
from consult.notify import messages
from consult.notify.outbox import enqueue
from consult.storage.uow import Database, UnitOfWork


class Passwords:
    def __init__(
        self, db: Database, clock: Clock, audit: Audit, link_base: str, throttle: LoginThrottle
    ) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._links = link_base
        self._throttle = throttle

    async def forgot(self, email: str) -> None:
        email = normal_email(email)
        now = self._clock.now()
        async with self._db.uow() as uow:
            row = await repo.user_by_email(uow, email)
            if row is None:
                return
            # The newest link is the one that works: an older one may sit in a shared inbox.
            await tokens.retire(uow, row.id, tokens.RESET_PASSWORD, now)
            token = await tokens.issue(uow, row.id, tokens.RESET_PASSWORD, now)
            link = f"{self._links}/account/reset.html#token={token}"
            await enqueue(uow, messages.password_reset(row.id, email, row.name, link), now)
            await uow.commit()

    async def reset(self, token: str, password: str, ip: str | None) -> None:
        """Set the password with a reset (or first-password) link; every session ends."""
        now = self._clock.now()
        async with self._db.reader() as uow:  # the rule needs the address; the token is checked
            user_id = await tokens.peek(uow, token, _SETTERS, now)
            row = await repo.user_row(uow, user_id)
        check_new_password(password, row.email)
        hashed = await asyncio.to_thread(hash_password, password)
        async with self._db.uow() as uow:
            user_id = await tokens.consume(uow, token, _SETTERS, now)
            await repo.set_password_hash(uow, user_id, hashed)
            await repo.confirm_email(uow, user_id, now)
            await _end_sessions(uow, user_id, keep=None)
            actor = Actor(user_id, Role(row.role), Identity(row.identity), row.name, ip)
            await self._audit.write(uow, actor, "account.password_reset")
            await uow.commit()
        await self._throttle.succeeded(row.email)  # the account's lock goes with the old password

    async def change(self, actor: Actor, current: str, new: str, session_hash: str | None) -> None:
        """The logged-in user's new password (the current one first); other sessions end. A
        wrong current password counts as a failed login (consult/accounts/throttle.py)."""
        async with self._db.reader() as uow:
            row = await repo.user_row(uow, actor.user_id)
        try:
            await self._throttle.admit(row.email, actor.ip, self._clock.now().timestamp())
        except TooManyAttempts:
            await self._audit.deny(actor, "account.password_change", detail="throttled")
            raise
        async with self._throttle.hashing():
            right = await verify_password(row.password_hash, current)
        if not right:
            await self._throttle.failed(actor.ip, self._clock.now().timestamp())
            await self._audit.deny(actor, "account.password_change", detail="wrong password")
            raise NotAllowed("the current password is wrong", code="wrong_password")
        await self._throttle.succeeded(row.email)
        check_new_password(new, row.email)
        hashed = await asyncio.to_thread(hash_password, new)
        async with self._db.uow() as uow:
            await repo.set_password_hash(uow, actor.user_id, hashed)
            await _end_sessions(uow, actor.user_id, keep=session_hash)
            await self._audit.write(uow, actor, "account.password_change")
            await uow.commit()

    async def first_password_link(self, uow: UnitOfWork, user_id: int) -> str:
        """A set-password link for an account an operator made (in the caller's transaction)."""
        token = await tokens.issue(uow, user_id, tokens.SET_PASSWORD, self._clock.now())
        return f"{self._links}/account/reset.html#token={token}"


_SETTERS = (tokens.RESET_PASSWORD, tokens.SET_PASSWORD)


async def _end_sessions(uow: UnitOfWork, user_id: int, keep: str | None) -> None:
    for hashed in await repo.delete_user_sessions(uow, user_id, keep):
        uow.collect(SessionEnded(hashed))
