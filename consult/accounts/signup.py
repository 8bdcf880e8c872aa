"""Sign-up as a basic patient account, and the e-mail confirmation that lets it book.

Account enumeration: the answer to a sign-up never tells whether the address has an account
(being a patient of a clinic is itself private). A new address gets a confirmation link; an
address with an account gets an e-mail saying so; the answer is the same 202 either way, and
both paths hash the password, so they take about as long. Bad input (a weak or common
password, an invalid address, terms not accepted) is refused before any look-up.
"""

from __future__ import annotations

import asyncio
import re

from sqlalchemy.exc import IntegrityError

from consult.accounts import repository as repo
from consult.accounts import tokens
from consult.accounts.password_policy import check_new_password
from consult.accounts.passwords import hash_password
from consult.audit import Audit
from consult.clock import Clock
from consult.domain import Actor, Identity, Role
from consult.errors import Invalid
from consult.notify import messages
from consult.notify.outbox import enqueue
from consult.storage.uow import Database

# Something@something.tld without spaces: the mailbox itself is proven by the link.
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")


def normal_email(raw: str) -> str:
    email = raw.strip().lower()
    if len(email) > 254 or _EMAIL.fullmatch(email) is None:
        raise Invalid("this is not an e-mail address", code="invalid_email")
    return email


def check_name(raw: str) -> str:
    name = " ".join(raw.split())
    if not 1 <= len(name) <= 120:
        raise Invalid("a name has 1 to 120 characters", code="invalid_payload")
    return name


class SignUp:
    def __init__(self, db: Database, clock: Clock, audit: Audit, link_base: str) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._links = link_base

    async def sign_up(
        self, email: str, name: str, password: str, accept_terms: bool, ip: str | None
    ) -> None:
        email, name = normal_email(email), check_name(name)
        check_new_password(password, email)
        if not accept_terms:
            raise Invalid("accept the terms to sign up", code="terms_not_accepted")
        hashed = await asyncio.to_thread(hash_password, password)
        now = self._clock.now()
        async with self._db.uow() as uow:
            existing = await repo.user_by_email(uow, email)
            if existing is not None:
                link = f"{self._links}/patient/"
                mail = messages.already_registered(existing.id, email, existing.name, link)
                await enqueue(uow, mail, now)
                await uow.commit()
                return
            try:
                user_id = await repo.add_user(uow, email, hashed, name, Role.PATIENT, now)
            except IntegrityError:  # a concurrent sign-up with the address won
                return
            token = await tokens.issue(uow, user_id, tokens.CONFIRM_EMAIL, now)
            link = f"{self._links}/account/confirm.html#token={token}"
            await enqueue(uow, messages.confirm_email(user_id, email, name, link), now)
            actor = Actor(user_id, Role.PATIENT, Identity.BASIC, name, ip)
            await self._audit.write(uow, actor, "account.signup", detail=f"user {user_id}")
            await uow.commit()

    async def confirm(self, token: str, ip: str | None) -> None:
        now = self._clock.now()
        async with self._db.uow() as uow:
            user_id = await tokens.consume(uow, token, (tokens.CONFIRM_EMAIL,), now)
            await repo.confirm_email(uow, user_id, now)
            row = await repo.user_row(uow, user_id)
            actor = Actor(user_id, Role(row.role), Identity(row.identity), row.name, ip)
            await self._audit.write(uow, actor, "account.email_confirm")
            await uow.commit()
