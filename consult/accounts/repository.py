"""User, session and specialty rows, read and written inside a unit of work."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from consult.errors import Invalid
from consult.storage import tables as t
from consult.storage.uow import UnitOfWork


async def lock_user(uow: UnitOfWork, user_id: int) -> None:
    """Serialise one user's writes: bookings, document uploads (a PostgreSQL row lock; SQLite
    serialises every writer). ``FOR NO KEY UPDATE``: rows that merely reference the user (a
    login's session) still go ahead."""
    await uow.conn.execute(
        sa.select(t.users.c.id).where(t.users.c.id == user_id).with_for_update(key_share=True)
    )


async def lock_user_role(uow: UnitOfWork, user_id: int) -> str | None:
    """Lock the user's row and return their role (None if there is no such user): a connection
    opening and another closing are decided one after the other. FOR NO KEY UPDATE, so that
    rows referring to the user (messages, audit) are not held up."""
    return (
        await uow.conn.execute(
            sa.select(t.users.c.role).where(t.users.c.id == user_id).with_for_update(key_share=True)
        )
    ).scalar()


async def user_by_email(uow: UnitOfWork, email: str) -> Any:
    return (await uow.conn.execute(sa.select(t.users).where(t.users.c.email == email))).first()


async def user_row(uow: UnitOfWork, user_id: int) -> Any:
    return (await uow.conn.execute(sa.select(t.users).where(t.users.c.id == user_id))).first()


async def add_session(
    uow: UnitOfWork,
    hashed: str,
    user_id: int,
    created_at: datetime,
    expires_at: datetime,
    ip: str | None = None,
) -> None:
    await uow.conn.execute(
        t.sessions.insert().values(
            token_hash=hashed,
            user_id=user_id,
            created_at=created_at,
            expires_at=expires_at,
            ip=ip[:45] if ip else None,
        )
    )


async def add_user(
    uow: UnitOfWork, email: str, password_hash: str, name: str, role: str, now: datetime
) -> int:
    """A new account: a patient is basic on the basic plan until verified; staff have no plan.
    The e-mail is not confirmed yet."""
    return int(
        (
            await uow.conn.execute(
                t.users.insert()
                .values(
                    email=email,
                    password_hash=password_hash,
                    role=role,
                    identity="basic" if role == "patient" else "verified",
                    name=name,
                    plan_code="basic" if role == "patient" else None,
                    created_at=now,
                )
                .returning(t.users.c.id)
            )
        ).scalar_one()
    )


async def email_confirmed(uow: UnitOfWork, user_id: int) -> bool:
    u = t.users
    found = await uow.conn.execute(sa.select(u.c.email_confirmed_at).where(u.c.id == user_id))
    return found.scalar() is not None


async def set_password_hash(uow: UnitOfWork, user_id: int, password_hash: str) -> None:
    await uow.conn.execute(
        t.users.update().where(t.users.c.id == user_id).values(password_hash=password_hash)
    )


async def confirm_email(uow: UnitOfWork, user_id: int, now: datetime) -> None:
    u = t.users
    await uow.conn.execute(
        u.update()
        .where(u.c.id == user_id, u.c.email_confirmed_at.is_(None))
        .values(email_confirmed_at=now)
    )


async def user_sessions(uow: UnitOfWork, user_id: int) -> list[Any]:
    s = t.sessions
    return list(
        (
            await uow.conn.execute(
                sa.select(s.c.token_hash, s.c.created_at, s.c.expires_at, s.c.ip)
                .where(s.c.user_id == user_id)
                .order_by(s.c.created_at.desc())
            )
        ).all()
    )


async def delete_user_sessions(uow: UnitOfWork, user_id: int, keep: str | None = None) -> list[str]:
    """End the user's sessions (all, or all but ``keep``); the ended ones' hashes."""
    s = t.sessions
    where = [s.c.user_id == user_id] + ([s.c.token_hash != keep] if keep else [])
    hashes = list((await uow.conn.execute(sa.select(s.c.token_hash).where(*where))).scalars())
    if hashes:
        await uow.conn.execute(s.delete().where(s.c.token_hash.in_(hashes)))
    return hashes


async def session_user(uow: UnitOfWork, hashed: str) -> Any:
    """The session's user row with the session's ``expires_at``, or None."""
    return (await uow.conn.execute(_SESSION_USER, {"hash": hashed})).first()


async def delete_session(uow: UnitOfWork, hashed: str) -> None:
    await uow.conn.execute(t.sessions.delete().where(t.sessions.c.token_hash == hashed))


async def delete_sessions_expired_by(uow: UnitOfWork, now: datetime) -> int:
    result = await uow.conn.execute(t.sessions.delete().where(t.sessions.c.expires_at <= now))
    return int(result.rowcount or 0)


async def session_expiries(uow: UnitOfWork, hashes: Iterable[str]) -> list[tuple[str, Any]]:
    """(token hash, expires_at) of those of these sessions that exist."""
    rows = await uow.conn.execute(
        sa.select(t.sessions.c.token_hash, t.sessions.c.expires_at).where(
            t.sessions.c.token_hash.in_(sorted(hashes))
        )
    )
    return [(h, expires) for h, expires in rows]


async def specialties(uow: UnitOfWork) -> list[Any]:
    return list(
        (await uow.conn.execute(sa.select(t.specialties).order_by(t.specialties.c.name))).all()
    )


async def doctor_specialties(uow: UnitOfWork, doctor_id: int) -> list[str]:
    rows = await uow.conn.execute(
        sa.select(t.doctor_specialties.c.specialty_code).where(
            t.doctor_specialties.c.doctor_id == doctor_id
        )
    )
    return sorted(r[0] for r in rows)


# Built once: every request authenticates, every join checks the plan and names the specialty,
# and building a statement and its cache key costs more than running it (docs/performance.md).
_SESSION_USER = (
    sa.select(t.users, t.sessions.c.expires_at)
    .join(t.sessions, t.sessions.c.user_id == t.users.c.id)
    .where(t.sessions.c.token_hash == sa.bindparam("hash"))
)
_COVERED = (
    sa.select(t.plan_specialties.c.specialty_code)
    .join(t.users, t.users.c.plan_code == t.plan_specialties.c.plan_code)
    .where(t.users.c.id == sa.bindparam("patient_id"))
)
_SPECIALTY_NAME = sa.select(t.specialties.c.name).where(
    t.specialties.c.code == sa.bindparam("code")
)


async def covered_specialties(uow: UnitOfWork, patient_id: int) -> set[str]:
    rows = await uow.conn.execute(_COVERED, {"patient_id": patient_id})
    return {r[0] for r in rows}


async def specialty_name(uow: UnitOfWork, code: str) -> str:
    name = (await uow.conn.execute(_SPECIALTY_NAME, {"code": code})).scalar()
    if name is None:
        raise Invalid(f"unknown specialty {code!r}", code="unknown_specialty")
    return str(name)


async def set_totp(
    uow: UnitOfWork, user_id: int, secret: str | None, enabled_at: datetime | None
) -> None:
    await uow.conn.execute(
        t.users.update()
        .where(t.users.c.id == user_id)
        .values(totp_secret=secret, totp_enabled_at=enabled_at)
    )


async def replace_recovery_codes(uow: UnitOfWork, user_id: int, hashes: list[str]) -> None:
    r = t.recovery_codes
    await uow.conn.execute(r.delete().where(r.c.user_id == user_id))
    if hashes:
        await uow.conn.execute(r.insert(), [{"code_hash": h, "user_id": user_id} for h in hashes])


async def use_recovery_code(uow: UnitOfWork, user_id: int, code_hash: str, now: datetime) -> bool:
    """Mark the user's unused code used; whether there was one."""
    r = t.recovery_codes
    done = await uow.conn.execute(
        r.update()
        .where(r.c.user_id == user_id, r.c.code_hash == code_hash, r.c.used_at.is_(None))
        .values(used_at=now)
    )
    return bool(done.rowcount)
