"""Chat limits: the length of a message, and how fast one participant may send.

The rate is a token bucket per (consultation, user): a flood from one participant is refused
at once, before any database work, and every other consultation keeps its own bucket, so it
is not slowed. Buckets that have refilled are forgotten, so the memory follows the
consultations that are chatting now, not every one ever seen.

With Redis (``SharedLimiter``), every process also counts in one bucket per key in Redis, so a
participant whose sockets land on two processes meets the same limit as on one. This
process's own bucket is checked first: a flood that this process alone sees is refused
without a round trip, and when Redis is unreachable the limit is what one process allows
(consult/shared_counters.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consult.clock import Clock
from consult.errors import Invalid, LimitReached
from consult.shared_counters import SharedCounters, Unshared


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
        self.clock = clock
        self.rate = rate
        self.burst = burst
        self._what = what
        self._buckets: dict[tuple[object, ...], _Bucket] = {}
        self._calls = 0

    def take(self, *key: object) -> None:
        """Spend one of ``key``'s tokens (chat: consultation and user), or raise
        ``RateLimited`` (and spend nothing)."""
        now = self.clock.now()
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
            raise self.refusal((1 - bucket.tokens) / self.rate)
        bucket.tokens -= 1

    def give_back(self, *key: object) -> None:
        """Return the token ``take`` just spent (another count refused the event)."""
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.tokens = min(self.burst, bucket.tokens + 1)

    def refusal(self, wait: float) -> RateLimited:
        wait = math.ceil(wait * 1000) / 1000
        return RateLimited(
            f"too many {self._what}: at most {self._pace()} "
            f"(bursts of {self.burst}); try again in {wait:g} s",
            retry_after=wait,
        )

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


# One atomic step on a bucket (a hash: tokens, at): refill by the time passed since ``at``,
# then spend a token (the answer '0') or spend nothing and answer the seconds to wait. A node
# whose clock is behind the bucket's ``at`` adds nothing: refill is never counted twice.
_TAKE = """
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]), tonumber(state[2])
if tokens == nil or at == nil then tokens, at = burst, now end
if now > at then
  tokens = math.min(burst, tokens + (now - at) * rate)
  at = now
end
if tokens < 1 - 1e-9 then return string.format('%.6f', (1 - tokens) / rate) end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens - 1),
  'at', string.format('%.6f', at))
redis.call('EXPIRE', KEYS[1], ARGV[4])
return '0'
"""
# A bucket's key outlives its refill by this many seconds: a full bucket and no key are the
# same, and a key kept a little longer costs nothing.
_KEY_SLACK = 60


class SharedLimiter:
    """``limiter``'s limit counted by every process in Redis (``counters``; without Redis in
    this process only), under the keys ``<channel>:limit:<name>:<key...>``."""

    def __init__(self, limiter: RateLimiter, counters: SharedCounters, name: str) -> None:
        self.local = limiter
        self._counters = counters
        self._name = name
        self._ttl = math.ceil(limiter.burst / limiter.rate) + _KEY_SLACK
        self._take = counters.script(_TAKE) if counters.enabled else None

    async def take(self, *key: object) -> None:
        """Spend one of ``key``'s tokens here and in Redis, or raise ``RateLimited`` (and
        spend nothing)."""
        self.local.take(*key)
        if self._take is None:
            return
        bucket = self._counters.key("limit", self._name, *key)
        now = self.local.clock.now().timestamp()
        args = [self.local.rate, self.local.burst, f"{now:.6f}", self._ttl]
        take = self._take
        try:
            wait = float(await self._counters.call(lambda: take(keys=[bucket], args=args)))
        except Unshared:
            return  # this process's count stands alone meanwhile
        if wait > 0:
            self.local.give_back(*key)
            raise self.local.refusal(wait)
