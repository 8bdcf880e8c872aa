"""The media bridge: this process's media rooms (``consult.media``) for the consultations' calls.

Rooms live in this process (aiortc peers cannot move between processes): this process is the
owner of their calls (``leases.py``). The bridge opens a room on an offer, lets it relay only
what the form allows, closes it, reports each leg's media state to listeners and both legs'
quality figures.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from consult.calls.forms import media_kinds
from consult.domain import Form
from consult.errors import NotFound
from consult.media.call import CallEvent, CallRoom
from consult.media.host_address import ANY_ADDRESS, MediaAddress
from consult.media.ice import IceConfig
from consult.media.offers import Offer
from consult.media.registry import CallRegistry

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


@dataclass(frozen=True)
class MediaState:
    """A participant's media connection changed: told to both participants."""

    consultation_id: int
    patient_id: int
    doctor_id: int
    user_id: int
    state: str  # connecting, connected, reconnecting, closed


@dataclass
class Call:
    patient_id: int
    doctor_id: int
    form: Form | None = None  # the form whose kinds the room relays now
    recording_id: int | None = None
    stored_name: str | None = None
    # Being closed: its peers' last state changes still reach the pages, as "closed".
    ending: bool = False
    # Dropped without a word to the pages: the call moved to another node (or this one stops),
    # where the pages' next offers re-establish it.
    silent: bool = False
    # The state each participant's leg was last shown as: one call:state per change.
    shown: dict[int, str] = field(default_factory=dict)


class MediaBridge:
    def __init__(self, ice: IceConfig, address: MediaAddress = ANY_ADDRESS) -> None:
        self.registry = CallRegistry(ice, on_event=self._on_media, address=address)
        self.calls: dict[int, Call] = {}
        self.listeners: list[Callable[[MediaState], None]] = []

    def room(self, consultation_id: int) -> CallRoom | None:
        try:
            return self.registry.get(str(consultation_id))
        except NotFound:
            return None

    async def answer(
        self,
        consultation_id: int,
        patient_id: int,
        doctor_id: int,
        user_id: int,
        offer: Offer,
        form: Form,
    ) -> tuple[Any, CallRoom]:
        """The room's answer to a participant's offer (the room opened if there is none)."""
        call = self.calls.setdefault(consultation_id, Call(patient_id, doctor_id))
        fresh = self.room(consultation_id) is None
        room = self.registry.open(str(consultation_id), [str(call.patient_id), str(call.doctor_id)])
        room.allow(media_kinds(form))
        call.form = form
        try:
            answer = await room.answer(str(user_id), offer)
        except BaseException:
            if fresh and not room.resources()["peers"]:
                # No call came of it: a later offer starts from nothing again.
                self.calls.pop(consultation_id, None)
                await self.registry.end(str(consultation_id))
            raise
        return answer, room

    def follow_form(self, consultation_id: int, form: Form) -> None:
        """The room relays what ``form`` allows from now on (a switch down stops video here)."""
        room = self.room(consultation_id)
        if room is not None:
            room.allow(media_kinds(form))
        if consultation_id in self.calls:
            self.calls[consultation_id].form = form

    async def close_room(self, consultation_id: int, *, silent: bool = False) -> None:
        """Close the room (its peers say "closed" to the pages, unless ``silent``) and forget
        the call."""
        call = self.calls.get(consultation_id)
        if call is not None:
            call.ending = True
            call.silent = silent
        try:
            await self.registry.end(str(consultation_id))
        finally:
            self.calls.pop(consultation_id, None)

    def running(self) -> list[tuple[int, int]]:
        """(consultation id, doctor id) of every call with a room in this process."""
        return [
            (cid, call.doctor_id) for cid, call in self.calls.items() if self.room(cid) is not None
        ]

    async def quality(self, consultation_id: int) -> dict[str, Any] | None:
        """Both legs' figures (round-trip time, loss, bitrate, frame rate), server-side."""
        call = self.calls.get(consultation_id)
        room = self.room(consultation_id)
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

    def _on_media(self, event: CallEvent) -> None:
        consultation_id = int(event.consultation_id)
        call = self.calls.get(consultation_id)
        if call is None or call.silent:
            return
        user_id = int(event.user_id)
        state = shown_state(call.shown.get(user_id), event.state, call.ending)
        if call.shown.get(user_id) == state:
            return  # e.g. a dropped peer reports "closed", then "left": the pages hear it once
        call.shown[user_id] = state
        update = MediaState(consultation_id, call.patient_id, call.doctor_id, user_id, state)
        for listener in self.listeners:
            listener(update)
