"""Calls in a consultation, on top of the media relay (``consult.media``).

- Only the two participants of an ACTIVE consultation take part, checked on the consultation's
  row (``ConsultationService.participant_row``, which audits a refusal) for every action.
- A consultation has a call (a media room) exactly while its form is voice or video. Hanging up
  is switching to chat: the room closes, and an offer afterwards is refused (``media_no_call``)
  before anything is created.
- Switching the form up to video waits for the other side's consent; any other switch is made
  at once. The media follow the form, not the clients: the room relays only the kinds the form
  allows (``media_kinds``), set on every offer and at the moment of each switch. Every switch
  is a stretch in ``consultation_forms`` (the forms-used timeline).
- Recording starts only when both participants' latest consent (``recording_consents``) is yes
  and the call runs; it stops when a consent is withdrawn, at hang-up and when the consultation
  ends. The tracks land in the recordings folder and are composed after the call into the file
  served (composer.py); the row has its size and checksum once composed.

Media rooms, pending switch requests and running recordings live in this process (aiortc peers
cannot move between processes); the timeline, consents and recordings are in the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from consult.audit import Audit
from consult.calls import repository as repo
from consult.calls.composer import LONGEST_CALL, RecordingComposer
from consult.calls.forms import (
    PendingSwitches,
    SwitchRequest,
    has_call,
    media_kinds,
    needs_consent,
)
from consult.calls.recordings import RecordingStore
from consult.calls.schemas import (
    AnswerOut,
    CallStateOut,
    FormChangeOut,
    FormRequestOut,
    RecordingStateOut,
)
from consult.clock import Clock
from consult.domain import Actor, ConsultationStatus, Form
from consult.errors import Conflict, NotFound
from consult.events import ConsultationEnded, ConsultationInterrupted, Event, Push
from consult.media.call import CallEvent, CallRegistry, CallRoom
from consult.media.ice import IceConfig
from consult.media.offers import parse_offer
from consult.queue.service import ConsultationService
from consult.storage.uow import Database, UnitOfWork

log = logging.getLogger(__name__)

# The server peer's connectionState (and "left": its peer was dropped), as the pages show it.
# A leg that failed or left while the call goes on is being rejoined (ICE restart, new peer).
_SHOWN = {"new": "connecting", "connecting": "connecting", "connected": "connected"}


def shown_state(previous: str | None, media_state: str, ending: bool) -> str:
    """What the pages see of a leg's media state, given what they were shown last.

    A rejoining leg stays "reconnecting" until its new peer connects (its "connecting" is part
    of the rejoin), and a call being closed shows "closed" whatever its peers report.
    """
    if ending:
        return "closed"
    state = _SHOWN.get(media_state, "reconnecting")
    if state == "connecting" and previous == "reconnecting":
        return "reconnecting"
    return state


# Why a recording cannot be downloaded yet (or at all), by its status.
_NOT_READY = {
    "recording": "This recording is still being made: the call is being recorded.",
    "composing": "This recording is being prepared for playback; try again in a moment.",
    "failed": "This recording failed and cannot be downloaded.",
}


@dataclass(frozen=True)
class MediaState:
    """A participant's media connection changed: told to both participants."""

    consultation_id: int
    patient_id: int
    doctor_id: int
    user_id: int
    state: str  # connecting, connected, reconnecting, closed


@dataclass
class _Call:
    patient_id: int
    doctor_id: int
    recording_id: int | None = None
    stored_name: str | None = None
    # Being closed: its peers' last state changes still reach the pages, as "closed".
    ending: bool = False
    # The state each participant's leg was last shown as: one call:state per change.
    shown: dict[int, str] = field(default_factory=dict)


