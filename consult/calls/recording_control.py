"""Recording by consent: starts when both participants' latest consent is yes and the call
runs, stops when a consent is withdrawn, at hang-up and when the consultation ends; the tracks
land in the recordings folder (``recordings.py``) and are composed after the call into the file
served (``composer.py``); a finished recording's file for either participant."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from consult.audit import Audit
from consult.calls import repository as repo
from consult.calls.bridge import MediaBridge
from consult.calls.composer import LONGEST_CALL, RecordingComposer
from consult.calls.recordings import RecordingStore
from consult.calls.schemas import RecordingStateOut
from consult.clock import Clock
from consult.domain import Actor
from consult.errors import Conflict, NotFound
from consult.events import Push
from consult.media.call import CallRoom
from consult.queue.service import ConsultationService
from consult.storage.uow import Database, UnitOfWork

log = logging.getLogger(__name__)

# Why a recording cannot be downloaded yet (or at all), by its status.
_NOT_READY = {
    "recording": "This recording is still being made: the call is being recorded.",
    "composing": "This recording is being prepared for playback; try again in a moment.",
    "failed": "This recording failed and cannot be downloaded.",
}


def to_both(call: Any, name: str, out: BaseModel) -> Push:
    """``out`` to both participants of ``call`` (a consultation row or a bridge's ``Call``)."""
    return Push((call.patient_id, call.doctor_id), name, out.model_dump(mode="json"))


class RecordingControl:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        audit: Audit,
        consultations: ConsultationService,
        bridge: MediaBridge,
        recordings: RecordingStore,
    ) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._consultations = consultations
        self._bridge = bridge
        self.recordings = recordings
        self.composer = RecordingComposer(db, recordings)

    async def state(self, uow: UnitOfWork, row: Any) -> RecordingStateOut:
        """Consents and the recording running, as the database has them (the owner of the call
        may be another node)."""
        consents = await repo.consents(uow, row.id)
        running = await repo.recordings_in_progress(uow, row.id)
        recording_id = running[-1].id if running else None
        return RecordingStateOut(
            consultation_id=row.id,
            patient_consent=consents.get(row.patient_id, False),
            doctor_consent=consents.get(row.doctor_id, False),
            recording=recording_id is not None,
            recording_id=recording_id,
        )

    async def maybe_start(self, consultation_id: int, room: CallRoom) -> bool:
        """Start recording if both consent and none runs; whether it started."""
        call = self._bridge.calls.get(consultation_id)
        if call is None or call.recording_id is not None or room.closed:
            return False
        async with self._db.uow() as uow:
            consents = await repo.consents(uow, consultation_id)
            if not (consents.get(call.patient_id) and consents.get(call.doctor_id)):
                return False
            stored_name = self.recordings.new_name(consultation_id)
            recording_id = await repo.add_recording(
                uow, consultation_id, stored_name, self._clock.now()
            )
            await self._audit.write(
                uow,
                None,
                "call.recording.start",
                patient_id=call.patient_id,
                consultation_id=consultation_id,
            )
            state = RecordingStateOut(
                consultation_id=consultation_id,
                patient_consent=True,
                doctor_consent=True,
                recording=True,
                recording_id=recording_id,
            )
            uow.collect(to_both(call, "call:recording", state))
            # Started once its row is written, so a failed insert leaves no recorder running;
            # a failed commit stops it (the recorder makes its folder in its own thread).
            room.start_recording(self.recordings.tracks_path(stored_name))
            try:
                await uow.commit()
            except BaseException:
                with contextlib.suppress(Exception):
                    await room.stop_recording()
                with contextlib.suppress(OSError):
                    await self.recordings.remove(stored_name)
                raise
        call.recording_id, call.stored_name = recording_id, stored_name
        log.info("call %s: recording %s started", consultation_id, recording_id)
        return True

    async def follow_consents(self, consultation_id: int, room: CallRoom | None) -> bool:
        """Record when both participants' latest consent is yes, stop when one is not; whether
        a recording started or stopped (each tells both pages itself)."""
        call = self._bridge.calls.get(consultation_id)
        if call is None:
            return False
        async with self._db.reader() as uow:
            consents = await repo.consents(uow, consultation_id)
        if consents.get(call.patient_id) and consents.get(call.doctor_id):
            return room is not None and await self.maybe_start(consultation_id, room)
        return await self.stop(consultation_id)

    async def finish_left_behind(self, consultation_id: int, order: tuple[int, int]) -> None:
        """Recordings of this call still marked ``recording`` when this node opens its room:
        a node that held the call died while recording (or this process did, before a
        restart). Each is finished as a stop would: composed when its tracks are in the
        recordings folder (shared between machines, or this machine's), failed otherwise."""
        async with self._db.reader() as uow:
            left = await repo.recordings_in_progress(uow, consultation_id)
        for recording in left:
            recorded = await self.recordings.has_tracks(recording.stored_name)
            async with self._db.uow() as uow:
                now = self._clock.now()
                finished = await repo.finish_recording(uow, recording.id, now, recorded=recorded)
                await uow.commit()
            if not finished:
                continue
            log.warning(
                "call %s: recording %s left behind by a server that stopped; %s",
                consultation_id,
                recording.id,
                "composing its tracks" if recorded else "no tracks here: failed",
            )
            if recorded:
                self.composer.start(recording.id, recording.stored_name, order, LONGEST_CALL)

    async def stop(self, consultation_id: int) -> bool:
        """Stop the running recording, if any; whether one stopped."""
        call = self._bridge.calls.get(consultation_id)
        room = self._bridge.room(consultation_id)
        if call is None or call.recording_id is None or call.stored_name is None:
            return False
        recording_id, stored_name = call.recording_id, call.stored_name
        call.recording_id = call.stored_name = None
        summary = None
        try:
            if room is not None:
                summary = await room.stop_recording()
        except Exception:
            log.exception("call %s: recording %s failed", consultation_id, recording_id)
        # The room may have finished the file itself (closed first): the file is what counts.
        recorded = await self.recordings.has_tracks(stored_name)
        async with self._db.uow() as uow:
            now = self._clock.now()
            recorded &= await repo.finish_recording(uow, recording_id, now, recorded=recorded)
            await self._audit.write(
                uow,
                None,
                "call.recording.stop",
                patient_id=call.patient_id,
                consultation_id=consultation_id,
            )
            consents = await repo.consents(uow, consultation_id)
            state = RecordingStateOut(
                consultation_id=consultation_id,
                patient_consent=consents.get(call.patient_id, False),
                doctor_consent=consents.get(call.doctor_id, False),
                recording=False,
                recording_id=None,
            )
            uow.collect(to_both(call, "call:recording", state))
            await uow.commit()
        if recorded:  # patient left, doctor right
            order = (call.patient_id, call.doctor_id)
            seconds = summary.seconds if summary is not None else LONGEST_CALL
            self.composer.start(recording_id, stored_name, order, seconds)
        log.info("call %s: recording %s finished", consultation_id, recording_id)
        return True

    async def file(self, actor: Actor, consultation_id: int, recording_id: int) -> tuple[Path, str]:
        """A finished recording's file and download name, for either participant (also after
        the consultation ended); the read is audited."""
        async with self._db.uow() as uow:
            row = await self._consultations.participant_row(
                uow, actor, consultation_id, "call.recording.read", read=True
            )
            recording = await repo.recording_row(uow, recording_id)
            if recording is None or recording.consultation_id != row.id:
                raise NotFound(f"no recording {recording_id}", code="recording_not_found")
            if recording.status != "ready":
                raise Conflict(_NOT_READY[recording.status], code="recording_not_ready")
            path = self.recordings.path(recording.stored_name)
            if not await asyncio.to_thread(path.is_file):
                raise NotFound("The recording's file is missing.", code="recording_file_missing")
            await self._audit.write(
                uow,
                actor,
                "call.recording.read",
                patient_id=row.patient_id,
                consultation_id=row.id,
                detail=f"recording {recording_id}",
            )
            await uow.commit()
        return path, f"consultation-{consultation_id}-recording-{recording_id}.webm"
