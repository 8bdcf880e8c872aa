"""Log in, resolve a session token to an actor, log out; the specialty catalogue and coverage."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from consult.accounts import repository as repo
from consult.accounts.passwords import verify_password
from consult.accounts.schemas import SessionRow
from consult.accounts.throttle import LoginThrottle, TooManyAttempts
from consult.accounts.two_factor import Challenge, TwoFactor, needs_totp
from consult.audit import Audit
from consult.clock import Clock, as_utc
from consult.domain import Actor, Client, Identity, Role
from consult.errors import NotAuthenticated, NotFound
from consult.events import SessionEnded
from consult.schemas import CatalogueSpecialtyOut, UserOut
from consult.storage.uow import Database


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class AccountService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        audit: Audit,
        session_hours: int,
        throttle: LoginThrottle,
    ) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._ttl = timedelta(hours=session_hours)
        self.throttle = throttle
        self.two_factor = TwoFactor(db, clock, audit, throttle)
        # A locked counter's key -> the end of the lock whose refusal is already audited: a
        # flood of refused attempts writes one audit row per lock, not one per attempt.
        self._audited_locks: dict[str, float] = {}

    async def login(
        self, email: str, password: str, ip: str | None
    ) -> tuple[str, datetime] | Challenge:
        """A new session, or the TOTP step's challenge (consult/accounts/two_factor.py), or
        ``bad_credentials``; ``too_many_attempts`` while the account or the client address is
        locked by its failures (consult/accounts/throttle.py)."""
        email = email.strip().lower()
        async with self.throttle.turn(ip):
            try:
                await self.throttle.admit(email, ip, self._clock.now().timestamp())
            except TooManyAttempts as refused:
                await self._audit_lock(refused, ip)
                raise
            async with self._db.reader() as uow:
                row = await repo.user_by_email(uow, email)
            async with self.throttle.hashing():
                right = await verify_password(row.password_hash if row else None, password)
            if not right or row is None:
                await self.throttle.failed(ip, self._clock.now().timestamp())
                await self._audit.deny(
                    None, "session.login", detail="wrong email or password", ip=ip
                )
                raise NotAuthenticated("wrong email or password", code="bad_credentials")
            if needs_totp(row):  # the account's attempt is forgotten once the code is right
                return await self.two_factor.challenge(row)
            await self.throttle.succeeded(email)
        return await self.open_session(row, ip)

    async def login_totp(
        self, challenge: str, code: str, ip: str | None
    ) -> tuple[str, datetime, list[str]]:
        """The login's second step: a session (and the recovery codes, if it turned TOTP on)."""
        try:
            row, codes = await self.two_factor.complete(challenge, code, ip)
        except TooManyAttempts as refused:
            await self._audit_lock(refused, ip)
            raise
        token, expires = await self.open_session(row, ip)
        return token, expires, codes

    async def open_session(self, row: Any, ip: str | None) -> tuple[str, datetime]:
        token = secrets.token_urlsafe(32)
        now = self._clock.now()
        expires = now + self._ttl
        async with self._db.uow() as uow:
            await repo.add_session(uow, token_hash(token), row.id, now, expires, ip)
            actor = Actor(row.id, Role(row.role), Identity(row.identity), row.name, ip)
            await self._audit.write(uow, actor, "session.login")
            await uow.commit()
        return token, expires

    async def _audit_lock(self, refused: TooManyAttempts, ip: str | None) -> None:
        now = self._clock.now().timestamp()
        if len(self._audited_locks) > 10_000:
            self._audited_locks = {k: v for k, v in self._audited_locks.items() if v > now}
        if self._audited_locks.get(refused.key, 0.0) > now:
            return
        self._audited_locks[refused.key] = now + refused.retry_after
        await self._audit.deny(
            None, "session.login", detail="too many failed logins: throttled", ip=ip
        )

    async def authenticate(
        self, token: str | None, ip: str | None = None, client: Client | None = None
    ) -> Actor:
        """The session's actor, acting from ``ip`` through ``client`` (the edge tells which)."""
        if not token:
            raise NotAuthenticated("log in first")
        async with self._db.reader() as uow:
            row = await repo.session_user(uow, token_hash(token))
        if row is None or as_utc(row.expires_at) <= self._clock.now():
            raise NotAuthenticated("the session is unknown or has expired", code="session_expired")
        return Actor(row.id, Role(row.role), Identity(row.identity), row.name, ip, client)

    async def logout(self, token: str) -> None:
        hashed = token_hash(token)
        async with self._db.uow() as uow:
            await repo.delete_session(uow, hashed)
            uow.collect(SessionEnded(hashed))
            await uow.commit()

    async def sessions(self, actor: Actor, current: str | None) -> list[SessionRow]:
        """The user's sessions, newest first; ``current`` (a token hash) marks this one."""
        async with self._db.reader() as uow:
            rows = await repo.user_sessions(uow, actor.user_id)
        now = self._clock.now()
        return [
            SessionRow(
                id=r.token_hash[:16],
                created_at=as_utc(r.created_at),
                expires_at=as_utc(r.expires_at),
                ip=r.ip,
                current=r.token_hash == current,
            )
            for r in rows
            if as_utc(r.expires_at) > now
        ]

    async def logout_everywhere(self, actor: Actor) -> int:
        """End every session of the user, this one too; how many."""
        async with self._db.uow() as uow:
            ended = await repo.delete_user_sessions(uow, actor.user_id)
            for hashed in ended:
                uow.collect(SessionEnded(hashed))
            await self._audit.write(uow, actor, "session.logout_all", detail=f"{len(ended)}")
            await uow.commit()
        return len(ended)

    async def purge_expired(self) -> int:
        """Delete sessions past their expiry (they authenticate nothing); how many."""
        async with self._db.uow() as uow:
            purged = await repo.delete_sessions_expired_by(uow, self._clock.now())
            await uow.commit()
        return purged

    async def live_sessions(self, hashes: set[str]) -> set[str]:
        """Those of these session token hashes whose session still holds."""
        if not hashes:
            return set()
        async with self._db.reader() as uow:
            expiries = await repo.session_expiries(uow, hashes)
        now = self._clock.now()
        return {h for h, expires in expiries if as_utc(expires) > now}

    async def user(self, user_id: int) -> UserOut:
        async with self._db.uow() as uow:
            row = await repo.user_row(uow, user_id)
            if row is None:
                raise NotFound("no such user")
            specialties = (
                await repo.doctor_specialties(uow, user_id) if row.role == "doctor" else []
            )
        return UserOut(
            id=row.id,
            email=row.email,
            name=row.name,
            role=Role(row.role),
            identity=Identity(row.identity),
            plan=row.plan_code,
            specialties=specialties,
            email_confirmed=row.email_confirmed_at is not None,
            totp=row.totp_enabled_at is not None,
        )

    async def specialties(self, actor: Actor) -> list[CatalogueSpecialtyOut]:
        async with self._db.uow() as uow:
            rows = await repo.specialties(uow)
            covered = (
                await repo.covered_specialties(uow, actor.user_id) if actor.is_patient else None
            )
        return [
            CatalogueSpecialtyOut(
                code=r.code,
                name=r.name,
                covered=None if covered is None else r.code in covered,
                referral_required=r.referral_required,
            )
            for r in rows
        ]
