"""PostgreSQL's error codes, read here so that features see consult's own exceptions (and
import neither asyncpg nor its codes)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import asyncpg

if TYPE_CHECKING:  # retry.py imports this module, and the unit of work may import retry.py
    from consult.storage.uow import Database

UNIQUE_VIOLATION = "23505"
# PostgreSQL aborted the work to break a deadlock, or a serialisation conflict: running it
# again is the remedy (retry.py).
TRANSIENT = frozenset({"40P01", "40001"})

# A statement refused for one of these stored nothing of its own, and running it as it is may
# meet the same refusal: the caller takes another path.
_REFUSED_WHOLE = TRANSIENT | {UNIQUE_VIOLATION}


class StatementRefused(Exception):
    """PostgreSQL refused a statement as a whole (a unique key met a stored row, or it lost a
    deadlock or a serialisation conflict): nothing of it was stored."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"statement refused as a whole (SQLSTATE {sqlstate})")
        self.sqlstate = sqlstate


async def fetch_all_or_nothing(db: Database, sql: str, *params: Any) -> list[Any]:
    """Runs one statement outside any transaction (``Database.postgres_statement``: atomic by
    itself) and returns its rows; raises ``StatementRefused`` if PostgreSQL refused it as a
    whole. Other errors pass through as asyncpg raised them."""
    try:
        async with db.postgres_statement() as conn:
            return list(await conn.fetch(sql, *params))
    except asyncpg.PostgresError as exc:
        sqlstate = getattr(exc, "sqlstate", None)
        if sqlstate in _REFUSED_WHOLE:
            raise StatementRefused(sqlstate) from exc
        raise
