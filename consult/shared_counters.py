"""The Redis in which every process of a deployment counts its limits (chat, events, reads,
logins), so that a user reaching several processes meets one limit, not one per process.

Redis is a help here, never a dependency: when it does not answer (refused, timed out, a
script error), ``call`` raises ``Unshared`` and the caller counts in this process's memory,
as a single process always does. The outage is logged once (a WARNING of this module) and
once more when Redis answers again, not at every request; and for ``PAUSE`` seconds after a
failure Redis is left alone, so that a Redis that hangs costs a request at most ``TIMEOUT``
once per pause rather than on every event.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio
import redis.exceptions

from consult.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

# Seconds a command may take before Redis counts as unreachable: a limit is checked on every
# event, so it must not hold one up for long.
TIMEOUT = 0.5
# Seconds during which Redis is not asked again after it failed.
PAUSE = 5.0


class Unshared(Exception):
    """Redis cannot be asked now: count in this process."""


class SharedCounters:
    """Counters in the Redis at ``url``; with no ``url`` (a single process), none: every
    ``call`` raises ``Unshared``."""

    def __init__(
        self, url: str, prefix: str, *, timeout: float = TIMEOUT, pause: float = PAUSE
    ) -> None:
        self.redis = (
            redis.asyncio.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
            if url
            else None
        )
        self.prefix = prefix
        self._pause = pause
        self._paused_until = 0.0
        self._down = False

    @property
    def enabled(self) -> bool:
        return self.redis is not None

    def key(self, *parts: object) -> str:
        return ":".join([self.prefix, *(str(p) for p in parts)])

    def script(self, source: str) -> Callable[..., Awaitable[Any]]:
        """A Lua script run atomically (EVALSHA, loaded again if Redis was restarted)."""
        if self.redis is None:
            raise ValueError("no Redis is configured")
        return self.redis.register_script(source)  # type: ignore[no-any-return]

    async def call(self, command: Callable[[], Awaitable[T]]) -> T:
        """Run ``command`` (a Redis command or script call), or raise ``Unshared``."""
        if self.redis is None or (self._down and time.monotonic() < self._paused_until):
            raise Unshared()
        try:
            result = await command()
        except (redis.exceptions.RedisError, OSError) as exc:
            self._failed(exc)
            raise Unshared() from None
        if self._down:
            self._down = False
            log.warning("Redis answers again: limits are shared by every process again")
        return result

    def _failed(self, exc: BaseException) -> None:
        self._paused_until = time.monotonic() + self._pause
        if not self._down:
            self._down = True
            log.warning(
                "Redis unreachable (%s: %s): limits are counted in this process alone until "
                "it answers again",
                type(exc).__name__,
                str(exc)[:200],
            )

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()


def shared_counters(settings: Settings) -> SharedCounters:
    """The deployment's counters: in Redis when it is configured, none otherwise."""
    return SharedCounters(settings.redis_url, settings.redis_channel)
