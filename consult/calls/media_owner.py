"""What the owner of a call's media does with it: the steps that touch its room.

The node that holds a call's room (``leases.py``) runs these, whether the page's event reached
it or another node forwarded the step (``media_router.py``). The node that took the event has
checked who asks, written what changed and committed; each step here then runs under this
node's lock for the consultation and reads what it follows (the consultation, its form, the
consents) from the database at that moment. Steps forwarded from several nodes may arrive in
any order: the room ends up as the last committed state says (an offer that read "video" just
before a hang-up committed on another node opens the room; the hang-up's step, run after it
here, reads "chat" and closes it).
"""

from __future__ import annotations

import asyncio
import logging

from consult.calls import repository as repo
from consult.calls.bridge import MediaBridge
from consult.calls.forms import has_call
from consult.calls.recording_control import RecordingControl
from consult.domain import ConsultationStatus
from consult.errors import Conflict, NotFound
from consult.media.offers import parse_offer
from consult.storage.uow import Database

log = logging.getLogger(__name__)


class CallMedia:
    def __init__(self, db: Database, bridge: MediaBridge, recording: RecordingControl) -> None:
        self._db = db
        self._bridge = bridge
        self._recording = recording
        self._locks: dict[int, asyncio.Lock] = {}

    async def answer(self, consultation_id: int, user_id: int, sdp: str) -> tuple[str, str]:
        """The room's answer (sdp, type) to a participant's offer; the room opened if there
        is none (a recording left behind by a node that died finished first)."""
        async with self._lock(consultation_id):
            async with self._db.reader() as uow:
                facts = await repo.call_facts(uow, consultation_id)
            if facts is None or facts[0].status != ConsultationStatus.ACTIVE:
                raise Conflict("The consultation is not active.", code="consultation_not_active")
            row, form = facts
            if not has_call(form):
                raise NotFound(
                    "This consultation has no call now: switch to voice or video first.",
                    code="media_no_call",
                )
            offer = parse_offer(sdp, "offer")
            if consultation_id not in self._bridge.calls:
                order = (row.patient_id, row.doctor_id)
                await self._recording.finish_left_behind(consultation_id, order)
            answer, room = await self._bridge.answer(
                consultation_id, row.patient_id, row.doctor_id, user_id, offer, form
            )
            await self._recording.maybe_start(consultation_id, room)
        return answer.sdp, answer.type

    async def follow(self, consultation_id: int) -> None:
        """The form changed: relay what it allows from now on; close the room in a chat."""
        async with self._lock(consultation_id):
            if consultation_id not in self._bridge.calls:
                return
            async with self._db.reader() as uow:
                facts = await repo.call_facts(uow, consultation_id)
            if facts is None or facts[0].status != ConsultationStatus.ACTIVE:
                await self._end(consultation_id)
                return
            self._bridge.follow_form(consultation_id, facts[1])
            if not has_call(facts[1]):
                await self._end(consultation_id)

    async def consents(self, consultation_id: int) -> bool:
        """A consent changed: record or stop; whether a recording started or stopped."""
        async with self._lock(consultation_id):
            room = self._bridge.room(consultation_id)
            return await self._recording.follow_consents(consultation_id, room)

    async def end(self, consultation_id: int, *, silent: bool = False) -> None:
        """The consultation ended (or the call moved, or this node stops: ``silent``, the pages
        are not told): finish the recording, close the room."""
        async with self._lock(consultation_id):
            await self._end(consultation_id, silent=silent)
        self._locks.pop(consultation_id, None)

    async def reconcile(self) -> list[int]:
        """Follow the database where a room here differs from it (ended, or another form): a
        step told after its commit may have been lost on the way (the owner did not answer in
        time). The calls that were followed."""
        held = self.held()
        async with self._db.reader() as uow:
            facts = await repo.calls_facts(uow, held)
        stale = [
            cid
            for cid in held
            if cid not in facts
            or facts[cid][0] != ConsultationStatus.ACTIVE
            or (cid in self._bridge.calls and facts[cid][1] != self._bridge.calls[cid].form)
        ]
        for consultation_id in stale:
            log.warning(
                "call %s: its room differed from the database; following it", consultation_id
            )
            await self.follow(consultation_id)
        return stale

    def held(self) -> list[int]:
        """The calls whose room is here."""
        return list(self._bridge.calls)

    def _lock(self, consultation_id: int) -> asyncio.Lock:
        return self._locks.setdefault(consultation_id, asyncio.Lock())

    async def _end(self, consultation_id: int, *, silent: bool = False) -> None:
        await self._recording.stop(consultation_id)
        await self._bridge.close_room(consultation_id, silent=silent)
