"""Chat limits: the length of a message, and how fast one participant may send.

The rate is a token bucket per (consultation, user), kept in this process's memory: a flood
from one participant is refused at once, before any database work, and every other
consultation keeps its own bucket, so it is not slowed. With several processes each holds its
own buckets; a participant whose sockets land on two processes (sticky sessions normally
prevent it) could send up to twice the rate. Buckets that have refilled are forgotten, so the
memory follows the consultations that are chatting now, not every one ever seen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consult.clock import Clock
from consult.errors import Invalid, LimitReached


class RateLimited(LimitReached):
    """429 ``rate_limited``; the body says how many seconds to wait (``retry_after``)."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, code="rate_limited", details={"retry_after": retry_after})
        self.retry_after = retry_after

    def to_dict(self) -> dict[str, Any]:
        # Also at the top level: clients read error.retry_after without digging into details.
        return super().to_dict() | {"retry_after": self.retry_after}


def check_length(body: str, max_length: int) -> None:
    if len(body) > max_length:
        raise Invalid(
            f"a message may have at most {max_length} characters; this one has {len(body)}",
            code="message_too_long",
            details={"max_length": max_length, "length": len(body)},
        )


@dataclass
class _Bucket:
    tokens: float
    at: datetime


class RateLimiter:
    """``rate`` events per second per key, with bursts of up to ``burst``."""

    def __init__(self, clock: Clock, rate: float, burst: int, *, what: str = "messages") -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a rate limit needs rate > 0 and burst >= 1")
        self._clock = clock
        self.rate = rate
        self.burst = burst
        self._what = what
        self._buckets: dict[tuple[object, ...], _Bucket] = {}
        self._calls = 0

    def take(self, *key: object) -> None:
        """Spend one of ``key``'s tokens (chat: consultation and user), or raise
        ``RateLimited`` (and spend nothing)."""
        now = self._clock.now()
        self._calls += 1
        if self._calls % 1024 == 0:
            self._forget_full(now)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        else:
            # Elapsed from datetimes, not float timestamps (exact to the microsecond); a clock
            # set back (tests, NTP) must not drain the bucket: elapsed is never negative.
            elapsed = max(0.0, (now - bucket.at).total_seconds())
            bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.rate)
            bucket.at = now
        if bucket.tokens < 1 - 1e-9:  # float refill must not refuse a token just earned
            wait = math.ceil((1 - bucket.tokens) / self.rate * 1000) / 1000
            raise RateLimited(
                f"too many {self._what}: at most {self._pace()} "
                f"(bursts of {self.burst}); try again in {wait:g} s",
                retry_after=wait,
            )
        bucket.tokens -= 1

    def _pace(self) -> str:
        if self.rate >= 1:
            return f"{self.rate:g} a second"
        if self.rate * 60 >= 1:
            return f"{self.rate * 60:g} a minute"
        return f"{self.rate * 3600:g} an hour"

    def _forget_full(self, now: datetime) -> None:
        refill = self.burst / self.rate
        idle = [k for k, b in self._buckets.items() if (now - b.at).total_seconds() >= refill]
        for key in idle:
            del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)
