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

Media rooms and running recordings live in one process, the call's owner (aiortc peers cannot
move between processes; ``leases.py``); the timeline, pending switch requests, consents and
recordings are in the database, so any node answers a page's event.

``CallService`` is what the edges call: it checks who asks, one action at a time per
consultation on this node, writes what changed (the form switching, ``form_switching.py``; the
consents), and after the commit has the owner's media follow (``media_router.py``, which runs the
step here or forwards it; ``media_owner.py``, the steps themselves).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from consult.audit import Audit
from consult.calls import repository as repo
from consult.calls.bridge import MediaBridge, MediaState
from consult.calls.form_switching import FormSwitching, request_out
from consult.calls.forms import has_call
from consult.calls.leases import Leases, LocalLeases
from consult.calls.media_owner import CallMedia
from consult.calls.media_router import MediaRouter
from consult.calls.node_link import Handler, NodeLink
from consult.calls.recording_control import RecordingControl, to_both
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
from consult.events import ConsultationEnded, ConsultationInterrupted, Event
from consult.media.host_address import ANY_ADDRESS, MediaAddress
from consult.media.ice import IceConfig
from consult.media.offers import parse_offer
from consult.queue.service import ConsultationService
from consult.storage.uow import Database, UnitOfWork

log = logging.getLogger(__name__)


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
        address: MediaAddress = ANY_ADDRESS,
        leases: Leases | None = None,
        link: Callable[[Handler], NodeLink] | None = None,
        reconcile_every: float = 0.0,
    ) -> None:
        """``leases`` and ``link``: with several nodes, who owns each call and how a step
        reaches its owner (``link`` is made with the handler of other nodes' requests), and
        how often the owner checks its rooms against the database; by default every call is
        this process's."""
        self._db = db
        self._clock = clock
        self._audit = audit
        self._consultations = consultations
        self.ice = ice
        self.bridge = MediaBridge(ice, address)
        self.registry = self.bridge.registry
        self.listeners: list[Callable[[MediaState], None]] = self.bridge.listeners
        self._recording = RecordingControl(db, clock, audit, consultations, self.bridge, recordings)
        self.recordings = recordings
        self.composer = self._recording.composer
        self._forms = FormSwitching(clock, audit)
        self.router = MediaRouter(
            CallMedia(db, self.bridge, self._recording),
            leases or LocalLeases(),
            reconcile_every=reconcile_every,
        )
        if link is not None:
            self.router.link = link(self.router.serve)
        self._locks: dict[int, asyncio.Lock] = {}

    # --- what the pages call ------------------------------------------------------------------

    async def state(self, actor: Actor, consultation_id: int) -> CallStateOut:
        """The form now, the ICE servers for this user (TURN credentials valid turn_ttl s), a
        pending switch request and the recording state."""
        async with self._db.uow() as uow:
            row = await self._active_row(uow, actor, consultation_id, "call.read")
            form = await repo.current_form(uow, row)
            recording = await self._recording.state(uow, row)
            pending = await repo.open_request(uow, row.id)
            await self._audit.write(
                uow, actor, "call.read", patient_id=row.patient_id, consultation_id=row.id
            )
            await uow.commit()
        return CallStateOut(
            consultation_id=consultation_id,
            form=form,
            ice_servers=[
                s.to_dict()
                for s in self.ice.servers_for(str(actor.user_id), self._clock.now().timestamp())
            ],
            pending=request_out(pending) if pending else None,
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
            # The owner reads the form again under its own lock (media_owner.py).
            sdp, type_ = await self.router.answer(consultation_id, actor.user_id, offer.sdp)
        return AnswerOut(consultation_id=consultation_id, sdp=sdp, type=type_)

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
                change = await self._forms.request(uow, actor, row, form, hangup=hangup)
                await uow.commit()
            if isinstance(change, FormChangeOut):  # switched now, not asked
                await self.router.follow(consultation_id)
        return change

    async def answer_form(self, actor: Actor, consultation_id: int, accept: bool) -> FormChangeOut:
        async with self._lock(consultation_id):
            async with self._db.uow() as uow:
                row = await self._active_row(uow, actor, consultation_id, "call.form")
                change = await self._forms.answer(uow, actor, row, accept)
                await uow.commit()
            await self.router.follow(consultation_id)
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
            told = await self.router.consents(consultation_id)  # a start or stop tells both
            async with self._db.uow() as uow:
                state = await self._recording.state(uow, row)
                if not told:
                    uow.collect(to_both(row, "call:recording", state))
                await uow.commit()
        return state

    async def recording_file(
        self, actor: Actor, consultation_id: int, recording_id: int
    ) -> tuple[Path, str]:
        """A finished recording's file and download name, for either participant (also after
        the consultation ended); the read is audited."""
        return await self._recording.file(actor, consultation_id, recording_id)

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
            await self.router.end(consultation_id)
            async with self._db.uow() as uow:
                await repo.delete_request(uow, consultation_id)
                await repo.close_stretch(uow, consultation_id, self._clock.now())
                await uow.commit()
        self._locks.pop(consultation_id, None)

    async def start(self) -> None:
        """Take other nodes' requests and keep this node's leases (with several nodes)."""
        await self.router.start()

    async def close(self) -> None:
        """Shutdown: finish recordings, close every peer (the pages re-establish their calls
        on a live node), release the leases."""
        try:
            await self.router.close()
        except Exception:  # Redis gone at shutdown: the leases lapse by themselves
            log.exception("calls: closing the call routing failed")
        await self.registry.close()
        await self.composer.close()

    def running(self) -> list[tuple[int, int]]:
        """(consultation id, doctor id) of every call with a room in this process."""
        return self.bridge.running()

    async def quality(self, consultation_id: int) -> dict[str, Any] | None:
        """Both legs' figures (round-trip time, loss, bitrate, frame rate), server-side."""
        return await self.bridge.quality(consultation_id)

    # --- internals ----------------------------------------------------------------------------

    def _lock(self, consultation_id: int) -> asyncio.Lock:
        return self._locks.setdefault(consultation_id, asyncio.Lock())

    async def _active_row(
        self, uow: UnitOfWork, actor: Actor, consultation_id: int, action: str
    ) -> Any:
        row = await self._consultations.participant_row(uow, actor, consultation_id, action)
        if row.status != ConsultationStatus.ACTIVE:
            raise Conflict("The consultation is not active.", code="consultation_not_active")
        return row