class CallService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        audit: Audit,
        consultations: ConsultationService,
        *,
        ice: IceConfig,
        recordings: RecordingStore,
    ) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._consultations = consultations
        self.ice = ice
        self.recordings = recordings
        self.composer = RecordingComposer(db, recordings)
        self.registry = CallRegistry(ice, on_event=self._on_media)
        self._switches = PendingSwitches()
        self._calls: dict[int, _Call] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self.listeners: list[Callable[[MediaState], None]] = []

    # --- what the pages call ------------------------------------------------------------------

    async def state(self, actor: Actor, consultation_id: int) -> CallStateOut:
        """The form now, the ICE servers for this user (TURN credentials valid turn_ttl s), a
        pending switch request and the recording state."""
        async with self._db.uow() as uow:
            row = await self._active_row(uow, actor, consultation_id, "call.read")
            form = await repo.current_form(uow, row)
            recording = await self._recording_state(uow, row)
            await self._audit.write(
                uow, actor, "call.read", patient_id=row.patient_id, consultation_id=row.id
            )
            await uow.commit()
        pending = self._switches.get(consultation_id)
        return CallStateOut(
            consultation_id=consultation_id,
            form=form,
            ice_servers=[
                s.to_dict()
                for s in self.ice.servers_for(str(actor.user_id), self._clock.now().timestamp())
            ],
            pending=_request_out(pending) if pending else None,
            recording=recording,
        )

    async def offer(self, actor: Actor, consultation_id: int, sdp: str, type_: str) -> AnswerOut:
        """Answer the page's offer: joining the call, renegotiating (voice <-> video) or
        rejoining after a network drop (new ICE credentials or a new peer)."""
        async with self._lock(consultation_id):
            async with self._db.uow() as uow:
                # Who asks comes first: a stranger learns nothing, not even whether the SDP is
                # good. A malformed offer is refused before any room exists.
                row = await self._active_row(uow, actor, consultation_id, "call.join")
                offer = parse_offer(sdp, type_)
                form = await repo.current_form(uow, row)
                if not has_call(form):
                    raise NotFound(
                        "This consultation has no call now: switch to voice or video first.",
                        code="media_no_call",
                    )
                await self._audit.write(
                    uow, actor, "call.join", patient_id=row.patient_id, consultation_id=row.id
                )
                await uow.commit()
            call = self._calls.setdefault(consultation_id, _Call(row.patient_id, row.doctor_id))
            fresh = _room_or_none(self.registry, consultation_id) is None
            room = self.registry.open(
                str(consultation_id), [str(call.patient_id), str(call.doctor_id)]
            )
            room.allow(media_kinds(form))
            try:
                answer = await room.answer(str(actor.user_id), offer)
            except BaseException:
                if fresh and not room.resources()["peers"]:
                    # No call came of it: a later offer starts from nothing again.
                    self._calls.pop(consultation_id, None)
                    await self.registry.end(str(consultation_id))
                raise
            await self._maybe_start_recording(consultation_id, room)
        return AnswerOut(consultation_id=consultation_id, sdp=answer.sdp, type=answer.type)

    async def hangup(self, actor: Actor, consultation_id: int) -> FormChangeOut:
        """End the call for both sides; the consultation goes on as a chat."""
        change = await self.request_form(actor, consultation_id, Form.CHAT, hangup=True)
        assert isinstance(change, FormChangeOut)  # going down never waits for consent
        return change

    async def request_form(
        self, actor: Actor, consultation_id: int, form: Form, *, hangup: bool = False
    ) -> FormChangeOut | FormRequestOut:
        """Switch at once, or (up to video) ask the other participant first."""
        async with self._lock(consultation_id):
            async with self._db.uow() as uow:
                row = await self._active_row(uow, actor, consultation_id, "call.form")
                current = await repo.current_form(uow, row)
                if hangup and not has_call(current):
                    raise NotFound(
                        "This consultation has no call to hang up.", code="media_no_call"
                    )
                if form is current:
                    raise Conflict(f"The consultation is in {form} already.", code="form_unchanged")
                if needs_consent(current, form):
                    other = row.doctor_id if actor.user_id == row.patient_id else row.patient_id
                    request = self._switches.request(
                        SwitchRequest(
                            consultation_id, form, current, actor.user_id, other, self._clock.now()
                        )
                    )
                    out = _request_out(request)
                    await self._audit.write(
                        uow,
                        actor,
                        "call.form.request",
                        patient_id=row.patient_id,
                        consultation_id=row.id,
                        detail=f"{current} -> {form}",
                    )
                    uow.collect(Push((other,), "call:form-requested", out.model_dump(mode="json")))
                    await uow.commit()
                    return out
                change = await self._switch(uow, actor, row, current, form, actor.user_id)
                await uow.commit()
            self._follow_form(consultation_id, form)
            if not has_call(form):
                await self._end_media(consultation_id)
        return change

    async def answer_form(self, actor: Actor, consultation_id: int, accept: bool) -> FormChangeOut:
        async with self._lock(consultation_id):
            async with self._db.uow() as uow:
                row = await self._active_row(uow, actor, consultation_id, "call.form")
                request = self._switches.take_for_answer(consultation_id, actor.user_id)
                current = await repo.current_form(uow, row)
                if accept and request.form is not current:
                    change = await self._switch(
                        uow, actor, row, current, request.form, request.requested_by
                    )
                else:
                    change = FormChangeOut(
                        consultation_id=consultation_id,
                        form=current,
                        previous=current,
                        requested_by=request.requested_by,
                        at=self._clock.now(),
                        declined=not accept,
                    )
                    await self._audit.write(
                        uow,
                        actor,
                        "call.form.decline",
                        patient_id=row.patient_id,
                        consultation_id=row.id,
                        detail=f"{current} -> {request.form}",
                    )
                    uow.collect(_to_both(row, "call:form-changed", change))
                await uow.commit()
            self._follow_form(consultation_id, change.form)
        return change

    async def record_consent(
        self, actor: Actor, consultation_id: int, consent: bool
    ) -> RecordingStateOut:
        """Store the actor's consent (or its withdrawal); record when both have consented."""
        async with self._lock(consultation_id):
            async with self._db.uow() as uow:
                row = await self._active_row(uow, actor, consultation_id, "call.recording.consent")
                await repo.add_consent(uow, row.id, actor.user_id, consent, self._clock.now())
                await self._audit.write(
                    uow,
                    actor,
                    "call.recording.consent",
                    patient_id=row.patient_id,
                    consultation_id=row.id,
                    detail="given" if consent else "withdrawn",
                )
                await uow.commit()
            room = _room_or_none(self.registry, consultation_id)
            told = False  # a start or stop tells both pages itself
            if consent and room is not None:
                told = await self._maybe_start_recording(consultation_id, room)
            elif not consent:
                told = await self._stop_recording(consultation_id)
            async with self._db.uow() as uow:
                state = await self._recording_state(uow, row)
                if not told:
                    uow.collect(_to_both(row, "call:recording", state))
                await uow.commit()
        return state

    async def recording_file(
        self, actor: Actor, consultation_id: int, recording_id: int
    ) -> tuple[Path, str]:
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

    # --- the server's side --------------------------------------------------------------------

    async def on_event(self, event: Event) -> None:
        """Bus subscriber: a consultation that ended (or lost its doctor) ends its call."""
        match event:
            case ConsultationEnded(consultation=c):
                await self.end(int(c["id"]))
            case ConsultationInterrupted(consultation_id=cid):
                await self.end(cid)

    async def end(self, consultation_id: int) -> None:
        async with self._lock(consultation_id):
            self._switches.clear(consultation_id)
            await self._end_media(consultation_id)
            async with self._db.uow() as uow:
                await repo.close_stretch(uow, consultation_id, self._clock.now())
                await uow.commit()
        self._locks.pop(consultation_id, None)

    async def close(self) -> None:
        """Shutdown: finish recordings, close every peer."""
        for consultation_id in list(self._calls):
            with contextlib.suppress(Exception):
                await self._end_media(consultation_id)
        await self.registry.close()
        await self.composer.close()

    def running(self) -> list[tuple[int, int]]:
        """(consultation id, doctor id) of every call with a room in this process."""
        return [
            (cid, call.doctor_id)
            for cid, call in self._calls.items()
            if _room_or_none(self.registry, cid) is not None
        ]

    async def quality(self, consultation_id: int) -> dict[str, Any] | None:
        """Both legs' figures (round-trip time, loss, bitrate, frame rate), server-side."""
        call = self._calls.get(consultation_id)
        room = _room_or_none(self.registry, consultation_id)
        if call is None or room is None:
            return None
        legs = []
        for role, user_id in (("patient", call.patient_id), ("doctor", call.doctor_id)):
            try:
                stats = (await room.stats(str(user_id))).to_dict()
            except NotFound:
                stats = {"user_id": str(user_id), "state": "absent", "rtt_ms": None, "streams": []}
            legs.append({"role": role, **stats})
        return {"consultation_id": consultation_id, "legs": legs}

    # --- internals ----------------------------------------------------------------------------

    def _follow_form(self, consultation_id: int, form: Form) -> None:
        """The room relays what ``form`` allows from now on (a switch down stops video here)."""
        room = _room_or_none(self.registry, consultation_id)
        if room is not None:
            room.allow(media_kinds(form))

    def _lock(self, consultation_id: int) -> asyncio.Lock:
        return self._locks.setdefault(consultation_id, asyncio.Lock())

    async def _active_row(
        self, uow: UnitOfWork, actor: Actor, consultation_id: int, action: str
    ) -> Any:
        row = await self._consultations.participant_row(uow, actor, consultation_id, action)
        if row.status != ConsultationStatus.ACTIVE:
            raise Conflict("The consultation is not active.", code="consultation_not_active")
        return row

    async def _switch(
        self,
        uow: UnitOfWork,
        actor: Actor,
        row: Any,
        current: Form,
        form: Form,
        requested_by: int,
    ) -> FormChangeOut:
        now = self._clock.now()
        await repo.switch_form(uow, row, form, requested_by, now)
        self._switches.clear(row.id)
        await self._audit.write(
            uow,
            actor,
            "call.form",
            patient_id=row.patient_id,
            consultation_id=row.id,
            detail=f"{current} -> {form}",
        )
        change = FormChangeOut(
            consultation_id=row.id, form=form, previous=current, requested_by=requested_by, at=now
        )
        uow.collect(_to_both(row, "call:form-changed", change))
        return change

    async def _recording_state(self, uow: UnitOfWork, row: Any) -> RecordingStateOut:
        consents = await repo.consents(uow, row.id)
        call = self._calls.get(row.id)
        recording_id = call.recording_id if call else None
        return RecordingStateOut(
            consultation_id=row.id,
            patient_consent=consents.get(row.patient_id, False),
            doctor_consent=consents.get(row.doctor_id, False),
            recording=recording_id is not None,
            recording_id=recording_id,
        )

    async def _maybe_start_recording(self, consultation_id: int, room: CallRoom) -> bool:
        """Start recording if both consent and none runs; whether it started."""
        call = self._calls.get(consultation_id)
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
            uow.collect(_to_both(call, "call:recording", state))
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

    async def _stop_recording(self, consultation_id: int) -> bool:
        """Stop the running recording, if any; whether one stopped."""
        call = self._calls.get(consultation_id)
        room = _room_or_none(self.registry, consultation_id)
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
            await repo.finish_recording(uow, recording_id, self._clock.now(), recorded=recorded)
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
            uow.collect(_to_both(call, "call:recording", state))
            await uow.commit()
        if recorded:  # patient left, doctor right
            order = (call.patient_id, call.doctor_id)
            seconds = summary.seconds if summary is not None else LONGEST_CALL
            self.composer.start(recording_id, stored_name, order, seconds)
        log.info("call %s: recording %s finished", consultation_id, recording_id)
        return True

    async def _end_media(self, consultation_id: int) -> None:
        """Finish the recording, then close the room (its peers say "closed" to the pages)."""
        await self._stop_recording(consultation_id)
        call = self._calls.get(consultation_id)
        if call is not None:
            call.ending = True
        try:
            await self.registry.end(str(consultation_id))
        finally:
            self._calls.pop(consultation_id, None)

    def _on_media(self, event: CallEvent) -> None:
        consultation_id = int(event.consultation_id)
        call = self._calls.get(consultation_id)
        if call is None:
            return
        user_id = int(event.user_id)
        state = shown_state(call.shown.get(user_id), event.state, call.ending)
        if call.shown.get(user_id) == state:
            return  # e.g. a dropped peer reports "closed", then "left": the pages hear it once
        call.shown[user_id] = state
        update = MediaState(consultation_id, call.patient_id, call.doctor_id, user_id, state)
        for listener in self.listeners:
            listener(update)


def _room_or_none(registry: CallRegistry, consultation_id: int) -> CallRoom | None:
    try:
        return registry.get(str(consultation_id))
    except NotFound:
        return None


def _to_both(call: Any, name: str, out: BaseModel) -> Push:
    """``out`` to both participants of ``call`` (a consultation row or a ``_Call``)."""
    return Push((call.patient_id, call.doctor_id), name, out.model_dump(mode="json"))


def _request_out(request: SwitchRequest) -> FormRequestOut:
    return FormRequestOut(
        consultation_id=request.consultation_id,
        form=request.form,
        previous=request.previous,
        requested_by=request.requested_by,
        to_user=request.to_user,
        at=request.at,
    )
