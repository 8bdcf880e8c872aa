"""Which node holds each call's media: its owner, recorded with a lease.

aiortc peers live in one process, so every media step of a call (answering an offer, following a
form switch, starting and stopping its recording, closing it) must run where its room is. The
owner is recorded in Redis, ``<CONSULT_REDIS_CHANNEL>:call:<consultation id>:owner`` = the
node's id, with a time to live of ``CONSULT_CALL_LEASE`` seconds that the owner renews every
third of it for each call it holds:

- the first offer of a call claims it for the node it reaches (:meth:`RedisLeases.claim`);
  later offers find the owner and are forwarded there;
- a killed owner renews nothing: its leases lapse within ``CONSULT_CALL_LEASE`` seconds, and
  the next offer claims the call for the node it reaches. A request to an owner whose process is
  gone (nobody listens on its channel) takes over at once instead (:meth:`take_over`);
- an owner that finds another node's id on a call it holds (it was frozen past its lease and
  the call moved meanwhile) drops its room without a word to the pages (``on_lost``); a key
  found missing (Redis restarted) is written again.

Redis rather than PostgreSQL: a lease is a key that lapses by itself (no sweeper, no clock
shared between nodes), renewing one is a round trip without a transaction, and forwarding needs
Redis anyway. Nothing clinical is in it: a lost key costs at most a call re-established on
another node. With one process (no Redis), :class:`LocalLeases` says "here" for every call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Protocol

import redis.asyncio
import redis.exceptions

from consult.calls.node_link import owner_unavailable

log = logging.getLogger(__name__)

# Claim: free, or ours already -> ours (renewed); else the owner's id.
_CLAIM = """
local owner = redis.call('GET', KEYS[1])
if (not owner) or owner == ARGV[1] or owner == ARGV[3] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ARGV[1]
end
return owner
"""
# Renew every key still ours (or gone: written again); the indexes of those another node holds.
_RENEW = """
local lost = {}
for i, key in ipairs(KEYS) do
  local owner = redis.call('GET', key)
  if (not owner) or owner == ARGV[1] then
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
  else
    lost[#lost + 1] = i
  end
end
return lost
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"""


class Leases(Protocol):
    node: str

    async def claim(self, consultation_id: int) -> str: ...
    async def take_over(self, consultation_id: int, gone: str) -> str: ...
    async def owner(self, consultation_id: int) -> str | None: ...
    async def release(self, consultation_id: int) -> None: ...
    def start(self, on_lost: Callable[[int], None]) -> None: ...
    async def close(self) -> None: ...


class LocalLeases:
    """One process: every call is this process's."""

    node = "local"

    async def claim(self, consultation_id: int) -> str:
        return self.node

    async def take_over(self, consultation_id: int, gone: str) -> str:
        return self.node

    async def owner(self, consultation_id: int) -> str | None:
        return self.node

    async def release(self, consultation_id: int) -> None:
        return None

    def start(self, on_lost: Callable[[int], None]) -> None:
        return None

    async def close(self) -> None:
        return None


class RedisLeases:
    def __init__(self, url: str, prefix: str, node: str, *, lease: float) -> None:
        self.node = node
        self._redis = redis.asyncio.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._prefix = prefix
        self._lease_ms = int(lease * 1000)
        self._claim = self._redis.register_script(_CLAIM)
        self._renew = self._redis.register_script(_RENEW)
        self._release = self._redis.register_script(_RELEASE)
        self.held: set[int] = set()
        self._task: asyncio.Task[None] | None = None
        self._on_lost: Callable[[int], None] = lambda _cid: None

    def _key(self, consultation_id: int) -> str:
        return f"{self._prefix}call:{consultation_id}:owner"

    async def claim(self, consultation_id: int) -> str:
        """The call's owner once this node asked for it: this node if the call had none (or
        was this node's), the live owner otherwise."""
        return await self._set(consultation_id, "")

    async def take_over(self, consultation_id: int, gone: str) -> str:
        """Claim the call from ``gone``, a node known to be dead (or from nobody)."""
        return await self._set(consultation_id, gone)

    async def owner(self, consultation_id: int) -> str | None:
        try:
            value = await self._redis.get(self._key(consultation_id))
        except (redis.exceptions.RedisError, OSError) as exc:
            raise _unreachable(exc) from exc
        return None if value is None else _text(value)

    async def release(self, consultation_id: int) -> None:
        """The call's room closed here: another node may claim it at once."""
        self.held.discard(consultation_id)
        try:
            await self._release(keys=[self._key(consultation_id)], args=[self.node])
        except (redis.exceptions.RedisError, OSError) as exc:
            log.warning("calls: call %s's lease not released (%r); it lapses", consultation_id, exc)

    def start(self, on_lost: Callable[[int], None]) -> None:
        self._on_lost = on_lost
        self._task = asyncio.get_running_loop().create_task(self._renewing())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._redis.aclose()

    async def renew(self) -> list[int]:
        """Renew every lease held; the calls another node holds now (forgotten here)."""
        held = sorted(self.held)
        if not held:
            return []
        keys = [self._key(cid) for cid in held]
        found = await self._renew(keys=keys, args=[self.node, self._lease_ms])
        lost = [held[int(i) - 1] for i in found]
        self.held.difference_update(lost)
        return lost

    async def _set(self, consultation_id: int, gone: str) -> str:
        try:
            owner = await self._claim(
                keys=[self._key(consultation_id)], args=[self.node, self._lease_ms, gone]
            )
        except (redis.exceptions.RedisError, OSError) as exc:
            raise _unreachable(exc) from exc
        owner = _text(owner)
        if owner == self.node:
            self.held.add(consultation_id)
        return owner

    async def _renewing(self) -> None:
        broken = False
        while True:
            await asyncio.sleep(self._lease_ms / 3000)
            try:
                lost = await self.renew()
            except (redis.exceptions.RedisError, OSError) as exc:
                if not broken:  # the rooms go on; their leases are written again once it is back
                    log.warning("calls: leases not renewed, Redis unreachable (%r)", exc)
                broken = True
                continue
            broken = False
            for cid in lost:
                log.warning("calls: call %s moved to another node; its room here closes", cid)
                self._on_lost(cid)


def _unreachable(exc: BaseException) -> Exception:
    log.warning("calls: Redis unreachable for a call's owner: %r", exc)
    return owner_unavailable()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
