"""The aiortc internals the forwarding relay relies on, kept in this one module.

aiortc is pinned (pyproject.toml) because of what is here; tests/unit/test_media_forwarding.py
fails if an upgrade changes any of it. What we rely on, in aiortc 1.16.0:

- ``RTCRtpReceiver._handle_rtp_packet`` puts each reassembled ``(codec, JitterFrame)`` on
  ``self.__decoder_queue`` (a ``queue.Queue``) for the decoder thread, and ``__stop_decoder``
  puts ``None`` there, then joins the thread; the thread's ``decoder_worker`` calls
  ``input_q.get()`` and, on ``None``, puts ``None`` on the track's queue (ending the track).
  :func:`receive_encoded` swaps that queue, before ``receive()``, for a sink that puts the
  encoded frames on the track's queue as ``av.Packet``\\s: no decoder ever runs, and the
  thread that ``receive()`` still starts only waits for the stop.
- ``RTCRtpReceiver.__jitter_buffer`` (a ``JitterBuffer``) reassembles frames; its
  ``_remove_frame`` hands a frame on only once the *next* frame has begun (video: one frame
  late, 33 ms) or, for audio, four frames later (``prefetch=4``: 80 ms). That suits a decoder,
  not a relay: :func:`receive_encoded` also swaps in a :class:`LowDelayJitterBuffer`, which
  hands a video frame on at its marker packet and an audio packet at once (the receiving
  client has its own jitter buffer).
- ``RTCRtpSender._next_encoded_frame`` sends an ``av.Packet`` through ``encoder.pack()``
  without encoding (public behaviour, used by :mod:`consult.media.relay`).
- ``RTCRtpTransceiver._codecs`` holds the negotiated codecs, the one in use first.
- ``RTCRtpSender._handle_rtcp_packet`` calls ``self._send_keyframe()`` on PLI / FIR; REMB
  arrives at the same method. ``RTCRtpReceiver._send_rtcp_pli(ssrc)`` and
  ``RTCRtpReceiver._send_rtcp(packet)`` send feedback to the far end, from
  ``self.__rtcp_ssrc``.
- ``RTCRtpSender.__packet_count`` counts the RTP packets sent (what ``getStats`` reports as
  ``packetsSent``); :func:`packets_sent` reads it without awaiting a stats report.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Awaitable, Callable
from fractions import Fraction
from typing import Any

import av
from aiortc import RTCRtpCodecParameters, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, RtpPacket, pack_remb_fci, unpack_remb_fci
from aiortc.utils import uint16_add

VIDEO_CLOCK_RATE = 90_000


class Throttle:
    """At most one go per ``interval`` seconds (keyframe requests, REMB)."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._last: float | None = None

    def ready(self) -> bool:
        now = self._clock()
        if self._last is not None and now - self._last < self.interval:
            return False
        self._last = now
        return True


def is_keyframe(mime_type: str, data: bytes) -> bool:
    """Whether a depayloaded frame can be decoded on its own (audio frames always can)."""
    mime = mime_type.lower()
    if mime == "video/vp8":
        # RFC 6386 9.1: bit 0 of the frame tag is 0 for a key frame.
        return len(data) > 0 and data[0] & 0x01 == 0
    if mime == "video/h264":
        # aiortc depayloads H.264 to an Annex B stream; IDR (5) or SPS (7) starts a picture.
        return any(
            data[i + 3] & 0x1F in (5, 7)
            for i in range(len(data) - 3)
            if data[i : i + 3] == b"\x00\x00\x01"
        )
    return not mime.startswith("video/")


@functools.cache
def _time_base(clock_rate: int) -> Fraction:
    return Fraction(1, clock_rate)


class EncodedFrameSink:
    """Stands in for ``RTCRtpReceiver``'s decoder queue; see the module docstring.

    ``put`` runs on the event loop (from ``_handle_rtp_packet``) and from
    ``__stop_decoder``; ``get`` runs in the receiver's idle decoder thread.
    """

    def __init__(self, deliver: Callable[[av.Packet], None]) -> None:
        self._deliver = deliver
        self.codec: RTCRtpCodecParameters | None = None
        self._stopped = threading.Event()
        self.frames = 0
        self.keyframes = 0
        self.bytes = 0

    def put(self, item: tuple[Any, Any] | None) -> None:
        if item is None:
            self._stopped.set()  # the decoder thread then ends the track
            return
        codec, frame = item
        self.codec = codec
        packet = av.Packet(frame.data)
        packet.pts = frame.timestamp
        packet.time_base = _time_base(codec.clockRate)
        packet.is_keyframe = is_keyframe(codec.mimeType, frame.data)
        self.frames += 1
        self.keyframes += packet.is_keyframe
        self.bytes += len(frame.data)
        self._deliver(packet)

    def get(self) -> None:
        self._stopped.wait()
        return None


class LowDelayJitterBuffer(JitterBuffer):
    """aiortc's jitter buffer, but a frame leaves as soon as it is complete.

    Video: the packets from the buffer's origin up to the one with the RTP marker bit (the
    last of a frame, RFC 7741 / 6184), with no gap; a frame whose marker packet was lost
    leaves when the next frame begins, as in aiortc. Audio: every packet is a frame of its
    own and leaves at once; older ones still missing are given up (a relay does not wait).
    """

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        origin = self._origin
        assert origin is not None  # add() sets it before calling this
        if not self._is_video:
            packet = self._packets[sequence_number % self._capacity]
            assert packet is not None
            self.remove(uint16_add(sequence_number, -origin) + 1)
            return JitterFrame(data=packet._data, timestamp=packet.timestamp)  # type: ignore[attr-defined]
        packets: list[RtpPacket] = []
        for count in range(self._capacity):
            packet = self._packets[(origin + count) % self._capacity]
            if packet is None:
                return None
            if packets and packet.timestamp != packets[0].timestamp:
                self.remove(count)  # the frame's marker packet never came
                return _frame(packets)
            packets.append(packet)
            if packet.marker:
                self.remove(count + 1)
                return _frame(packets)
        return None


