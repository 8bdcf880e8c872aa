"""Requests from one node to another and their replies, over Redis pub/sub.

Each node listens on a channel of its own, ``<CONSULT_REDIS_CHANNEL>:node:<node id>``; a
request names its operation, its body and the node to reply to, and the reply goes to that
node's channel with the request's id. The caller waits ``timeout`` seconds:

- nobody listens on the target's channel (PUBLISH reached no subscriber: the node's process is
  gone, its connection to Redis closed with it): :class:`NodeGone` at once;
- the node is there but does not reply in time (frozen, overloaded, cut off from the caller):
  ``Unavailable`` with the code ``call_owner_unavailable``;
- the node replied with an error (a ``ConsultError`` it raised): the same error, raised here.

Requests are not retried: the caller decides (``media_router.py``). A request and its reply
are JSON; Redis is inside the deployment, so its messages are trusted like the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio
import redis.exceptions

from consult.errors import BY_STATUS, ConsultError, Unavailable

log = logging.getLogger(__name__)

Handler = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


class NodeGone(Exception):
    """Nobody listens on the node's channel: its process is gone."""


def owner_unavailable() -> Unavailable:
    return Unavailable(
        "The server that holds this call's media did not answer; try again in a few seconds.",
        code="call_owner_unavailable",
    )


def _error_body(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, ConsultError):
        return {"status": exc.status, **exc.to_dict()}
    return {"status": 500, "code": "internal", "message": "The call's server failed."}


def _error(body: dict[str, Any]) -> ConsultError:
    cls = BY_STATUS.get(int(body.get("status", 500)), ConsultError)
    return cls(str(body["message"]), code=str(body["code"]), details=body.get("details"))


class NodeLink:
    def __init__(
        self, url: str, prefix: str, node: str, handler: Handler, *, timeout: float
    ) -> None:
        self.node = node
        self._redis = redis.asyncio.from_url(url, socket_connect_timeout=2)
        self._prefix = prefix
        self._handler = handler
        self._timeout = timeout
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._listener: asyncio.Task[None] | None = None
        self._pubsub: Any = None

    def channel(self, node: str) -> str:
        return f"{self._prefix}node:{node}"

    async def start(self) -> None:
        """Listen on this node's channel (subscribed before this returns: a node announces
        itself as a call's owner only once requests can reach it)."""
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await self._pubsub.subscribe(self.channel(self.node))
        self._listener = asyncio.get_running_loop().create_task(self._listen(self._pubsub))

    async def request(self, node: str, op: str, body: dict[str, Any]) -> dict[str, Any]:
        """``op`` run by ``node``; its reply's data (or its error, raised here)."""
        rid = uuid.uuid4().hex
        reply = asyncio.get_running_loop().create_future()
        self._waiting[rid] = reply
        message = {"kind": "request", "id": rid, "from": self.node, "op": op, "body": body}
        try:
            try:
                heard = await self._redis.publish(self.channel(node), json.dumps(message))
            except (redis.exceptions.RedisError, OSError) as exc:
                log.warning("calls: Redis unreachable for a request to node %s: %r", node, exc)
                raise owner_unavailable() from exc
            if not heard:
                raise NodeGone(node)
            try:
                answer = await asyncio.wait_for(reply, self._timeout)
            except TimeoutError:
                log.warning("calls: node %s did not answer %s in %.1f s", node, op, self._timeout)
                raise owner_unavailable() from None
        finally:
            self._waiting.pop(rid, None)
        if "error" in answer:
            raise _error(answer["error"])
        data: dict[str, Any] = answer["data"]
        return data

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        for task in list(self._tasks):
            with contextlib.suppress(Exception):
                await task
        if self._pubsub is not None:
            with contextlib.suppress(redis.exceptions.RedisError, OSError):
                await self._pubsub.aclose()
        await self._redis.aclose()

    async def _listen(self, pubsub: Any) -> None:
        """Read this node's channel until closed; Redis going away is waited out (the client
        reconnects and subscribes again)."""
        broken = False
        while True:
            try:
                message = await pubsub.get_message(timeout=1.0)
            except (redis.exceptions.RedisError, OSError) as exc:
                if not broken:
                    log.warning("calls: this node's channel is unreachable (%r); retrying", exc)
                broken = True
                await asyncio.sleep(0.5)
                continue
            if broken:
                log.info("calls: this node's channel is back")
                broken = False
            if message is not None and message.get("type") == "message":
                self._received(message["data"])

    def _received(self, raw: bytes) -> None:
        try:
            message = json.loads(raw)
            kind = message["kind"]
        except (ValueError, KeyError, TypeError):
            log.warning("calls: an unreadable message on this node's channel was ignored")
            return
        if kind == "reply":
            waiting = self._waiting.get(str(message.get("id")))
            if waiting is not None and not waiting.done():
                waiting.set_result(message)
        elif kind == "request":
            task = asyncio.get_running_loop().create_task(self._serve(message))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _serve(self, message: dict[str, Any]) -> None:
        reply: dict[str, Any] = {"kind": "reply", "id": message["id"]}
        try:
            reply["data"] = await self._handler(str(message["op"]), message["body"])
        except Exception as exc:
            if not isinstance(exc, ConsultError):
                log.exception("calls: %s from node %s failed", message["op"], message["from"])
            reply["error"] = _error_body(exc)
        try:
            await self._redis.publish(self.channel(str(message["from"])), json.dumps(reply))
        except (redis.exceptions.RedisError, OSError) as exc:
            log.warning("calls: a reply to node %s was lost: %r", message["from"], exc)
