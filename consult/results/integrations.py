"""Integration credentials: one per sending system (a laboratory, an imaging system), made by
the operator with ``consult add-integration NAME`` and shown once. A credential posts results
(POST /api/integration/fhir) and nothing else: it is not a session, so every other route
answers it 401. Only the SHA-256 of its token is kept; a revoked one authenticates nothing."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Final

import sqlalchemy as sa

from consult.accounts.service import token_hash
from consult.clock import Clock
from consult.errors import NotAuthenticated
from consult.storage import tables as t
from consult.storage.uow import Database

MAX_NAME: Final = 120
_I = t.integrations.c


@dataclass(frozen=True)
class Integration:
    """A sending system, authenticated by its credential, and the address it called from."""

    id: int
    name: str
    ip: str | None = None


def check_name(name: str) -> str:
    """The name of a sending system: 1 to 120 printable characters, trimmed; else ValueError."""
    name = name.strip()
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise ValueError(f"an integration's name is 1 to {MAX_NAME} printable characters")
    return name


class IntegrationCredentials:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def add(self, name: str) -> tuple[int, str]:
        """A new credential for the sending system ``name``: its id and its token (returned
        once: only the token's hash is stored). Several credentials of one name may be valid
        at once (a new one handed over before the old one is revoked); results are the
        system's, whichever credential sent them."""
        name = check_name(name)
        token = secrets.token_urlsafe(32)
        async with self._db.uow() as uow:
            found = await uow.conn.execute(
                t.integrations.insert()
                .values(name=name, token_hash=token_hash(token), created_at=self._clock.now())
                .returning(_I.id)
            )
            integration_id = int(found.scalar_one())
            await uow.commit()
        return integration_id, token

    async def revoke(self, name: str) -> int:
        """Revoke every valid credential of ``name``; how many."""
        async with self._db.uow() as uow:
            done = await uow.conn.execute(
                t.integrations.update()
                .where(_I.name == check_name(name), _I.revoked_at.is_(None))
                .values(revoked_at=self._clock.now())
            )
            await uow.commit()
        return int(done.rowcount)

    async def authenticate(self, token: str | None, ip: str | None) -> Integration:
        if not token:
            raise NotAuthenticated("send the integration's token: Authorization: Bearer <token>")
        async with self._db.reader() as uow:
            found = await uow.conn.execute(
                sa.select(_I.id, _I.name).where(
                    _I.token_hash == token_hash(token), _I.revoked_at.is_(None)
                )
            )
            row = found.first()
        if row is None:
            raise NotAuthenticated(
                "this is not a valid integration credential (unknown or revoked)",
                code="invalid_credential",
            )
        return Integration(row.id, row.name, ip)
