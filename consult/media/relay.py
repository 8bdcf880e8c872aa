"""Forwarding fan-out: one participant's incoming track to the tracks sent to the others.

A :class:`Feed` takes one participant's incoming encoded packets straight from the
receiver (nothing queues on aiortc's unbounded track queue) and hands each to its
:class:`Outlet`\\s. An outlet is the track one server-side sender sends: it yields
``av.Packet``\\s, which aiortc's sender packs into RTP without encoding. Nothing is decoded
unless the two legs negotiated different codecs (a call room allows that only when it is
configured with more than one codec per kind): then that outlet decodes, and its sender
encodes.

An outlet outlives the feeds it is attached to: when the far participant rejoins with a new
peer, the same outlet is attached to the new feed, so the near participant's connection is
not renegotiated. Its timestamps are rebased to stay continuous across such a switch.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Coroutine
from fractions import Fraction
from typing import Any

import av
from aiortc import RTCRtpCodecParameters, RTCRtpReceiver
from aiortc.codecs import get_decoder
from aiortc.codecs.base import Decoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av.frame import Frame

from consult.media.forwarding import Throttle, cap_remb, receive_encoded, send_pli, send_remb

log = logging.getLogger(__name__)

# Queued packets an outlet holds before it drops the oldest (about 2 s of video or audio).
OUTLET_QUEUE = 64
# The gap an outlet leaves in its timestamps when it switches to another feed.
SWITCH_GAP = {"audio": Fraction(1, 50), "video": Fraction(1, 30)}


def same_codec(a: RTCRtpCodecParameters, b: RTCRtpCodecParameters) -> bool:
    return a.mimeType.lower() == b.mimeType.lower() and a.clockRate == b.clockRate


class Outlet(MediaStreamTrack):
    """The packets one participant is sent for one kind of media."""

    def __init__(
        self, kind: str, *, codec: RTCRtpCodecParameters | None = None, label: str = ""
    ) -> None:
        """``codec``: what the sender sends with; None takes whatever the feed has."""
        super().__init__()
        self.kind = kind
        self.label = label
        self.codec = codec
        self._queue: asyncio.Queue[av.Packet | None] = asyncio.Queue()
        self._feed: Feed | None = None
        # Only when the feed's codec differs from ours: decode, and the sender encodes.
        self._decoder: Decoder | None = None
        self._frames: collections.deque[Frame] = collections.deque()
        self._waiting_keyframe = kind == "video"
        self._origin: int | None = None
        self._base = 0
        self._last_pts: int | None = None
        self.frames_sent = 0
        self.bytes_sent = 0
        self.dropped = 0

    @property
    def feed(self) -> Feed | None:
        return self._feed

    def attach(self, feed: Feed) -> None:
        """Take packets from ``feed`` from now on, starting at its next keyframe."""
        self.detach()
        self._feed = feed
        feed._outlets.add(self)
        self._origin = None
        self._decoder = None
        if (
            self.codec is not None
            and feed.codec is not None
            and not same_codec(self.codec, feed.codec)
        ):
            log.info("media %s: %s -> %s, transcoding", self.label, feed.codec, self.codec)
            self._decoder = get_decoder(feed.codec)
        if self.kind == "video":
            self._waiting_keyframe = True
            # Encoders send keyframes rarely (aiortc: every 3,000 frames); ask for one now.
            feed.request_keyframe()

    def detach(self) -> None:
        if self._feed is not None:
            self._feed._outlets.discard(self)
            self._feed = None

    def request_keyframe(self) -> None:
        """The receiving participant lost the picture (PLI / FIR): ask the sending one."""
        if self._feed is not None:
            self._feed.request_keyframe()

    def on_remb(self, bitrate: int) -> None:
        if self._feed is not None:
            self._feed.limit_bitrate(bitrate)

    def push(self, packet: av.Packet) -> None:
        if self.readyState != "live":
            return
        if self._waiting_keyframe:
            if not packet.is_keyframe:
                if self._feed is not None:
                    self._feed.request_keyframe()  # throttled; covers a lost request
                return
            self._waiting_keyframe = False
        assert packet.pts is not None and packet.time_base is not None
        if self._origin is None:
            self._origin = packet.pts
            if self._last_pts is not None:
                self._base = self._last_pts + int(SWITCH_GAP[self.kind] / packet.time_base)
        pts = self._base + packet.pts - self._origin
        out = av.Packet(bytes(packet))
        out.pts = pts
        out.time_base = packet.time_base
        out.is_keyframe = packet.is_keyframe
        self._last_pts = pts
        if self._queue.qsize() >= OUTLET_QUEUE:
            # The receiving leg is not keeping up. Audio: drop the oldest packet. Video: every
            # queued frame depends on the one before, so drop them all and restart from a
            # keyframe rather than send a broken picture.
            if self.kind != "video":
                self._queue.get_nowait()
                self.dropped += 1
            else:
                while not self._queue.empty():
                    self._queue.get_nowait()
                    self.dropped += 1
                self._waiting_keyframe = True
                if self._feed is not None:
                    self._feed.request_keyframe()
                return
        self._queue.put_nowait(out)

    async def recv(self) -> av.Packet | Frame:
        if self.readyState != "live":
            raise MediaStreamError
        while not self._frames:
            packet = await self._queue.get()
            if packet is None:
                raise MediaStreamError
            self.frames_sent += 1
            self.bytes_sent += packet.size
            decoder = self._decoder
            if decoder is None:
                return packet
            encoded = JitterFrame(data=bytes(packet), timestamp=packet.pts or 0)
            loop = asyncio.get_running_loop()
            self._frames.extend(await loop.run_in_executor(None, decoder.decode, encoded))
        return self._frames.popleft()

    @property
    def transcoding(self) -> bool:
        return self._decoder is not None

    def stop(self) -> None:
        if self.readyState == "live":
            self.detach()
            self._queue.put_nowait(None)
        super().stop()


class Feed:
    """One incoming stream of encoded packets, fanned out to outlets as each frame completes.

    The receiver's sink calls :meth:`deliver` directly (no queue, no task in between), so
    nothing accumulates when nobody is attached: the packets are simply not kept.
    """

    def __init__(
        self,
        kind: str,
        receiver: RTCRtpReceiver,
        *,
        keyframe_interval: float = 0.3,
        remb_interval: float = 1.0,
        codec: RTCRtpCodecParameters | None = None,
        label: str = "",
    ) -> None:
        self.kind = kind
        self.label = label
        self.codec = codec  # as negotiated; the sink's first frame confirms it
        self._receiver = receiver
        self._outlets: set[Outlet] = set()
        self._keyframes = Throttle(keyframe_interval)
        self._rembs = Throttle(remb_interval)
        self._pending: set[asyncio.Task[Any]] = set()
        self._closed = False
        self.bitrate_limit: int | None = None
        self.keyframe_requests = 0
        self.sink = receive_encoded(receiver, self.deliver)
        cap_remb(receiver, lambda: self.bitrate_limit)

    @property
    def outlets(self) -> frozenset[Outlet]:
        return frozenset(self._outlets)

    def deliver(self, packet: av.Packet) -> None:
        if self._closed:
            return
        for outlet in list(self._outlets):
            outlet.push(packet)

    def request_keyframe(self) -> None:
        """Send a PLI to the sending participant, at most once per ``keyframe_interval``."""
        if self.kind == "video" and not self._closed and self._keyframes.ready():
            self.keyframe_requests += 1
            self._spawn(send_pli(self._receiver))

    def limit_bitrate(self, bitrate: int) -> None:
        """The receiving leg's estimate (REMB): pass it on to the sending participant."""
        self.bitrate_limit = bitrate
        if not self._closed and self._rembs.ready():
            self._spawn(send_remb(self._receiver, bitrate))

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(coro)
        self._pending.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("media feed %s: RTCP feedback failed: %r", self.label, task.exception())

    def tasks(self) -> int:
        return len(self._pending)

    async def close(self) -> None:
        self._closed = True
        for outlet in list(self._outlets):
            outlet.detach()
        tasks = list(self._pending)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._pending.clear()
        track = self._receiver.track
        if track is not None:
            track.stop()
