"""Calls: one room per consultation, one server peer per participant, tracks relayed.

Each participant's page (or client) has one ``RTCPeerConnection`` with the server: it sends
an offer, :meth:`CallRoom.offer` answers it. What the participant sends arrives at a
:class:`~consult.media.relay.Feed`; what they receive is an
:class:`~consult.media.relay.Outlet` attached to the other participant's feed of the same
kind. Both legs negotiate the same codecs (VP8 and Opus by default, nothing else offered), so
packets are forwarded as they are, never decoded.

- Switching the form (chat -> voice -> video and back) is a new offer on the same peer
  (renegotiation: an m-line added, or set inactive), or a new peer.
- The room relays only the kinds of media the form allows (:meth:`CallRoom.allow`), whatever
  a client offers or sends: an m-line of another kind is answered ``inactive``, and from the
  moment a kind is taken away no packet of it is forwarded (its outlets are detached from the
  feeds); it flows again only when the kind is allowed again.
- Rejoining after a network drop is a new offer with new ICE credentials (an ICE restart;
  aiortc cannot restart ICE on a peer, so the room replaces the peer): the other
  participant's outlets are attached to the new feeds, their connection is untouched.
- :meth:`CallRoom.hangup` closes one participant's peer, feeds and outlets;
  :meth:`CallRoom.close` (via ``CallRegistry.end``, ``registry.py``) all of them.

Errors are domain errors (``consult.errors``), so the signaling edge maps them to acks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from aiortc import (
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)

from consult.errors import Conflict, Invalid, NotAllowed, NotFound
from consult.media.forwarding import (
    negotiated_codec,
    on_keyframe_request,
    on_remb,
)
from consult.media.host_address import ANY_ADDRESS, MediaAddress
from consult.media.ice import IceConfig
from consult.media.leg import Leg
from consult.media.offers import (
    DEFAULT_CODECS,
    KINDS,
    Offer,
    codec_preferences,
    ice_ufrag,
    parse_offer,
)
from consult.media.recorder import Recorder, RecordingSummary
from consult.media.relay import Feed, Outlet
from consult.media.stats import (
    LegFigures,
    LegStats,
    RelayTotals,
    leg_figures,
    leg_stats,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallEvent:
    """A participant's server peer changed state (``connectionState`` of aiortc), or left."""

    consultation_id: str
    user_id: str
    state: str  # "connecting", "connected", "failed", "closed", "left"


def _not_participant() -> NotAllowed:
    return NotAllowed("You are not a participant of this call.", code="media_not_participant")


