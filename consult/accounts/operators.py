"""Accounts made by an operator (``consult create-user``): no password until its owner opens
the one-time set-password link printed for them (valid 72 hours; the link also confirms the
e-mail). Staff then set up their TOTP at their first login."""

from __future__ import annotations

import secrets

from sqlalchemy.exc import IntegrityError

from consult.accounts import repository as repo
from consult.accounts import tokens
from consult.accounts.passwords import hash_password
from consult.accounts.signup import check_name, normal_email
from consult.clock import Clock
from consult.domain import Role
from consult.storage import tables as t
from consult.storage.uow import Database


class UserExists(ValueError):
    pass


async def create_user(
    db: Database,
    clock: Clock,
    link_base: str,
    role: Role,
    email: str,
    name: str,
    specialties: list[str],
) -> tuple[int, str]:
    """The new user's id and their set-password link; ``ValueError`` for bad input."""
    email, name = normal_email(email), check_name(name)
    if specialties and role is not Role.DOCTOR:
        raise ValueError("only doctors have specialties")
    # Nobody knows this password: the account is unusable until the link sets one.
    unusable = hash_password(secrets.token_urlsafe(32))
    now = clock.now()
    async with db.uow() as uow:
        try:
            user_id = await repo.add_user(uow, email, unusable, name, role, now)
        except IntegrityError:
            raise UserExists(f"an account with {email} exists already") from None
        if specialties:
            try:
                await uow.conn.execute(
                    t.doctor_specialties.insert(),
                    [{"doctor_id": user_id, "specialty_code": s} for s in specialties],
                )
            except IntegrityError:
                raise ValueError(f"unknown specialty among {', '.join(specialties)}") from None
        token = await tokens.issue(uow, user_id, tokens.SET_PASSWORD, now)
        await uow.commit()
    return user_id, f"{link_base}/account/reset.html#token={token}"
