"""Retrying a unit of work that the database aborted to break a deadlock or a serialisation
conflict. PostgreSQL picks a victim when two transactions wait on each other; running the
victim again is the standard remedy (the work is all-or-nothing, and events are published only
after a commit, so nothing is told twice)."""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from sqlalchemy.exc import DBAPIError

from consult.storage.pg_errors import TRANSIENT

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")


def is_transient(exc: DBAPIError) -> bool:
    sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if sqlstate in TRANSIENT:
        return True
    # SQLite's writer lock timed out (busy_timeout): the other writer will be done shortly.
    return "database is locked" in str(exc.orig)


def retry_transient(
    attempts: int = 4,
) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Awaitable[T]]]:
    def decorate(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
        @functools.wraps(fn)
        async def run(*args: P.args, **kwargs: P.kwargs) -> T:
            for attempt in range(1, attempts + 1):
                try:
                    return await fn(*args, **kwargs)
                except DBAPIError as exc:
                    if attempt == attempts or not is_transient(exc):
                        raise
                    log.warning("%s: transient database conflict, retry %d", fn.__name__, attempt)
                    await asyncio.sleep(random.uniform(0.005, 0.03) * attempt)
            raise AssertionError("unreachable")

        return run

    return decorate
