"""Socket.IO for calls: the ``call:*`` client events, and what the server pushes by itself.

The client events are thin adapters over :class:`~consult.calls.service.CallService`; the
namespace registers them (``call_events``). Pushed without a client event:

- ``call:state`` to both participants when a participant's media connection changes
  (connecting, connected, reconnecting, closed), from the media rooms' state changes;
- ``call:quality`` to the doctor only, every ``interval`` seconds while a call runs: both
  legs' round-trip time, loss, bitrate and frame rate as the server measures them.

Form switches and recording changes are domain events (committed), sent by the notifier.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import socketio

from consult.calls.bridge import MediaState
from consult.calls.schemas import CallIn, FormAnswerIn, FormIn, OfferIn, RecordConsentIn
from consult.calls.service import CallService
from consult.domain import Actor
from consult.signaling.payloads import validate_payload
from consult.signaling.server import user_room

log = logging.getLogger(__name__)

Handler = Callable[[Actor, Any], Awaitable[Any]]


def call_events(calls: CallService) -> dict[str, Handler]:
    """The ``call:*`` client events, for the namespace's event table."""

    async def config(actor: Actor, payload: Any) -> Any:
        body = validate_payload(CallIn, payload)
        return await calls.state(actor, body.consultation_id)

    async def offer(actor: Actor, payload: Any) -> Any:
        body = validate_payload(OfferIn, payload)
        return await calls.offer(actor, body.consultation_id, body.sdp, body.type)

    async def hangup(actor: Actor, payload: Any) -> Any:
        body = validate_payload(CallIn, payload)
        return await calls.hangup(actor, body.consultation_id)

    async def form(actor: Actor, payload: Any) -> Any:
        body = validate_payload(FormIn, payload)
        return await calls.request_form(actor, body.consultation_id, body.form)

    async def form_answer(actor: Actor, payload: Any) -> Any:
        body = validate_payload(FormAnswerIn, payload)
        return await calls.answer_form(actor, body.consultation_id, body.accept)

    async def record_consent(actor: Actor, payload: Any) -> Any:
        body = validate_payload(RecordConsentIn, payload)
        return await calls.record_consent(actor, body.consultation_id, body.consent)

    return {
        "call:config": config,
        "call:offer": offer,
        "call:hangup": hangup,
        "call:form": form,
        "call:form-answer": form_answer,
        "call:record-consent": record_consent,
    }


class CallPush:
    """Pushes ``call:state`` and (to the doctor) ``call:quality``."""

    def __init__(self, sio: socketio.AsyncServer, calls: CallService, *, interval: float) -> None:
        self._sio = sio
        self._calls = calls
        self._interval = interval
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        calls.listeners.append(self._media_state)

    def _media_state(self, update: MediaState) -> None:
        # Called from the media rooms' callbacks (not a coroutine): the emit is a task.
        payload = {
            "consultation_id": update.consultation_id,
            "user_id": update.user_id,
            "state": update.state,
        }
        rooms = [user_room(update.patient_id), user_room(update.doctor_id)]
        task = asyncio.get_running_loop().create_task(
            self._sio.emit("call:state", payload, to=rooms)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def start(self) -> None:
        if self._interval > 0 and self._loop_task is None:
            self._loop_task = asyncio.get_running_loop().create_task(self._quality_loop())

    async def _quality_loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            for consultation_id, doctor_id in self._calls.running():
                try:
                    quality = await self._calls.quality(consultation_id)
                    if quality is not None:
                        await self._sio.emit("call:quality", quality, to=user_room(doctor_id))
                except Exception:
                    log.exception("call %s: quality push failed", consultation_id)

    async def close(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        for task in list(self._tasks):
            with contextlib.suppress(Exception):
                await task
