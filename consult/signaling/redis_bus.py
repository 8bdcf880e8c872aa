"""python-socketio's Redis manager, quicker to recover and quiet while Redis is away (checked
against python-socketio 5.18's async_redis_manager.py, whose two methods these replace).

- **Subscribing.** The subscriber tries again every second. python-socketio doubles its wait
  after each failure, up to 60 s: after an outage of half a minute, pushes across processes
  stayed off for up to another half minute after Redis was back.
- **Publishing.** While Redis is away, an emit still reaches this process's own sockets (the
  manager delivers locally first) and is lost for the others'. python-socketio logged two
  ERRORs per emit (hundreds a second under load); here the first loss logs one WARNING, and
  the first publish that goes through again logs how many were lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import socketio

from consult.logs import describe

log = logging.getLogger(__name__)

RETRY = 1.0  # seconds between two attempts to subscribe again


class RedisBus(socketio.AsyncRedisManager):  # type: ignore[misc]
    connected: bool  # python-socketio's: whether self.redis is a connection worth trying

    def __init__(self, url: str, channel: str) -> None:
        super().__init__(url, channel=channel)
        self.lost = 0  # emits not published since Redis went away

    async def _publish(self, data: Any) -> None:
        problem: Exception | None = None
        for _ in range(2):  # the second attempt on a new connection
            try:
                if not self.connected:
                    self._redis_connect()
                await self.redis.publish(self.channel, self.json.dumps(data))
            except Exception as exc:  # refused, reset, timed out: Redis is away
                problem = exc
                self.connected = False
                continue
            if self.lost:
                log.info("Redis is back: %d pushes to other processes were lost", self.lost)
                self.lost = 0
            return
        if not self.lost:
            log.warning(
                "Redis unreachable (%s): pushes to other processes' sockets are lost until it "
                "is back",
                describe(problem) if problem else "?",
            )
        self.lost += 1

    async def _redis_listen_with_retries(self) -> AsyncIterator[Any]:
        away = False
        while True:
            try:
                self._redis_connect()
                await self.pubsub.subscribe(self.channel)
                if away:
                    log.info("subscribed to Redis again: pushes from other processes resume")
                    away = False
                async for message in self.pubsub.listen():
                    yield message
            except Exception as exc:
                if not away:
                    log.warning(
                        "lost the Redis subscription (%s); trying again every %g s",
                        describe(exc),
                        RETRY,
                    )
                away = True
                await asyncio.sleep(RETRY)
