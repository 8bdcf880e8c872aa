"""The aiortc internals consult/media/forwarding.py relies on: these fail if an upgrade moves them.

Each test drives aiortc's own receiver or sender through the hook and checks what comes out
(real VP8 from aiortc's encoder, real RTP / RTCP bytes). The one stand-in is the DTLS
transport under them: it records what they send instead of encrypting it (the relay over real
UDP is tests/integration/test_media_relay.py).
"""

from __future__ import annotations

import asyncio
import fractions
import inspect
import threading
from typing import Any

import av
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc.codecs import get_encoder
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpDecodingParameters,
    RTCRtpReceiveParameters,
)
from aiortc.rtcrtpreceiver import RemoteStreamTrack
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RtcpPacket,
    RtcpPsfbPacket,
    RtpPacket,
    pack_remb_fci,
    unpack_remb_fci,
)

from consult.media.forwarding import (
    Throttle,
    cap_remb,
    is_keyframe,
    negotiated_codec,
    on_keyframe_request,
    on_remb,
    packets_sent,
    receive_encoded,
    send_pli,
    send_remb,
)

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
MEDIA_SSRC = 0x1234
RECEIVE_VP8 = RTCRtpReceiveParameters(
    codecs=[VP8], encodings=[RTCRtpDecodingParameters(ssrc=MEDIA_SSRC, payloadType=96)]
)


class RecordingTransport:
    """Stands in for RTCDtlsTransport: keeps what is sent instead of encrypting it."""

    state = "connected"
    _stats_id = "transport"

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def _register_rtp_receiver(self, receiver: Any, parameters: Any) -> None:
        pass

    def _unregister_rtp_receiver(self, receiver: Any) -> None:
        pass

    def _register_rtp_sender(self, sender: Any, parameters: Any) -> None:
        pass

    def _unregister_rtp_sender(self, sender: Any) -> None:
        pass

    async def _send_rtp(self, data: bytes) -> None:
        self.sent.append(data)

    def _get_stats(self) -> dict[str, Any]:
        return {}

    def rtcp(self) -> list[Any]:
        return [p for data in self.sent for p in RtcpPacket.parse(data)]


def vp8_frames(count: int) -> list[tuple[list[bytes], int]]:
    """Real VP8 from aiortc's encoder: the first frame is a keyframe, the others are not."""
    encoder = get_encoder(VP8)
    frames = []
    for i in range(count):
        frame = av.VideoFrame(64, 48, "yuv420p")
        for plane in frame.planes:
            plane.update(bytes([(i * 40) % 256]) * plane.buffer_size)
        frame.pts, frame.time_base = i * 3000, fractions.Fraction(1, 90000)
        frames.append(encoder.encode(frame))
    return frames


def rtp_packets(frames: list[tuple[list[bytes], int]]) -> list[RtpPacket]:
    packets, seq = [], 100
    for payloads, timestamp in frames:
        for i, payload in enumerate(payloads):
            packet = RtpPacket(payload_type=96, sequence_number=seq, timestamp=timestamp + 5000)
            packet.ssrc, packet.payload = MEDIA_SSRC, payload
            packet.marker = int(i == len(payloads) - 1)
            packets.append(packet)
            seq += 1
    return packets


async def started_receiver(transport: RecordingTransport) -> RTCRtpReceiver:
    receiver = RTCRtpReceiver("video", transport)  # type: ignore[arg-type]
    receiver._track = RemoteStreamTrack(kind="video")
    receive_encoded(receiver)
    receiver._set_rtcp_ssrc(0xABCD)
    await receiver.receive(
        RTCRtpReceiveParameters(
            codecs=[VP8], encodings=[RTCRtpDecodingParameters(ssrc=MEDIA_SSRC, payloadType=96)]
        )
    )
    return receiver


async def test_the_receiver_hands_on_encoded_frames_and_never_decodes() -> None:
    transport = RecordingTransport()
    receiver = await started_receiver(transport)
    frames = vp8_frames(4)
    queue = receiver.track._queue
    got = []
    for packet in rtp_packets(frames):
        await receiver._handle_rtp_packet(packet, arrival_time_ms=0)
        # A frame leaves at its marker packet, not when the next frame begins.
        assert queue.qsize() == (1 if packet.marker else 0)
        if packet.marker:
            got.append(queue.get_nowait())

    assert all(isinstance(p, av.Packet) for p in got), "the receiver decoded"
    assert [bytes(p) for p in got] == [b"".join(_depayload(f[0])) for f in frames]
    # RTP timestamps, with aiortc mapping the first to 0.
    assert [p.pts for p in got] == [f[1] - frames[0][1] for f in frames]
    assert got[3].pts > got[2].pts > got[1].pts > 0
    assert got[0].time_base == fractions.Fraction(1, 90000)
    assert [p.is_keyframe for p in got] == [True, False, False, False]

    # Stopping the receiver ends its track, as with aiortc's decoder thread, and the thread.
    await receiver.stop()
    with pytest.raises(MediaStreamError):
        await asyncio.wait_for(receiver.track.recv(), 1)
    assert not [t for t in threading.enumerate() if t.name == "video-decoder"]


