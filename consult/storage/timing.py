"""How long each SQL statement takes, on both backends, and a WARNING for the slow ones.

SQLAlchemy's ``before_cursor_execute`` and ``after_cursor_execute`` events bracket each
statement's execution on the driver's cursor (for asyncpg, the awaited round trip, so the time
includes the loop's other work while it waited). Commits are not cursor executions: they are
timed where they run (uow.py for PostgreSQL; group_commit.py for SQLite's group COMMIT, on its
thread). Each statement is known by a short name (:func:`statement_name`), never
by its parameters (they carry health data).
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

log = logging.getLogger(__name__)

SLOW_AFTER = 0.02  # seconds (CONSULT_SLOW_STATEMENT)
_STARTED = "consult_statement_started"
# The table a statement is about: the first one after FROM, INTO or UPDATE.
_TABLE = re.compile(r'\b(FROM|INTO|UPDATE)\s+"?([A-Za-z_][A-Za-z0-9_.]*)', re.IGNORECASE)
_COMMENTS = re.compile(r"(--[^\n]*\n|/\*.*?\*/)", re.DOTALL)

Observer = Callable[[str, float], None]


@functools.lru_cache(maxsize=2048)
def statement_name(sql: str) -> str:
    """``INSERT INTO messages``, ``SELECT … FROM consultations``, ``UPDATE tickets``; a
    statement without a table is named by its first two words (``BEGIN IMMEDIATE``)."""
    words = _COMMENTS.sub(" ", sql).split()
    if not words:
        return "(empty)"
    verb = words[0].upper()
    found = _TABLE.search(sql)
    if found is None:
        return " ".join([verb, *words[1:2]])[:60]
    keyword, table = found.group(1).upper(), found.group(2)
    if keyword == verb:  # UPDATE tickets
        return f"{verb} {table}"
    if len(words) > 1 and words[1].upper() == keyword:  # INSERT INTO, DELETE FROM
        return f"{verb} {keyword} {table}"
    return f"{verb} … {keyword} {table}"


class StatementTimer:
    """Times the statements of the engines it is attached to: each duration goes to the
    observers (the /metrics histogram); one over ``slow_after`` seconds is logged."""

    def __init__(self, slow_after: float = SLOW_AFTER) -> None:
        self.slow_after = slow_after
        self.observers: list[Observer] = []

    def attach(self, engine: sa.Engine) -> None:
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def record(self, name: str, seconds: float) -> None:
        for observe in self.observers:
            observe(name, seconds)
        if seconds > self.slow_after:
            log.warning(
                "slow statement: %s took %.0f ms (over %.0f ms)",
                name,
                seconds * 1000,
                self.slow_after * 1000,
            )

    def _before(self, conn: sa.Connection, *_args: Any) -> None:
        conn.info[_STARTED] = time.perf_counter()

    def _after(self, conn: sa.Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        started = conn.info.pop(_STARTED, None)
        if started is not None:
            self.record(statement_name(statement), time.perf_counter() - started)