def _frame(packets: list[RtpPacket]) -> JitterFrame:
    data = b"".join(p._data for p in packets)  # type: ignore[attr-defined]
    return JitterFrame(data=data, timestamp=packets[0].timestamp)


def receive_encoded(
    receiver: RTCRtpReceiver, deliver: Callable[[av.Packet], None] | None = None
) -> EncodedFrameSink:
    """Hand on the receiver's encoded frames as ``av.Packet``\\s, never decoding them.

    Each packet carries ``pts`` (RTP clock, from 0), ``time_base`` and ``is_keyframe``.
    They go to ``deliver``, called on the event loop as each frame completes (the relay:
    no queue, no task in between), or else to ``receiver.track``, which then yields them.
    Either way the track ends when the receiver stops. Call this after
    ``setRemoteDescription`` created the track and before the connection starts the receiver.
    """
    if receiver._RTCRtpReceiver__started:  # type: ignore[attr-defined]
        raise RuntimeError("the receiver has already started decoding")
    if receiver.track is None:
        raise RuntimeError("the receiver has no track yet")
    track_queue: asyncio.Queue[Any] = receiver.track._queue  # type: ignore[attr-defined]
    sink = EncodedFrameSink(deliver or track_queue.put_nowait)
    receiver._RTCRtpReceiver__decoder_queue = sink  # type: ignore[attr-defined]
    old = receiver._RTCRtpReceiver__jitter_buffer  # type: ignore[attr-defined]
    receiver._RTCRtpReceiver__jitter_buffer = LowDelayJitterBuffer(  # type: ignore[attr-defined]
        capacity=old.capacity, is_video=old._is_video
    )
    return sink


def on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call ``callback`` when the far end of ``sender`` asks for a keyframe (PLI or FIR).

    aiortc only marks its encoder, which a forwarding sender does not use; the mark is still
    set, for a sender that encodes (a transcoding outlet).
    """
    original = sender._send_keyframe

    def send_keyframe() -> None:
        original()
        callback()

    sender._send_keyframe = send_keyframe  # type: ignore[method-assign]


def negotiated_codec(transceiver: RTCRtpTransceiver) -> RTCRtpCodecParameters | None:
    """The codec a transceiver sends and receives with: the first of the answer's list.

    aiortc keeps the negotiated list in ``transceiver._codecs`` (set by
    ``setRemoteDescription``); its sender sends with the first, and so does the browser, the
    answer offering only codecs both sides have.
    """
    codecs: list[RTCRtpCodecParameters] = transceiver._codecs
    return next((c for c in codecs if c.mimeType.lower() != f"{transceiver.kind}/rtx"), None)


def on_remb(sender: RTCRtpSender, callback: Callable[[int], None]) -> None:
    """Call ``callback(bitrate)`` for each REMB the far end of ``sender`` sends about it."""
    original = sender._handle_rtcp_packet

    async def handle(packet: Any) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                bitrate, ssrcs = unpack_remb_fci(packet.fci)
            except ValueError:
                pass
            else:
                if sender._ssrc in ssrcs:
                    callback(bitrate)
        await original(packet)

    sender._handle_rtcp_packet = handle  # type: ignore[method-assign]


def media_ssrcs(receiver: RTCRtpReceiver) -> list[int]:
    return [source.source for source in receiver.getSynchronizationSources()]


async def send_pli(receiver: RTCRtpReceiver) -> int:
    """Ask the far end of ``receiver`` for a keyframe; returns how many streams were asked."""
    ssrcs = media_ssrcs(receiver)
    for ssrc in ssrcs:
        await receiver._send_rtcp_pli(ssrc)
    return len(ssrcs)


async def send_remb(receiver: RTCRtpReceiver, bitrate: int) -> bool:
    """Tell the far end of ``receiver`` the most it should send, in bits per second."""
    rtcp_ssrc = receiver._RTCRtpReceiver__rtcp_ssrc  # type: ignore[attr-defined]
    ssrcs = media_ssrcs(receiver)
    if rtcp_ssrc is None or not ssrcs:
        return False
    packet = RtcpPsfbPacket(
        fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=pack_remb_fci(bitrate, ssrcs)
    )
    await receiver._send_rtcp(packet)
    return True


def cap_remb(receiver: RTCRtpReceiver, cap: Callable[[], int | None]) -> None:
    """Lower the receiver's own REMB (its estimate of the sending leg) to ``cap()``.

    The sending client then never aims above what the receiving leg can take, whichever
    of the two reports reaches it last.
    """
    original: Callable[[Any], Awaitable[None]] = receiver._send_rtcp

    async def send(packet: Any) -> None:
        limit = cap()
        if limit is not None and isinstance(packet, RtcpPsfbPacket):
            if packet.fmt == RTCP_PSFB_APP:
                try:
                    bitrate, ssrcs = unpack_remb_fci(packet.fci)
                except ValueError:
                    pass
                else:
                    if bitrate > limit:
                        packet.fci = pack_remb_fci(limit, ssrcs)
        await original(packet)

    receiver._send_rtcp = send  # type: ignore[method-assign]


def packets_sent(sender: RTCRtpSender) -> int:
    """RTP packets ``sender`` has sent so far (its ``packetsSent``, read synchronously)."""
    return int(sender._RTCRtpSender__packet_count)  # type: ignore[attr-defined]