def _depayload(payloads: list[bytes]) -> list[bytes]:
    from aiortc.codecs import depayload

    return [depayload(VP8, p) for p in payloads]


async def test_audio_packets_leave_at_once_and_a_gap_is_not_waited_for() -> None:
    opus = RTCRtpCodecParameters(
        mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111
    )
    receiver = RTCRtpReceiver("audio", RecordingTransport())  # type: ignore[arg-type]
    receiver._track = RemoteStreamTrack(kind="audio")
    receive_encoded(receiver)
    await receiver.receive(
        RTCRtpReceiveParameters(
            codecs=[opus], encodings=[RTCRtpDecodingParameters(ssrc=MEDIA_SSRC, payloadType=111)]
        )
    )
    queue = receiver.track._queue
    for seq in (10, 11, 13, 12, 14):  # 12 comes late: it is dropped, 13 and 14 are not held
        packet = RtpPacket(payload_type=111, sequence_number=seq, timestamp=seq * 960)
        packet.ssrc, packet.payload = MEDIA_SSRC, bytes([seq]) * 20
        await receiver._handle_rtp_packet(packet, arrival_time_ms=0)
    out = [queue.get_nowait() for _ in range(queue.qsize())]
    assert [bytes(p)[0] for p in out] == [10, 11, 13, 14]
    assert [p.pts for p in out] == [0, 960, 3 * 960, 4 * 960]
    await receiver.stop()


async def test_receive_encoded_refuses_a_receiver_that_has_started() -> None:
    receiver = RTCRtpReceiver("video", RecordingTransport())  # type: ignore[arg-type]
    receiver._track = RemoteStreamTrack(kind="video")
    await receiver.receive(
        RTCRtpReceiveParameters(
            codecs=[VP8], encodings=[RTCRtpDecodingParameters(ssrc=MEDIA_SSRC, payloadType=96)]
        )
    )
    with pytest.raises(RuntimeError):
        receive_encoded(receiver)
    await receiver.stop()


async def test_pli_and_remb_go_to_the_sending_side() -> None:
    transport = RecordingTransport()
    receiver = await started_receiver(transport)
    assert await send_pli(receiver) == 0  # no media yet: nobody to ask
    for packet in rtp_packets(vp8_frames(1)):
        await receiver._handle_rtp_packet(packet, arrival_time_ms=0)

    assert await send_pli(receiver) == 1
    assert await send_remb(receiver, 300_000)
    sent = [p for p in transport.rtcp() if isinstance(p, RtcpPsfbPacket)]
    pli = [p for p in sent if p.fmt == RTCP_PSFB_PLI]
    remb = [p for p in sent if p.fmt == RTCP_PSFB_APP]
    assert [(p.ssrc, p.media_ssrc) for p in pli] == [(0xABCD, MEDIA_SSRC)]
    assert unpack_remb_fci(remb[0].fci) == (300_000, [MEDIA_SSRC])

    # The receiver's own estimate is capped at what the far leg takes.
    cap_remb(receiver, lambda: 100_000)
    own = RtcpPsfbPacket(
        fmt=RTCP_PSFB_APP, ssrc=0xABCD, media_ssrc=0, fci=pack_remb_fci(2_000_000, [MEDIA_SSRC])
    )
    await receiver._send_rtcp(own)
    assert unpack_remb_fci(transport.rtcp()[-1].fci) == (100_000, [MEDIA_SSRC])
    await receiver.stop()


class PacketTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self, packet: av.Packet) -> None:
        super().__init__()
        self.packet = packet

    async def recv(self) -> av.Packet:
        return self.packet