class CallRoom:
    """The media of one consultation. Create through
    :meth:`~consult.media.registry.CallRegistry.open`."""

    def __init__(
        self,
        consultation_id: str,
        participants: Iterable[str],
        *,
        ice: IceConfig,
        codecs: Mapping[str, tuple[str, ...]] = DEFAULT_CODECS,
        keyframe_interval: float = 0.3,
        on_event: Callable[[CallEvent], None] | None = None,
        kinds: Iterable[str] = KINDS,
        totals: RelayTotals | None = None,
        address: MediaAddress = ANY_ADDRESS,
    ) -> None:
        """``kinds``: what the room relays at first (see :meth:`allow`); ``totals``: where a
        dropped leg's relayed figures are added (the registry's, for /metrics); ``address``:
        the node's media address, which the answers' candidates carry."""
        self.consultation_id = consultation_id
        self.participants = frozenset(participants)
        if len(self.participants) != 2:
            raise ValueError("a call has exactly two participants")
        self._ice = ice
        self._address = address
        self._mimes = codecs
        self._codecs = {kind: codec_preferences(kind, codecs[kind]) for kind in KINDS}
        self._kinds = frozenset(kinds)
        self._totals = totals if totals is not None else RelayTotals()
        self._keyframe_interval = keyframe_interval
        self._on_event = on_event
        self._legs: dict[str, Leg] = {}
        self._lock = asyncio.Lock()
        self._closed = False
        self._recorder: Recorder | None = None

    # -- the Python API the signaling edge calls -------------------------------------------

    async def offer(self, user_id: str, sdp: str, type_: str = "offer") -> RTCSessionDescription:
        """Answer a participant's offer (first offer, renegotiation, or ICE restart).

        The answer carries the server's host candidates (gathering is complete).
        """
        self._check(user_id)
        return await self.answer(user_id, parse_offer(sdp, type_, self._mimes))

    async def answer(self, user_id: str, offer: Offer) -> RTCSessionDescription:
        """:meth:`offer`, for an offer the caller has parsed already (``parse_offer``)."""
        async with self._lock:
            self._check(user_id)
            leg = self._legs.get(user_id)
            ufrag = ice_ufrag(offer.description)
            if leg is not None and (
                leg.pc.connectionState in ("failed", "closed")
                or leg.pc.signalingState != "stable"
                or leg.ufrag != ufrag
            ):
                # A new peer on the page, or an ICE restart: start this leg afresh.
                await self._drop(leg)
                leg = None
            if leg is None:
                leg = self._new_leg(user_id)
            leg.ufrag = ufrag
            try:
                return await self._negotiate(leg, offer)
            except BaseException as exc:  # cancelled too: leave no half-made peer behind
                await self._drop(leg)
                if isinstance(exc, Invalid) or not isinstance(exc, Exception):
                    raise
                log.warning(
                    "call %s: offer of user %s rejected: %r", self.consultation_id, user_id, exc
                )
                raise Invalid(
                    "The offer could not be answered (no common codec or a malformed session).",
                    code="media_offer_rejected",
                ) from exc

    def allow(self, kinds: Iterable[str]) -> None:
        """Relay only ``kinds`` from now on (the form: voice is audio, video both).

        Taking a kind away stops its packets at once, on connections negotiated before (a
        client that keeps sending is not heard); giving it back resumes them on those
        connections, from a keyframe. Offers are answered to match (``inactive`` m-lines).
        """
        self._kinds = frozenset(kinds)
        for kind in KINDS:
            if kind in self._kinds:
                self._link(kind)
            else:
                self._unlink(kind)

    async def hangup(self, user_id: str) -> None:
        """Close this participant's peer; the other participant stays in the call."""
        if user_id not in self.participants:
            raise _not_participant()
        async with self._lock:
            leg = self._legs.get(user_id)
            if leg is not None:
                await self._drop(leg)

    async def close(self) -> None:
        """End the call: every peer, feed, outlet and task of it (and finish a recording)."""
        async with self._lock:
            self._closed = True
            for leg in list(self._legs.values()):
                await self._drop(leg)
        with contextlib.suppress(Exception):  # a failed recording was logged by the recorder
            await self.stop_recording()

    def start_recording(self, path: Path) -> Recorder:
        """Write both participants' audio and video to ``path`` (WebM) from now on.

        Consent is the caller's business: call this only when both sides have agreed.
        """
        if self._closed:
            raise Conflict("This call has ended.", code="media_call_ended")
        if self._recorder is not None:
            raise Conflict("This call is being recorded already.", code="media_recording")
        users = sorted(self.participants)
        recorder = Recorder(path, [(user, kind) for user in users for kind in KINDS])
        self._recorder = recorder
        for kind in self._kinds:
            self._link(kind)
        recorder.start()
        return recorder

    async def stop_recording(self) -> RecordingSummary | None:
        """Finish the file; None when nothing was being recorded."""
        recorder, self._recorder = self._recorder, None
        return None if recorder is None else await recorder.stop()

    @property
    def closed(self) -> bool:
        return self._closed

    def connected(self) -> set[str]:
        return {u for u, leg in self._legs.items() if leg.pc.connectionState == "connected"}

    def feed(self, user_id: str, kind: str) -> Feed | None:
        """What ``user_id`` sends of ``kind`` (for the recorder)."""
        leg = self._legs.get(user_id)
        return None if leg is None else leg.feeds.get(kind)

    async def stats(self, user_id: str) -> LegStats:
        """Round-trip time, loss, bitrate and frame rate of one participant's leg."""
        if user_id not in self.participants:
            raise _not_participant()
        leg = self._legs.get(user_id)
        if leg is None:
            raise NotFound("This participant is not in the call.", code="media_not_in_call")
        report = await leg.pc.getStats()
        return leg_stats(
            user_id, leg.pc.connectionState, report, leg.meter, leg.feeds, leg.outlets, KINDS
        )

    def recording(self) -> bool:
        return self._recorder is not None

    def relayed(self) -> RelayTotals:
        """What the live legs have relayed so far (a dropped leg's is in the registry's)."""
        totals = RelayTotals()
        for leg in self._legs.values():
            totals.add(leg.relayed())
        return totals

    async def leg_figures(self) -> list[LegFigures]:
        """State, round-trip time and loss of each live leg, for /metrics."""
        return [
            leg_figures(self.consultation_id, leg.user_id, leg.pc.connectionState, report)
            for leg in list(self._legs.values())
            if (report := await leg.pc.getStats()) is not None
        ]

    def resources(self) -> dict[str, int]:
        """What the room holds open now: peers, feeds, outlets, tasks (tests count them)."""
        legs = list(self._legs.values())
        return {
            "peers": len(legs),
            "feeds": sum(len(leg.feeds) for leg in legs),
            "outlets": sum(len(leg.outlets) for leg in legs),
            "tasks": sum(feed.tasks() for leg in legs for feed in leg.feeds.values()),
        }

    # -- internals ---------------------------------------------------------------------------

    def _check(self, user_id: str) -> None:
        if self._closed:
            raise Conflict("This call has ended.", code="media_call_ended")
        if user_id not in self.participants:
            raise _not_participant()

    def _outlets_and_feeds(self, kind: str) -> list[tuple[Outlet, Feed | None]]:
        """Every outlet of ``kind`` (each leg's, the recording's) with the feed it relays."""
        pairs: list[tuple[Outlet, Feed | None]] = []
        for user in self.participants:
            feed = self.feed(user, kind)
            other = self._other(user)
            if other is not None and kind in other.outlets:
                pairs.append((other.outlets[kind], feed))
            recording = self._recorder and self._recorder.outlet(user, kind)
            if recording:
                pairs.append((recording, feed))
        return pairs

    def _link(self, kind: str) -> None:
        """Attach every outlet of ``kind`` to its feed (an allowed kind)."""
        for outlet, feed in self._outlets_and_feeds(kind):
            if feed is not None and outlet.feed is not feed:
                outlet.attach(feed)

    def _unlink(self, kind: str) -> None:
        for outlet, _ in self._outlets_and_feeds(kind):
            outlet.detach()

    def _other(self, user_id: str) -> Leg | None:
        other = next(u for u in self.participants if u != user_id)
        return self._legs.get(other)

    def _new_leg(self, user_id: str) -> Leg:
        pc = RTCPeerConnection(self._ice.server_configuration())
        leg = Leg(user_id, pc)
        self._legs[user_id] = leg

        @pc.on("connectionstatechange")
        def _state() -> None:
            log.info("call %s: user %s media %s", self.consultation_id, user_id, pc.connectionState)
            self._emit(user_id, pc.connectionState)

        return leg

    async def _negotiate(self, leg: Leg, offer: Offer) -> RTCSessionDescription:
        pc = leg.pc
        known = {t.mid for t in pc.getTransceivers() if t.mid is not None}
        for media in offer.description.media:
            if media.kind in KINDS and media.rtp.muxId not in known:
                # Made before setRemoteDescription so the offer's m-line takes it (in order)
                # with our codec preferences: the answer then offers only those codecs.
                transceiver = pc.addTransceiver(media.kind, direction="sendrecv")
                transceiver.setCodecPreferences(self._codecs[media.kind])
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer.sdp, type="offer"))
        for transceiver in pc.getTransceivers():
            # A kind the form does not allow is answered inactive: a client that keeps to the
            # answer sends none, and the relay forwards none from one that does not.
            transceiver.direction = "sendrecv" if transceiver.kind in self._kinds else "inactive"
            self._wire(leg, transceiver)
        with self._address.gathering():  # aiortc gathers the host candidates here
            answer = await pc.createAnswer()
            await pc.setLocalDescription(answer)
        local = pc.localDescription
        return RTCSessionDescription(sdp=self._address.announced(local.sdp), type=local.type)

    def _wire(self, leg: Leg, transceiver: RTCRtpTransceiver) -> None:
        kind = transceiver.kind
        receiver: RTCRtpReceiver = transceiver.receiver
        sender: RTCRtpSender = transceiver.sender
        label = f"{self.consultation_id}/{leg.user_id}/{kind}"
        if id(receiver) not in leg.hooked and receiver.track is not None:
            leg.hooked.add(id(receiver))
            feed = Feed(
                kind,
                receiver,
                codec=negotiated_codec(transceiver),
                keyframe_interval=self._keyframe_interval,
                label=label,
            )
            if kind not in leg.feeds:
                leg.feeds[kind] = feed
                if kind in self._kinds:
                    self._link(kind)
            else:
                # A second track of a kind is drained, not relayed (1:1 calls: one of each).
                leg.feeds[f"{kind}:{receiver.track.id}"] = feed
        if id(sender) not in leg.hooked and kind not in leg.outlets:
            leg.hooked.add(id(sender))
            outlet = Outlet(kind, codec=negotiated_codec(transceiver), label=label)
            sender.replaceTrack(outlet)
            leg.senders[kind] = sender
            on_keyframe_request(sender, outlet.request_keyframe)
            on_remb(sender, outlet.on_remb)
            leg.outlets[kind] = outlet
            if kind in self._kinds:
                self._link(kind)

    async def _drop(self, leg: Leg) -> None:
        if self._legs.get(leg.user_id) is leg:
            del self._legs[leg.user_id]
            self._totals.add(leg.relayed())
        await leg.close()
        self._emit(leg.user_id, "left")

    def _emit(self, user_id: str, state: str) -> None:
        if self._on_event is not None:
            try:
                self._on_event(CallEvent(self.consultation_id, user_id, state))
            except Exception:
                log.exception("call %s: event listener failed", self.consultation_id)
