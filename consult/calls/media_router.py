"""Each media step of a call on the node that owns it: here, or forwarded there.

With one process every call is this process's (``LocalLeases``) and each step is a method
call. With Redis, the owner is looked up (``leases.py``) and a step for a call owned elsewhere
is a request to that node (``node_link.py``), answered by its :meth:`MediaRouter.serve`:

- an offer claims the call when nobody holds it; owned by a node whose process is gone (no one
  listens on its channel), it is taken over at once and answered here; an owner that does not
  answer in time: ``call_owner_unavailable`` (the page tries again; the lease lapses meanwhile
  if the owner is dead);
- a form switch, a consent and the consultation's end are told to the owner after their commit;
  when the owner cannot be reached they are logged, not failed (what they changed is committed;
  the room follows the database at its next step, and a dead owner's room is gone anyway).

A node whose room closed releases the call's lease, so that the next offer, wherever it lands,
starts the call afresh there.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from consult.calls.leases import Leases
from consult.calls.media_owner import CallMedia
from consult.calls.node_link import NodeGone, NodeLink, owner_unavailable
from consult.errors import ConsultError
from consult.storage.outage import RepeatedFailures

log = logging.getLogger(__name__)


class MediaRouter:
    def __init__(
        self,
        media: CallMedia,
        leases: Leases,
        link: NodeLink | None = None,
        *,
        reconcile_every: float = 0.0,
    ) -> None:
        """``reconcile_every``: seconds between two checks of this node's rooms against the
        database (0: none; with one process no step can be lost on the way)."""
        self.media = media
        self.leases = leases
        self.link = link
        self._reconcile_every = reconcile_every
        self._reconciling: asyncio.Task[None] | None = None
        self._dropping: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Listen for other nodes' requests, then keep this node's leases."""
        if self.link is not None:
            await self.link.start()
        self.leases.start(self._lost)
        if self._reconcile_every > 0:
            self._reconciling = asyncio.get_running_loop().create_task(self._reconcile())

    async def close(self) -> None:
        """Shutdown: every room here closes without a word to the pages (their next offer
        re-establishes the call on a live node), and its lease is released."""
        if self._reconciling is not None:
            self._reconciling.cancel()
            await asyncio.gather(self._reconciling, return_exceptions=True)
        for task in list(self._dropping):
            await asyncio.gather(task, return_exceptions=True)
        for consultation_id in self.media.held():
            try:
                await self.media.end(consultation_id, silent=True)
            except Exception:
                log.exception("call %s: closing its room failed", consultation_id)
            await self.leases.release(consultation_id)
        if self.link is not None:
            await self.link.close()
        await self.leases.close()

    # --- the steps ------------------------------------------------------------------------------

    async def answer(self, consultation_id: int, user_id: int, sdp: str) -> tuple[str, str]:
        body = {"consultation_id": consultation_id, "user_id": user_id, "sdp": sdp}
        owner = await self.leases.claim(consultation_id)
        for _ in range(2):
            if owner == self.leases.node:
                return await self._answer_here(consultation_id, user_id, sdp)
            try:
                data = await self._forward(owner, "answer", body)
            except NodeGone:
                log.warning("call %s: node %s is gone; taking it over", consultation_id, owner)
                owner = await self.leases.take_over(consultation_id, owner)
                continue
            return str(data["sdp"]), str(data["type"])
        raise owner_unavailable()  # taken over by yet another node meanwhile: the page retries

    async def follow(self, consultation_id: int) -> None:
        await self._tell(consultation_id, "follow")

    async def consents(self, consultation_id: int) -> bool:
        return bool(await self._tell(consultation_id, "consents"))

    async def end(self, consultation_id: int) -> None:
        await self._tell(consultation_id, "end")

    # --- another node's request -----------------------------------------------------------------

    async def serve(self, op: str, body: dict[str, Any]) -> dict[str, Any]:
        consultation_id = int(body["consultation_id"])
        if op == "answer":
            # Claimed again: a node whose lease another took over meanwhile does not answer.
            if await self.leases.claim(consultation_id) != self.leases.node:
                raise owner_unavailable()
            sdp, type_ = await self._answer_here(consultation_id, int(body["user_id"]), body["sdp"])
            return {"sdp": sdp, "type": type_}
        return {"result": await self._here(consultation_id, op)}

    # --- internals ------------------------------------------------------------------------------

    async def _answer_here(self, consultation_id: int, user_id: int, sdp: str) -> tuple[str, str]:
        try:
            return await self.media.answer(consultation_id, user_id, sdp)
        finally:
            await self._release_if_closed(consultation_id)

    async def _here(self, consultation_id: int, op: str) -> bool:
        result = False
        if op == "follow":
            await self.media.follow(consultation_id)
        elif op == "consents":
            result = await self.media.consents(consultation_id)
        elif op == "end":
            await self.media.end(consultation_id)
        else:
            raise ValueError(f"unknown call step {op!r}")
        await self._release_if_closed(consultation_id)
        return result

    async def _tell(self, consultation_id: int, op: str) -> bool:
        """``op`` on the call's owner, if it has one; what it returned (False when none)."""
        try:
            owner = await self.leases.owner(consultation_id)
            if owner is None:
                return False  # no node holds a room for it
            if owner == self.leases.node:
                return await self._here(consultation_id, op)
            data = await self._forward(owner, op, {"consultation_id": consultation_id})
            return bool(data["result"])
        except (NodeGone, ConsultError) as exc:
            log.warning("call %s: %s not told to its owner: %r", consultation_id, op, exc)
            return False

    async def _forward(self, owner: str, op: str, body: dict[str, Any]) -> dict[str, Any]:
        if self.link is None:  # one process: cannot happen (LocalLeases), but say so plainly
            raise owner_unavailable()
        return await self.link.request(owner, op, body)

    async def _release_if_closed(self, consultation_id: int) -> None:
        if consultation_id not in self.media.held():
            await self.leases.release(consultation_id)

    async def _reconcile(self) -> None:
        # A database outage fails every tick: logged once, and its end (storage/outage.py).
        failures = RepeatedFailures("calls: checking this node's rooms against the database", log)
        while True:
            await asyncio.sleep(self._reconcile_every)
            try:
                for consultation_id in await self.media.reconcile():
                    await self._release_if_closed(consultation_id)
            except Exception as exc:
                failures.failed(exc)
            else:
                failures.succeeded()

    def _lost(self, consultation_id: int) -> None:
        """Another node holds the call now: drop the room here, without a word to the pages."""
        task = asyncio.get_running_loop().create_task(self.media.end(consultation_id, silent=True))
        self._dropping.add(task)
        task.add_done_callback(self._dropping.discard)