async def test_the_sender_packs_packets_without_encoding() -> None:
    (payloads, _), *_ = vp8_frames(1)
    data = b"".join(_depayload(payloads))
    packet = av.Packet(data)
    packet.pts, packet.time_base = 4500, fractions.Fraction(1, 90000)
    sender = RTCRtpSender(PacketTrack(packet), RecordingTransport())  # type: ignore[arg-type]
    encoded = await sender._next_encoded_frame(VP8)
    assert encoded is not None and encoded.timestamp == 4500
    assert b"".join(_depayload(encoded.payloads)) == data


async def test_keyframe_requests_and_remb_from_the_far_end_reach_the_hooks() -> None:
    sender = RTCRtpSender("video", RecordingTransport())  # type: ignore[arg-type]
    requests: list[str] = []
    bitrates: list[int] = []
    on_keyframe_request(sender, lambda: requests.append("keyframe"))
    on_remb(sender, bitrates.append)
    for fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
        await sender._handle_rtcp_packet(RtcpPsfbPacket(fmt=fmt, ssrc=1, media_ssrc=sender._ssrc))
    remb = pack_remb_fci(250_000, [sender._ssrc])
    await sender._handle_rtcp_packet(
        RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=remb)
    )
    other = pack_remb_fci(9_000, [sender._ssrc + 1])
    await sender._handle_rtcp_packet(
        RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=other)
    )
    assert requests == ["keyframe", "keyframe"]
    assert bitrates == [250_000]


def test_the_hooked_signatures_are_the_ones_relied_on() -> None:
    def params(fn: Any) -> list[str]:
        return list(inspect.signature(fn).parameters)

    assert params(RTCRtpReceiver._handle_rtp_packet) == ["self", "packet", "arrival_time_ms"]
    assert params(RTCRtpReceiver._send_rtcp_pli) == ["self", "media_ssrc"]
    assert params(RTCRtpReceiver._send_rtcp) == ["self", "packet"]
    assert params(RTCRtpSender._handle_rtcp_packet) == ["self", "packet"]
    assert params(RTCRtpSender._send_keyframe) == ["self"]
    assert params(RTCRtpSender._next_encoded_frame) == ["self", "codec"]


def test_keyframes_are_told_apart() -> None:
    (key, _), (delta, _) = vp8_frames(2)
    assert is_keyframe("video/VP8", b"".join(_depayload(key)))
    assert not is_keyframe("video/VP8", b"".join(_depayload(delta)))
    assert not is_keyframe("video/VP8", b"")
    assert is_keyframe("video/H264", b"\x00\x00\x00\x01\x67\x42")  # SPS
    assert not is_keyframe("video/H264", b"\x00\x00\x00\x01\x41\x9a")  # a P slice
    assert is_keyframe("audio/opus", b"\x01")


def test_throttle_lets_one_through_per_interval() -> None:
    now = [0.0]
    throttle = Throttle(0.3, clock=lambda: now[0])
    assert throttle.ready()
    now[0] = 0.29
    assert not throttle.ready()
    now[0] = 0.31
    assert throttle.ready()
    assert not throttle.ready()


async def test_the_negotiated_codec_is_read_from_the_transceiver() -> None:
    offerer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    answerer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        offerer.addTransceiver("video")
        offerer.addTransceiver("audio")
        await offerer.setLocalDescription(await offerer.createOffer())
        await answerer.setRemoteDescription(offerer.localDescription)
        video, audio = answerer.getTransceivers()
        h264 = [
            c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == "video/H264"
        ]
        video.setCodecPreferences(h264)  # too late for the list already negotiated
        codec = negotiated_codec(video)
        assert codec is not None and codec.mimeType == "video/VP8" and codec.clockRate == 90000
        codec = negotiated_codec(audio)
        assert codec is not None and codec.mimeType == "audio/opus"
    finally:
        await offerer.close()
        await answerer.close()


async def test_a_keyframe_request_still_marks_an_encoding_sender() -> None:
    sender = RTCRtpSender("video", RecordingTransport())  # type: ignore[arg-type]
    on_keyframe_request(sender, lambda: None)
    sender._send_keyframe()
    assert sender._RTCRtpSender__force_keyframe is True  # type: ignore[attr-defined]


async def test_packets_sent_reads_the_count_the_stats_report() -> None:
    sender = RTCRtpSender("video", RecordingTransport())  # type: ignore[arg-type]
    assert packets_sent(sender) == 0
    sender._RTCRtpSender__packet_count = 42  # type: ignore[attr-defined]
    (outbound,) = [s for s in (await sender.getStats()).values() if s.type == "outbound-rtp"]
    assert packets_sent(sender) == outbound.packetsSent == 42
