"""Two-factor login with TOTP: staff (doctors, schedulers) always, patients when they turn it
on. After the right password such a login gets a challenge (a single-use token, 5 minutes)
instead of a session; the code (or a recovery code) with the challenge opens the session. A
member of staff without TOTP yet gets a new secret with the challenge and turns TOTP on by
entering its first code, which also gives them their recovery codes (shown once).

A wrong code counts as a failed login (consult/accounts/throttle.py): the account's and the
address's counters lock guessing as they lock password guessing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from consult.accounts import repository as repo
from consult.accounts import tokens
from consult.accounts import totp as otp
from consult.accounts.passwords import verify_password
from consult.accounts.throttle import LoginThrottle
from consult.audit import Audit
from consult.clock import Clock
from consult.domain import Actor, Identity, Role
from consult.errors import Conflict, NotAllowed, NotAuthenticated
from consult.storage.uow import Database, UnitOfWork


@dataclass(frozen=True)
class TotpSetup:
    secret: str
    uri: str


@dataclass(frozen=True)
class Challenge:
    challenge: str
    setup: TotpSetup | None  # staff without TOTP yet: the secret to add to their app


def needs_totp(row: Any) -> bool:
    return row.totp_enabled_at is not None or row.role in otp.STAFF_ROLES


class TwoFactor:
    def __init__(self, db: Database, clock: Clock, audit: Audit, throttle: LoginThrottle) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._throttle = throttle

    async def challenge(self, row: Any) -> Challenge:
        """The login's second step for this user (their password was right)."""
        now = self._clock.now()
        async with self._db.uow() as uow:
            setup = None
            if row.totp_enabled_at is None:
                setup = await self._new_secret(uow, row.id, row.email)
            token = await tokens.issue(uow, row.id, tokens.LOGIN_TOTP, now)
            await uow.commit()
        return Challenge(token, setup)

    async def _new_secret(self, uow: UnitOfWork, user_id: int, email: str) -> TotpSetup:
        secret = otp.new_secret()
        await repo.set_totp(uow, user_id, secret, None)
        return TotpSetup(secret, otp.uri(secret, email))

    async def complete(self, challenge: str, code: str, ip: str | None) -> tuple[Any, list[str]]:
        """The user row of a right code (the challenge used up) and, when this turned TOTP on,
        the new recovery codes; else ``bad_totp_code`` (throttled like a password)."""
        now = self._clock.now()
        async with self._db.reader() as uow:
            user_id = await tokens.peek(uow, challenge, (tokens.LOGIN_TOTP,), now)
            row = await repo.user_row(uow, user_id)
        await self._throttle.admit(row.email, ip, now.timestamp())
        codes: list[str] = []
        async with self._db.uow() as uow:
            await tokens.consume(uow, challenge, (tokens.LOGIN_TOTP,), now)
            right = await self._right(uow, row, code)
            if right:  # else rolled back: the challenge stays usable
                if row.totp_enabled_at is None:
                    codes = await self._turn_on(uow, row.id, row.totp_secret)
                await uow.commit()
        if not right:
            return await self._wrong(row, ip)
        await self._throttle.succeeded(row.email)
        return row, codes

    async def _right(self, uow: UnitOfWork, row: Any, code: str) -> bool:
        if row.totp_secret and otp.code_matches(row.totp_secret, code):
            return True
        if row.totp_enabled_at is not None and otp.looks_like_recovery_code(code):
            hashed = otp.recovery_hash(code)
            return await repo.use_recovery_code(uow, row.id, hashed, self._clock.now())
        return False

    async def _wrong(self, row: Any, ip: str | None) -> tuple[Any, list[str]]:
        await self._throttle.failed(ip, self._clock.now().timestamp())
        await self._audit.deny(None, "session.login", detail="wrong TOTP code", ip=ip)
        raise NotAuthenticated("the authentication code is wrong", code="bad_totp_code")

    async def _turn_on(self, uow: UnitOfWork, user_id: int, secret: str) -> list[str]:
        codes = otp.new_recovery_codes()
        await repo.set_totp(uow, user_id, secret, self._clock.now())
        await repo.replace_recovery_codes(uow, user_id, [otp.recovery_hash(c) for c in codes])
        return codes

    async def setup(self, actor: Actor) -> TotpSetup:
        """A patient's new secret, in force once ``enable`` gets its first code."""
        async with self._db.uow() as uow:
            row = await repo.user_row(uow, actor.user_id)
            if row.totp_enabled_at is not None:
                raise Conflict("two-factor login is on already", code="totp_already_on")
            made = await self._new_secret(uow, row.id, row.email)
            await uow.commit()
        return made

    async def enable(self, actor: Actor, code: str) -> list[str]:
        async with self._db.uow() as uow:
            row = await repo.user_row(uow, actor.user_id)
            if row.totp_enabled_at is not None:
                raise Conflict("two-factor login is on already", code="totp_already_on")
            if not row.totp_secret:
                raise Conflict("ask for a secret first (setup)", code="totp_not_set_up")
            if not otp.code_matches(row.totp_secret, code):
                raise NotAllowed("the authentication code is wrong", code="bad_totp_code")
            codes = await self._turn_on(uow, row.id, row.totp_secret)
            await self._audit.write(uow, actor, "account.totp.enable")
            await uow.commit()
        return codes

    async def disable(self, actor: Actor, password: str) -> None:
        """Patients only: staff always log in with a code."""
        if actor.role.value in otp.STAFF_ROLES:
            raise NotAllowed("staff always log in with a code", code="totp_required_for_staff")
        async with self._db.reader() as uow:
            row = await repo.user_row(uow, actor.user_id)
        if not await verify_password(row.password_hash, password):
            raise NotAllowed("the password is wrong", code="wrong_password")
        async with self._db.uow() as uow:
            await repo.set_totp(uow, actor.user_id, None, None)
            await repo.replace_recovery_codes(uow, actor.user_id, [])
            await self._audit.write(uow, actor, "account.totp.disable")
            await uow.commit()


def actor_of(row: Any, ip: str | None) -> Actor:
    return Actor(row.id, Role(row.role), Identity(row.identity), row.name, ip)
