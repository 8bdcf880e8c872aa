"""The media relay over real UDP on loopback: two aiortc client peers through the server's.

The clients are what a page would be: one RTCPeerConnection each with the server's peer for
the consultation. The patient's client sends video frames whose picture encodes a frame
number and the sender (bars of black and white, a grey level), and a 440 Hz tone; the
doctor's sends its own numbers and a 1,000 Hz tone. Each side decodes what arrives and reads
the numbers and the tone back, so a test sees that the *sent* media arrived, in order, from
the right sender. The server forwards encoded frames only (its receivers never decode).

The server's and clients' peers gather host candidates on 127.0.0.1 only (aioice leaves the
loopback address out by default; the fixture puts it back in its place), no STUN.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import math
import struct
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import pytest
from aiortc import (
    AudioStreamTrack,
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.mediastreams import MediaStreamError

from consult.errors import Conflict, Invalid, NotAllowed
from consult.media.call import CallRoom
from consult.media.ice import IceConfig
from consult.media.registry import CallRegistry
from tests.support import loopback_only, wait_for

WIDTH, HEIGHT = 160, 120
BITS = 8
PATIENT, DOCTOR = "patient-1", "doctor-1"
TAGS = {PATIENT: 60, DOCTOR: 200}  # grey level of the picture's lower half
TONES = {PATIENT: 440.0, DOCTOR: 1000.0}


@pytest.fixture(autouse=True)
def _loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    loopback_only(monkeypatch)


# -- what the clients send --------------------------------------------------------------------


def numbered_frame(number: int, tag: int) -> av.VideoFrame:
    frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
    luma = frame.planes[0]
    stride = luma.line_size
    bar = WIDTH // BITS
    top = bytearray()
    for i in range(BITS):
        top += bytes([235 if number >> (BITS - 1 - i) & 1 else 16]) * bar
    top += bytes(stride - len(top))
    bottom = bytes([tag]) * WIDTH + bytes(stride - WIDTH)
    luma.update(bytes(top) * (HEIGHT // 2) + bottom * (HEIGHT - HEIGHT // 2))
    for chroma in frame.planes[1:]:
        chroma.update(bytes([128]) * chroma.buffer_size)
    return frame


def read_frame(frame: av.VideoFrame) -> tuple[int, int]:
    """The number and the tag a decoded picture carries."""
    frame = frame.reformat(format="yuv420p") if frame.format.name != "yuv420p" else frame
    luma = frame.planes[0]
    data, stride = bytes(luma), luma.line_size
    bar = frame.width // BITS
    row = frame.height // 4 * stride
    number = 0
    for i in range(BITS):
        number = number << 1 | (data[row + i * bar + bar // 2] > 128)
    tag = data[frame.height * 3 // 4 * stride + frame.width // 2]
    return number, tag


class NumberedVideo(VideoStreamTrack):
    def __init__(self, tag: int) -> None:
        super().__init__()
        self.tag = tag
        self.sent = 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = numbered_frame(self.sent % (1 << BITS), self.tag)
        frame.pts, frame.time_base = pts, time_base
        self.sent += 1
        return frame


class Tone(AudioStreamTrack):
    RATE, SAMPLES = 48_000, 960

    def __init__(self, frequency: float) -> None:
        super().__init__()
        self.frequency = frequency
        self.sent = 0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self.sent:
            wait = self._start + self.sent * self.SAMPLES / self.RATE - time.time()
            await asyncio.sleep(wait)
        else:
            self._start = time.time()
        n0 = self.sent * self.SAMPLES
        samples = [
            int(8000 * math.sin(2 * math.pi * self.frequency * (n0 + i) / self.RATE))
            for i in range(self.SAMPLES)
        ]
        frame = av.AudioFrame(format="s16", layout="mono", samples=self.SAMPLES)
        frame.planes[0].update(struct.pack(f"<{self.SAMPLES}h", *samples))
        frame.pts, frame.sample_rate = n0, self.RATE
        frame.time_base = fractions.Fraction(1, self.RATE)
        self.sent += 1
        return frame


def dominant_frequency(frame: av.AudioFrame) -> float:
    """Zero crossings of the first channel: enough to tell 440 Hz from 1,000 Hz."""
    raw = bytes(frame.planes[0])
    channels = len(frame.layout.channels)
    count = frame.samples
    values = struct.unpack(f"<{count * channels}h", raw[: count * channels * 2])[::channels]
    crossings = sum(1 for a, b in zip(values, values[1:], strict=False) if (a < 0) != (b < 0))
    return crossings / 2 / (count / frame.sample_rate)


# -- the clients ------------------------------------------------------------------------------


@dataclass
class Received:
    frames: list[tuple[float, int, int]] = field(default_factory=list)  # (time, number, tag)
    tones: list[float] = field(default_factory=list)


class Client:
    """One participant's page: one peer with the server, sending and decoding."""

    def __init__(
        self, user_id: str, *, video: bool = True, audio: bool = True, video_codec: str = ""
    ) -> None:
        self.user_id = user_id
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.video = NumberedVideo(TAGS[user_id]) if video else None
        self.audio = Tone(TONES[user_id]) if audio else None
        self.received = Received()
        self.tasks: list[asyncio.Task[None]] = []
        if self.audio is not None:
            self.pc.addTrack(self.audio)
        if self.video is not None:
            self.pc.addTrack(self.video)
        if video_codec:  # a browser that can send and receive only this codec
            for transceiver in self.pc.getTransceivers():
                if transceiver.kind == "video":
                    codecs = transceiver.receiver.getCapabilities("video").codecs
                    transceiver.setCodecPreferences(
                        [c for c in codecs if c.mimeType == video_codec]
                    )
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        self.tasks.append(asyncio.create_task(self._consume(track)))

    async def _consume(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                if isinstance(frame, av.VideoFrame):
                    number, tag = read_frame(frame)
                    self.received.frames.append((time.monotonic(), number, tag))
                elif isinstance(frame, av.AudioFrame):
                    self.received.tones.append(dominant_frequency(frame))

    async def connect(self, room: CallRoom) -> RTCSessionDescription:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        answer = await room.offer(self.user_id, self.pc.localDescription.sdp, "offer")
        await self.pc.setRemoteDescription(answer)
        return answer

    async def add_video(self, room: CallRoom) -> None:
        """Voice -> video on the same peer: a new m-line, renegotiated."""
        self.video = NumberedVideo(TAGS[self.user_id])
        self.pc.addTrack(self.video)
        await self.connect(room)

    async def close(self) -> None:
        await self.pc.close()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


def frames_from(client: Client, sender: str) -> list[tuple[float, int, int]]:
    return [f for f in client.received.frames if abs(f[2] - TAGS[sender]) < 40]


def tones_near(client: Client, frequency: float) -> int:
    return sum(1 for f in client.received.tones if abs(f - frequency) < frequency * 0.1)


def media_threads() -> int:
    """Threads other than the loop's executor pool (which the clients' encoders grow)."""
    return sum(1 for t in threading.enumerate() if not t.name.startswith("asyncio_"))


@pytest.fixture
async def registry() -> AsyncIterator[CallRegistry]:
    calls = CallRegistry(IceConfig())
    yield calls
    await calls.close()


@pytest.fixture
async def clients() -> AsyncIterator[list[Client]]:
    made: list[Client] = []
    yield made
    for client in made:
        await client.close()


def assert_in_order(frames: list[tuple[float, int, int]]) -> None:
    """Each number follows the one before (mod 256), skipping at most a few lost frames."""
    numbers = [n for _, n, _ in frames]
    steps = [(b - a) % (1 << BITS) for a, b in zip(numbers, numbers[1:], strict=False)]
    assert all(1 <= s <= 5 for s in steps), f"frame numbers out of order: {numbers[:60]}"


# -- the tests --------------------------------------------------------------------------------


async def test_video_and_audio_arrive_both_ways_as_sent(
    registry: CallRegistry, clients: list[Client]
) -> None:
    room = registry.open("c1", [PATIENT, DOCTOR])
    patient, doctor = Client(PATIENT), Client(DOCTOR)
    clients += [patient, doctor]
    answer = await patient.connect(room)
    await doctor.connect(room)
    # Both legs speak one codec each way: nothing to transcode.
    assert "VP8/90000" in answer.sdp and "opus/48000" in answer.sdp
    assert "H264" not in answer.sdp and "PCMU" not in answer.sdp

    await wait_for(
        lambda: len(frames_from(doctor, PATIENT)) >= 45 and len(frames_from(patient, DOCTOR)) >= 45,
        20,
        "45 frames each way",
    )
    await wait_for(
        lambda: min(tones_near(doctor, TONES[PATIENT]), tones_near(patient, TONES[DOCTOR])) >= 50,
        10,
        "a second of each tone",
    )
    # Every picture came from the other side, and in the order it was sent.
    assert len(frames_from(doctor, DOCTOR)) == 0 and len(frames_from(patient, PATIENT)) == 0
    assert_in_order(frames_from(doctor, PATIENT))
    assert_in_order(frames_from(patient, DOCTOR))
    # Nothing but the other side's tone (a little leeway for the decoder's first frames).
    assert tones_near(doctor, TONES[DOCTOR]) == 0 and tones_near(patient, TONES[PATIENT]) == 0

    # The server never decoded: its receivers handed encoded frames on, keyframes included.
    for user in (PATIENT, DOCTOR):
        video = room.feed(user, "video")
        assert video is not None and video.sink.frames >= 45 and video.sink.keyframes >= 1
    decoder_threads = [t for t in threading.enumerate() if t.name.endswith("-decoder")]
    # 2 clients x (audio, video) decode; the server's four receivers only wait to stop.
    assert len(decoder_threads) == 8

    # The doctor's console figures, from the server's side of each leg.
    await room.stats(PATIENT)
    await asyncio.sleep(1.0)
    stats = await room.stats(PATIENT)
    assert stats.state == "connected"
    video_in = stats.stream("video", "in")
    video_out = stats.stream("video", "out")
    assert video_in is not None and 20 <= video_in.fps <= 40 and video_in.bitrate > 10_000
    assert video_out is not None and 20 <= video_out.fps <= 40
    audio_in = stats.stream("audio", "in")
    assert audio_in is not None and 40 <= audio_in.fps <= 60 and audio_in.loss < 0.05
    # Round-trip time from the patient's receiver reports (RTCP every 0.5-1.5 s).
    for _ in range(40):
        stats = await room.stats(PATIENT)
        if stats.rtt_ms is not None:
            break
        await asyncio.sleep(0.1)
    assert stats.rtt_ms is not None and 0 <= stats.rtt_ms < 100
    # The doctor's bandwidth estimate for the patient's video (REMB) reached the patient's feed,
    # which passed it on to the patient's encoder.
    patient_video = room.feed(PATIENT, "video")
    assert patient_video is not None
    await wait_for(lambda: patient_video.bitrate_limit is not None, 5, "a REMB from the doctor")
    assert stats.to_dict()["streams"][0]["kind"] in ("audio", "video")


async def test_a_late_subscriber_gets_a_picture_quickly(
    registry: CallRegistry, clients: list[Client]
) -> None:
    room = registry.open("c2", [PATIENT, DOCTOR])
    patient = Client(PATIENT)
    clients.append(patient)
    await patient.connect(room)
    feed = None

    def patient_sends() -> bool:
        nonlocal feed
        feed = room.feed(PATIENT, "video")
        return feed is not None and feed.sink.frames >= 60

    # The patient has sent for two seconds: their encoder's one keyframe is long gone
    # (aiortc sends the next after 3,000 frames, i.e. 100 s).
    await wait_for(patient_sends, 20, "two seconds of the patient's video at the server")
    assert feed is not None and feed.sink.keyframes == 1

    doctor = Client(DOCTOR)
    clients.append(doctor)
    joined = time.monotonic()
    await doctor.connect(room)
    await wait_for(lambda: len(frames_from(doctor, PATIENT)) >= 5, 10, "the doctor's first frames")
    first = frames_from(doctor, PATIENT)[0][0]
    # The attach asked the patient for a keyframe at once; the picture starts with it.
    assert first - joined < 3.0
    assert feed.sink.keyframes >= 2 and feed.keyframe_requests >= 1
    assert_in_order(frames_from(doctor, PATIENT))


async def test_voice_to_video_on_the_same_peer_and_back_to_a_new_peer(
    registry: CallRegistry, clients: list[Client]
) -> None:
    room = registry.open("c3", [PATIENT, DOCTOR])
    patient, doctor = Client(PATIENT, video=False), Client(DOCTOR, video=False)
    clients += [patient, doctor]
    await patient.connect(room)
    await doctor.connect(room)
    await wait_for(lambda: tones_near(doctor, TONES[PATIENT]) >= 25, 15, "voice")
    assert doctor.received.frames == []

    # Voice -> video (the doctor consented): both pages renegotiate on the same peer,
    # one more m-line each.
    pc_before = room._legs[PATIENT].pc
    await patient.add_video(room)
    await doctor.add_video(room)
    assert room._legs[PATIENT].pc is pc_before
    await wait_for(lambda: len(frames_from(doctor, PATIENT)) >= 20, 15, "video after switching")
    assert_in_order(frames_from(doctor, PATIENT))
    heard = tones_near(doctor, TONES[PATIENT])
    await asyncio.sleep(0.5)
    assert tones_near(doctor, TONES[PATIENT]) > heard  # the voice carried on

    # The patient's network drops; their page rejoins with a new peer (new ICE credentials).
    # The doctor's connection is not renegotiated: their outlet moves to the new feed.
    doctor_pc = room._legs[DOCTOR].pc
    await patient.close()
    clients.remove(patient)
    rejoined = Client(PATIENT, video=False)
    clients.append(rejoined)
    await rejoined.connect(room)
    assert room._legs[PATIENT].pc is not pc_before and room._legs[DOCTOR].pc is doctor_pc
    heard = tones_near(doctor, TONES[PATIENT])
    await wait_for(lambda: tones_near(doctor, TONES[PATIENT]) >= heard + 25, 15, "voice again")
    assert room.feed(PATIENT, "video") is None  # back to voice only


async def test_hang_up_and_end_close_every_peer_track_and_task(
    registry: CallRegistry, clients: list[Client]
) -> None:
    tasks_before = len(asyncio.all_tasks())
    threads_before = media_threads()
    room = registry.open("c4", [PATIENT, DOCTOR])
    patient, doctor = Client(PATIENT), Client(DOCTOR)
    clients += [patient, doctor]
    await patient.connect(room)
    await doctor.connect(room)
    await wait_for(lambda: len(frames_from(doctor, PATIENT)) >= 10, 20, "video")
    assert registry.resources() == {"rooms": 1, "peers": 2, "feeds": 4, "outlets": 4, "tasks": 0}
    server_tracks = [
        t.sender.track for leg in room._legs.values() for t in leg.pc.getTransceivers()
    ] + [t.receiver.track for leg in room._legs.values() for t in leg.pc.getTransceivers()]

    # The doctor hangs up: their peer is closed; the patient's outlets wait, detached.
    await room.hangup(DOCTOR)
    assert room.resources() == {"peers": 1, "feeds": 2, "outlets": 2, "tasks": 0}
    assert all(o.feed is None for o in room._legs[PATIENT].outlets.values())

    await registry.end("c4")
    assert registry.resources() == {"rooms": 0, "peers": 0, "feeds": 0, "outlets": 0, "tasks": 0}
    assert all(t is None or t.readyState == "ended" for t in server_tracks)
    for client in list(clients):
        await client.close()
        clients.remove(client)
    # Everything the call started has stopped: tasks, decoder threads, ICE and DTLS.
    await wait_for(
        lambda: len(asyncio.all_tasks()) <= tasks_before and media_threads() <= threads_before,
        5,
        "tasks and threads to end",
    )
    with pytest.raises(Conflict):
        await room.offer(PATIENT, "v=0\r\n", "offer")


async def test_bad_offers_are_refused_and_change_nothing(registry: CallRegistry) -> None:
    room = registry.open("c5", [PATIENT, DOCTOR])
    with pytest.raises(NotAllowed) as stranger:
        await room.offer("someone-else", "v=0\r\n", "offer")
    assert stranger.value.code == "media_not_participant"
    with pytest.raises(Invalid) as answer:
        await room.offer(PATIENT, "v=0\r\n", "answer")
    assert answer.value.code == "media_not_an_offer"
    with pytest.raises(Invalid) as garbage:
        await room.offer(PATIENT, "this is not SDP", "offer")
    assert garbage.value.code in ("media_bad_sdp", "media_no_media")

    # A client that offers only H.264 video shares no codec with the relay's VP8.
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    transceiver = pc.addTransceiver("video")
    codecs = transceiver.receiver.getCapabilities("video").codecs
    transceiver.setCodecPreferences([c for c in codecs if c.mimeType == "video/H264"])
    await pc.setLocalDescription(await pc.createOffer())
    with pytest.raises(Invalid) as h264:
        await room.offer(PATIENT, pc.localDescription.sdp, "offer")
    await pc.close()
    assert h264.value.code == "media_offer_rejected"
    assert room.resources() == {"peers": 0, "feeds": 0, "outlets": 0, "tasks": 0}
    with pytest.raises(Conflict):
        registry.open("c5", [PATIENT, "doctor-2"])


async def test_a_recording_holds_both_sides_as_sent_without_decoding(
    registry: CallRegistry, clients: list[Client], tmp_path: Path
) -> None:
    room = registry.open("c6", [PATIENT, DOCTOR])
    patient, doctor = Client(PATIENT), Client(DOCTOR)
    clients += [patient, doctor]
    await patient.connect(room)
    await doctor.connect(room)
    await wait_for(lambda: len(frames_from(doctor, PATIENT)) >= 5, 20, "video")
    room.start_recording(tmp_path / "c6.webm")
    with pytest.raises(Conflict):
        room.start_recording(tmp_path / "again.webm")
    await asyncio.sleep(2.0)
    summary = await room.stop_recording()
    assert summary is not None and summary.path.exists()
    assert summary.packets[f"{PATIENT}/video"] >= 40 and summary.packets[f"{DOCTOR}/audio"] >= 70

    def read_back() -> dict[str, list[Any]]:
        found: dict[str, list[Any]] = {}
        with av.open(str(summary.path)) as container:
            names = [f"{u}/{k}" for u in sorted([PATIENT, DOCTOR]) for k in ("audio", "video")]
            assert len(container.streams) == len(names)
            found.update({name: [] for name in names})
            # The file's Opus decodes to planar floats; the tone reader wants 16-bit samples.
            resamplers = {
                n: av.AudioResampler(format="s16", layout="mono", rate=48_000) for n in names
            }
            for packet in container.demux():
                name = names[packet.stream.index]
                for frame in packet.decode():
                    if isinstance(frame, av.VideoFrame):
                        found[name].append(read_frame(frame))
                    else:
                        for samples in resamplers[name].resample(frame):
                            found[name].append(dominant_frequency(samples))
        return found

    found = await asyncio.to_thread(read_back)
    for user in (PATIENT, DOCTOR):
        pictures = found[f"{user}/video"]
        assert len(pictures) >= 40 and {abs(tag - TAGS[user]) < 40 for _, tag in pictures} == {True}
        assert_in_order([(0.0, n, t) for n, t in pictures])
        tones = found[f"{user}/audio"]
        assert sum(1 for f in tones if abs(f - TONES[user]) < TONES[user] * 0.1) >= 0.8 * len(tones)


async def test_legs_with_different_codecs_are_transcoded_only_between_them(
    clients: list[Client],
) -> None:
    # Only when a deployment allows a second codec can the legs differ; the default is VP8.
    registry = CallRegistry(
        IceConfig(), codecs={"audio": ("audio/opus",), "video": ("video/VP8", "video/H264")}
    )
    room = registry.open("c7", [PATIENT, DOCTOR])
    patient, doctor = Client(PATIENT, video_codec="video/H264"), Client(DOCTOR)
    clients += [patient, doctor]
    patient_answer = await patient.connect(room)
    doctor_answer = await doctor.connect(room)
    assert "H264/90000" in patient_answer.sdp and "VP8/90000" not in patient_answer.sdp
    assert doctor_answer.sdp.index("VP8/90000") < doctor_answer.sdp.index("H264/90000")
    try:
        await wait_for(
            lambda: min(len(frames_from(doctor, PATIENT)), len(frames_from(patient, DOCTOR))) >= 30,
            20,
            "30 frames each way between H.264 and VP8",
        )
        assert_in_order(frames_from(doctor, PATIENT))
        assert_in_order(frames_from(patient, DOCTOR))
        outlets = {u: leg.outlets for u, leg in room._legs.items()}
        assert outlets[PATIENT]["video"].transcoding and outlets[DOCTOR]["video"].transcoding
        # Audio is Opus on both legs: still forwarded as it came.
        assert not outlets[PATIENT]["audio"].transcoding
        assert tones_near(doctor, TONES[PATIENT]) >= 25
    finally:
        await registry.close()
