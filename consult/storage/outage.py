"""The database unavailable: told apart from other failures, answered as such, logged once.

PostgreSQL restarting, failing over, or out of reach makes every statement fail for a while;
the client should hear "try again shortly" (503 ``database_unavailable`` with ``Retry-After``),
not "something went wrong" (500 ``internal``), and the log should say so once, not once per
request and per tick of every background loop. Nothing is retried here: a statement whose
connection was lost may or may not have been committed, so the client, which knows whether the
request is safe to repeat (a chat message carries its client id), retries it.

``Database`` (uow.py) calls :meth:`OutageWatch.check` where it connects and where each
statement, COMMIT and ROLLBACK runs, and nowhere else: there, an ``OSError`` can only be the
database's (a connection refused, reset or timed out), which it could not be around other
code. The pool needs no help to recover: SQLAlchemy invalidates the pooled connections when it
sees one lost, and the next checkout connects anew.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from typing import Any

import asyncpg
from sqlalchemy.exc import DBAPIError

from consult.errors import Unavailable

log = logging.getLogger(__name__)

# Seconds a client is told to wait before trying again (``Retry-After``): a restart or a
# failover of PostgreSQL takes seconds, and clients coming back at once would find it down.
RETRY_AFTER = 5

# PostgreSQL: class 08 (connection exception), the server shutting down or not yet accepting
# connections (57P01-57P03), no connection slot left (53300).
_PG_CLASSES = ("08",)
_PG_STATES = frozenset({"57P01", "57P02", "57P03", "53300"})
# SQLite (primary result codes): the lock still held after the busy timeout (inline_sqlite.py),
# the disk failing or full, the file not openable.
_SQLITE_CODES = frozenset(
    {
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,
    }
)
_SQLITE_WORDS = ("database is locked", "disk I/O error", "database or disk is full")


def database_unavailable() -> Unavailable:
    return Unavailable(
        "the service is briefly unavailable (its database cannot be reached); "
        f"please try again in {RETRY_AFTER} seconds",
        code="database_unavailable",
        details={"retry_after": RETRY_AFTER},
    )


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc``, raised by a database call, says the database is unavailable (rather
    than that the statement is wrong or refused)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _says_unavailable(current):
            return True
        current = current.__cause__ or getattr(current, "orig", None)
    return False


def _says_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, Unavailable | OSError):  # OSError: refused, reset, timed out (see above)
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    state = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    if isinstance(state, str) and (state.startswith(_PG_CLASSES) or state in _PG_STATES):
        return True
    if isinstance(exc, asyncpg.InterfaceError) and "connection is closed" in str(exc):
        return True
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if code is not None:
            return code & 0xFF in _SQLITE_CODES
        return any(words in str(exc) for words in _SQLITE_WORDS)
    return type(exc).__name__ == "GroupRolledBack"  # group_commit.py: a unit's write was lost


class OutageWatch:
    """The database's state as its callers last found it: down from the first failure that
    says it is unavailable, up again at the next statement that succeeds. Logs each change
    once."""

    def __init__(self) -> None:
        self.down_since: float | None = None  # time.monotonic()
        self.back_at: float | None = None  # time.monotonic() when the last outage ended
        self.outages = 0
        self._failures = 0

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def check(self, exc: BaseException) -> None:
        """Raise ``database_unavailable`` (from ``exc``) if ``exc`` says the database is
        unavailable; otherwise return, and the caller re-raises ``exc``."""
        if isinstance(exc, Unavailable):
            raise exc
        if is_outage(exc):
            self._note(exc)
            raise database_unavailable() from exc

    def _note(self, exc: BaseException) -> None:
        self._failures += 1
        if self.down_since is None:
            self.down_since = time.monotonic()
            self.outages += 1
            log.error("the database is unavailable: %s", _describe(exc))

    def up(self) -> None:
        """A statement succeeded: if the database was down, it is back."""
        if self.down_since is None:
            return
        lasted = time.monotonic() - self.down_since
        log.warning(
            "the database is available again after %.1f s (%d database calls failed meanwhile)",
            lasted,
            self._failures,
        )
        self.down_since = None
        self.back_at = time.monotonic()
        self._failures = 0

    def back_within(self, seconds: float) -> bool:
        """Whether the database is down, or came back less than ``seconds`` ago."""
        if self.down_since is not None:
            return True
        return self.back_at is not None and time.monotonic() - self.back_at < seconds


def _describe(exc: BaseException) -> str:
    """The innermost cause, in one line (no SQL, no parameters: hide_parameters keeps them
    out of SQLAlchemy's text, and the driver's own message carries none)."""
    inner: Any = exc
    # Not down to the CancelledError under a timeout: "TimeoutError" says what happened.
    while inner.__cause__ is not None and not isinstance(inner.__cause__, asyncio.CancelledError):
        inner = inner.__cause__
    text = str(inner).splitlines()[0][:300] if str(inner) else ""
    return f"{type(inner).__name__}: {text}" if text else type(inner).__name__


class RepeatedFailures:
    """A periodic task's failures (the sweeper, the heartbeat), logged once per run of the
    same failure rather than at every tick: the first in full (an outage in one line, since
    the database's watch has said why), the recovery with how many ticks failed."""

    def __init__(self, what: str, logger: logging.Logger) -> None:
        self._what = what
        self._log = logger
        self._last: tuple[type, str] | None = None
        self.failures = 0

    def failed(self, exc: Exception) -> None:
        self.failures += 1
        key = (type(exc), str(exc))
        if key == self._last:
            return
        self._last = key
        if isinstance(exc, Unavailable):
            self._log.warning("%s failed: the database is unavailable; retrying", self._what)
        else:
            self._log.error("%s failed; retrying", self._what, exc_info=exc)

    def succeeded(self) -> None:
        if self._last is None:
            return
        self._log.warning("%s works again (%d attempts failed)", self._what, self.failures)
        self._last = None
        self.failures = 0
