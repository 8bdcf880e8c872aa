"""Login throttling: a growing delay per account and per client address, and a bound on the
password hashes that run at once.

Failures are counted per key (an account's email, a client address). The first ``free``
failures cost nothing; each one after that locks the key for ``delay``, ``2 x delay``,
``4 x delay`` ... up to ``max_delay`` seconds, counted from the failure. An attempt on a locked
key is refused at once (429 ``too_many_attempts``), runs no hash and counts nothing, so an
attacker cannot push a lock further than ``max_delay`` past their last real attempt: the right
password after the delay still logs the user in, and a success forgets the account's failures.
A key with no failure for ``forget_after`` seconds starts afresh.

An account's attempt is counted before its hash runs (and forgotten on success): a hundred
concurrent guesses at one account run at most ``free`` hashes, not a hundred. A client
address's failures are counted after the hash, so many people behind one address (an office,
a NAT) logging in at once are not refused; instead each address runs at most
``ADDRESS_HASHES`` hashes at a time, and the whole process at most ``hash_concurrency``, so a
flood from one address waits in its own line and leaves the hashing threads to everyone else.

The counters live in Redis when Redis is configured (every process sees every failure), in
this process's memory otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from consult.errors import LimitReached
from consult.settings import Settings
from consult.shared_counters import SharedCounters, Unshared

# Hashes one client address may run at once; its further attempts wait for their turn.
ADDRESS_HASHES = 2


class TooManyAttempts(LimitReached):
    """429 ``too_many_attempts``; ``retry_after`` says how many seconds to wait."""

    def __init__(self, retry_after: float, key: str = "") -> None:
        wait = math.ceil(retry_after * 1000) / 1000
        self.key = key  # the locked counter's key (which lock refused)
        super().__init__(
            f"too many failed logins; try again in {math.ceil(wait)} s",
            code="too_many_attempts",
            details={"retry_after": wait},
        )
        self.retry_after = wait

    def to_dict(self) -> dict[str, Any]:
        # At the top level too, like rate_limited: clients read error.retry_after.
        return super().to_dict() | {"retry_after": self.retry_after}


@dataclass(frozen=True)
class Policy:
    free: int
    delay: float
    max_delay: float
    forget_after: float = 15 * 60

    def lock(self, failures: int) -> float:
        """Seconds a key stays locked after its ``failures``-th failure."""
        if failures < self.free:
            return 0.0
        # The exponent is capped: a long attack's count must not overflow a float.
        return float(min(self.max_delay, self.delay * 2 ** min(failures - self.free, 60)))


class AttemptStore(Protocol):
    """Failure counters by key; times are seconds since the epoch (the service's clock)."""

    async def wait(self, key: str, now: float) -> float:
        """Seconds left of the key's lock; 0 when it is free."""
        ...

    async def fail(self, key: str, now: float, policy: Policy, *, unless_locked: bool) -> float:
        """Count one failure and lock the key by ``policy``; 0. With ``unless_locked``, a key
        locked now counts nothing and the seconds left are returned (one atomic step)."""
        ...

    async def forget(self, key: str) -> None: ...


@dataclass
class _Count:
    failures: int
    last: float
    until: float


class MemoryAttempts:
    """This process's counters. Keys idle past their policy's ``forget_after`` are dropped as
    new failures come in, so memory follows the recent failures only."""

    def __init__(self) -> None:
        self._counts: dict[str, _Count] = {}
        self._forget_after: dict[str, float] = {}
        self._calls = 0

    async def wait(self, key: str, now: float) -> float:
        count = self._counts.get(key)
        return max(0.0, count.until - now) if count else 0.0

    async def fail(self, key: str, now: float, policy: Policy, *, unless_locked: bool) -> float:
        self._calls += 1
        if self._calls % 1024 == 0:
            self._drop_idle(now)
        count = self._counts.get(key)
        if count is not None and now - count.last >= policy.forget_after:
            count = None
        if unless_locked and count is not None and count.until > now:
            return count.until - now
        failures = (count.failures if count else 0) + 1
        self._counts[key] = _Count(failures, now, now + policy.lock(failures))
        self._forget_after[key] = policy.forget_after
        return 0.0

    async def forget(self, key: str) -> None:
        self._counts.pop(key, None)
        self._forget_after.pop(key, None)

    def _drop_idle(self, now: float) -> None:
        idle = [k for k, c in self._counts.items() if now - c.last >= self._forget_after[k]]
        for key in idle:
            del self._counts[key], self._forget_after[key]


# One atomic step: refuse while locked (with unless_locked), else count a failure and lock.
_FAIL = """
local now, free, delay, cap, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
  tonumber(ARGV[4]), tonumber(ARGV[5])
local unless_locked = ARGV[6] == '1'
local until_at = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if unless_locked and until_at > now then return tostring(until_at - now) end
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local lock = 0
if failures >= free then lock = math.min(cap, delay * 2 ^ math.min(failures - free, 60)) end
redis.call('HSET', KEYS[1], 'until', tostring(now + lock))
redis.call('EXPIRE', KEYS[1], ttl)
return '0'
"""


class RedisAttempts:
    """Counters in Redis, shared by every process: a hash per key (``failures``, ``until``)
    that Redis expires ``forget_after`` seconds after its last failure, under
    ``<channel>:login:<key>``. While Redis cannot be reached, this process's own counters
    stand in (consult/shared_counters.py: logged once), so logins keep working. They count
    every failure this process saw, the shared ones too: a Redis that stops answering in the
    middle of a burst of guesses leaves them knowing the burst so far (a fresh count let 7 of
    40 concurrent guesses through where 5 are free)."""

    def __init__(self, counters: SharedCounters) -> None:
        self._counters = counters
        self._fail = counters.script(_FAIL)
        self._fallback = MemoryAttempts()

    async def wait(self, key: str, now: float) -> float:
        redis = self._counters.redis
        assert redis is not None
        name = self._counters.key("login", key)
        try:
            until = await self._counters.call(lambda: redis.hget(name, "until"))
        except Unshared:
            return await self._fallback.wait(key, now)
        return max(0.0, float(until) - now) if until else 0.0

    async def fail(self, key: str, now: float, policy: Policy, *, unless_locked: bool) -> float:
        args = [now, policy.free, policy.delay, policy.max_delay, math.ceil(policy.forget_after)]
        keys = [self._counters.key("login", key)]
        fail = self._fail
        local = await self._fallback.fail(key, now, policy, unless_locked=unless_locked)
        try:
            left = await self._counters.call(
                lambda: fail(keys=keys, args=[*args, int(unless_locked)])
            )
        except Unshared:
            return local
        return float(left)

    async def forget(self, key: str) -> None:
        redis = self._counters.redis
        assert redis is not None
        name = self._counters.key("login", key)
        await self._fallback.forget(key)
        try:
            await self._counters.call(lambda: redis.delete(name))
        except Unshared:
            pass


@dataclass
class _Gate:
    semaphore: asyncio.Semaphore
    users: int = 0


class LoginThrottle:
    """What ``AccountService.login`` asks before and after checking a password."""

    def __init__(
        self, store: AttemptStore, account: Policy, address: Policy, hash_concurrency: int
    ) -> None:
        self.store = store
        self.account = account
        self.address = address
        self._hashes = asyncio.Semaphore(hash_concurrency)
        self._by_address: dict[str, _Gate] = {}

    @staticmethod
    def account_key(email: str) -> str:
        # Hashed: the counters (in Redis, too) hold no email addresses.
        return "account:" + hashlib.sha256(email.encode()).hexdigest()

    @staticmethod
    def address_key(ip: str | None) -> str:
        return f"address:{ip or '-'}"

    @contextlib.asynccontextmanager
    async def turn(self, ip: str | None) -> AsyncIterator[None]:
        """Wait for this address's turn (at most ``ADDRESS_HASHES`` of its logins at once)."""
        key = self.address_key(ip)
        gate = self._by_address.get(key)
        if gate is None:
            gate = self._by_address[key] = _Gate(asyncio.Semaphore(ADDRESS_HASHES))
        gate.users += 1
        try:
            async with gate.semaphore:
                yield
        finally:
            gate.users -= 1
            if not gate.users:  # memory follows the logins in flight
                del self._by_address[key]

    async def admit(self, email: str, ip: str | None, now: float) -> None:
        """Raise ``TooManyAttempts`` while the address or the account is locked; otherwise
        count this attempt against the account (forgotten again by ``succeeded``)."""
        key = self.address_key(ip)
        wait = await self.store.wait(key, now)
        if wait <= 0:
            key = self.account_key(email)
            wait = await self.store.fail(key, now, self.account, unless_locked=True)
        if wait > 0:
            raise TooManyAttempts(wait, key)

    @contextlib.asynccontextmanager
    async def hashing(self) -> AsyncIterator[None]:
        """A slot among the process's ``hash_concurrency`` password hashes."""
        async with self._hashes:
            yield

    async def succeeded(self, email: str) -> None:
        await self.store.forget(self.account_key(email))

    async def failed(self, ip: str | None, now: float) -> None:
        await self.store.fail(self.address_key(ip), now, self.address, unless_locked=False)


def login_throttle(settings: Settings, counters: SharedCounters) -> LoginThrottle:
    """The throttle the settings describe: counters in Redis when Redis is configured."""
    store: AttemptStore = RedisAttempts(counters) if counters.enabled else MemoryAttempts()
    policy = Policy(settings.login_free_attempts, settings.login_delay, settings.login_max_delay)
    return LoginThrottle(
        store,
        account=policy,
        address=Policy(
            settings.login_address_free_attempts, settings.login_delay, settings.login_max_delay
        ),
        hash_concurrency=settings.password_hash_concurrency,
    )
