"""A recorded call downloads as one file that plays both participants: a real call between two
aiortc peers over UDP on loopback, each sending its own tone and its own picture, recorded with
both consents. After the call the recording is composed (409 ``recording_not_ready`` meanwhile);
the download then holds one audio track with both tones mixed and one video track with the
patient on the left and the doctor on the right. Its file and folder are the server's alone."""

from __future__ import annotations

import asyncio
import io
import math
import os
import stat
import struct
import time
from array import array
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import av
import pytest
from aiohttp.test_utils import TestServer
from aiortc import AudioStreamTrack, VideoStreamTrack
from PIL import Image, ImageStat

from consult.calls import repository as calls_repository
from consult.http.routing import SERVICES
from consult.storage import tables as t
from tests.integration.test_calls import Peer, calls_of, video_consultation
from tests.support import ApiClient, loopback_only, rows

PATIENT_TONE, DOCTOR_TONE = 440, 880
PATIENT_COLOUR, DOCTOR_COLOUR = (220, 40, 40), (40, 40, 220)


@pytest.fixture(autouse=True)
def _loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    loopback_only(monkeypatch)


class Tone(AudioStreamTrack):
    """A steady sine at ``hz`` (aiortc's silent track, with its pacing, filled in)."""

    def __init__(self, hz: int) -> None:
        super().__init__()
        self.hz = hz

    async def recv(self) -> Any:
        frame = await super().recv()
        rate, start = frame.sample_rate, frame.pts
        wave = (
            round(8000 * math.sin(2 * math.pi * self.hz * (start + i) / rate))
            for i in range(frame.samples)
        )
        frame.planes[0].update(struct.pack(f"<{frame.samples}h", *wave))
        return frame


class Card(VideoStreamTrack):
    """A picture of one colour, at aiortc's pace."""

    def __init__(self, colour: tuple[int, int, int]) -> None:
        super().__init__()
        self.image = Image.new("RGB", (320, 240), colour)

    async def recv(self) -> Any:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame.from_image(self.image)
        frame.pts, frame.time_base = pts, time_base
        return frame


class Participant(Peer):
    def __init__(self, ws: Any, cid: int, hz: int, colour: tuple[int, int, int]) -> None:
        super().__init__(ws, cid, video=False)
        (sender,) = self.pc.getSenders()  # Peer's silent track makes way for the tone
        sender.replaceTrack(Tone(hz))
        self.pc.addTrack(Card(colour))


def clock_now() -> datetime:
    return datetime.now(UTC)


def power(samples: array, hz: float, rate: int = 48_000) -> float:
    """The signal's power at ``hz`` (Goertzel: one bin of the DFT)."""
    coefficient = 2 * math.cos(2 * math.pi * hz / rate)
    before = earlier = 0.0
    for sample in samples:
        before, earlier = sample + coefficient * before - earlier, before
    return before * before + earlier * earlier - coefficient * before * earlier


def decode(body: bytes) -> tuple[list[str], array, list[Image.Image]]:
    """The file's stream kinds, its sound (mono, 48 kHz) and its pictures."""
    sound = array("h")
    pictures = []
    with av.open(io.BytesIO(body)) as container:
        kinds = [s.type for s in container.streams]
        resampler = av.AudioResampler(format="s16", layout="mono", rate=48_000)
        for frame in container.decode(*container.streams):
            if isinstance(frame, av.AudioFrame):
                for piece in resampler.resample(frame):
                    sound.frombytes(bytes(piece.planes[0])[: piece.samples * 2])
            else:
                pictures.append(frame.to_image())
    return kinds, sound, pictures


def dominant(picture: Image.Image, box: tuple[int, int, int, int]) -> tuple[float, ...]:
    return tuple(ImageStat.Stat(picture.crop(box)).mean)


async def download(client: ApiClient, url: str) -> tuple[int, bytes]:
    async with client.session.get(
        client.base_url + url, headers={"Authorization": f"Bearer {client.token}"}
    ) as response:
        return response.status, await response.read()


async def test_a_recorded_call_downloads_as_one_file_with_both_voices_and_both_pictures(
    server: TestServer, database_url: str, api: Any, sockets: Any, tmp_path: Path
) -> None:
    doctor, doctor_ws, patient, patient_ws, cid = await video_consultation(api, sockets)
    anna = Participant(patient_ws, cid, PATIENT_TONE, PATIENT_COLOUR)
    house = Participant(doctor_ws, cid, DOCTOR_TONE, DOCTOR_COLOUR)
    try:
        assert (await anna.offer())["ok"] and (await house.offer())["ok"]
        deadline = time.monotonic() + 30
        while not (anna.frames >= 5 and house.frames >= 5 and anna.samples and house.samples):
            assert time.monotonic() < deadline, "media both ways"
            await asyncio.sleep(0.05)
        for ws in (patient_ws, doctor_ws):
            ack = await ws.emit("call:record-consent", {"consultation_id": cid, "consent": True})
            assert ack["ok"], ack
        await patient_ws.until("call:recording", lambda r: r["recording"])
        await asyncio.sleep(3.0)  # a short call: three seconds recorded

        composer = calls_of(server).composer
        async with composer._one_at_a_time:  # composing waits while we look at the download
            assert (await patient_ws.emit("call:hangup", {"consultation_id": cid}))["ok"]
            (recording,) = await rows(database_url, t.recordings)
            assert recording.status == "composing"
            url = f"/api/consultations/{cid}/recordings/{recording.id}"
            answer = await patient.call("GET", url, expect=409)
            assert answer["error"]["code"] == "recording_not_ready"
            assert "prepared for playback" in answer["error"]["message"]
            # The recorder's tracks, waiting to be composed, are the server's alone too.
            tracks = calls_of(server).recordings.tracks_path(recording.stored_name)
            assert stat.S_IMODE(os.stat(tracks).st_mode) == 0o600
    finally:
        await anna.close()
        await house.close()

    deadline = time.monotonic() + 180
    while (recording := (await rows(database_url, t.recordings))[0]).status == "composing":
        assert time.monotonic() < deadline, "the recording composed"
        await asyncio.sleep(0.2)
    assert recording.status == "ready"
    status, body = await download(doctor, url)
    assert status == 200 and len(body) == recording.size

    kinds, sound, pictures = decode(body)
    assert sorted(kinds) == ["audio", "video"]  # one picture, one sound: what players play
    assert len(sound) > 2 * 48_000, "at least two seconds of sound"
    middle = sound[len(sound) // 2 - 24_000 : len(sound) // 2 + 24_000]  # one second
    noise = max(power(middle, hz) for hz in (300, 660, 1200))
    for hz in (PATIENT_TONE, DOCTOR_TONE):
        assert power(middle, hz) > 50 * noise, f"{hz} Hz is heard"

    picture = pictures[len(pictures) // 2]
    assert picture.size == (1280, 480)
    left = dominant(picture, (160, 120, 480, 360))
    right = dominant(picture, (800, 120, 1120, 360))
    assert left[0] > 150 and left[2] < 90, f"the patient (red) on the left: {left}"
    assert right[2] > 150 and right[0] < 90, f"the doctor (blue) on the right: {right}"

    # Only the composed file is left, the server's alone; the recorder's tracks are gone.
    folder = tmp_path / "recordings"
    assert [p.name for p in folder.iterdir()] == [recording.stored_name]
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(folder / recording.stored_name).st_mode) == 0o600


async def composing(server: TestServer, cid: int, content: bytes) -> tuple[int, str, Path]:
    """A recording row left ``composing`` with ``content`` as the recorder's tracks."""
    calls = calls_of(server)
    stored_name = calls.recordings.new_name(cid)
    async with server.app[SERVICES].db.uow() as uow:
        recording_id = await calls_repository.add_recording(uow, cid, stored_name, clock_now())
        await calls_repository.finish_recording(uow, recording_id, clock_now(), recorded=True)
        await uow.commit()
    tracks = calls.recordings.tracks_path(stored_name)
    tracks.parent.mkdir(parents=True, exist_ok=True)
    tracks.write_bytes(content)
    return recording_id, stored_name, tracks


async def settled(database_url: str) -> Any:
    deadline = time.monotonic() + 120
    while (recording := (await rows(database_url, t.recordings))[0]).status == "composing":
        assert time.monotonic() < deadline, "composing given up"
        await asyncio.sleep(0.1)
    return recording


async def test_a_recording_that_cannot_be_composed_is_failed_and_its_tracks_are_kept(
    server: TestServer, database_url: str, api: Any, sockets: Any
) -> None:
    _, _, patient, _, cid = await video_consultation(api, sockets)
    junk = b"\x1a\x45\xdf\xa3" + b"not a webm after all" * 50
    recording_id, stored_name, tracks = await composing(server, cid, junk)

    calls_of(server).composer.start(recording_id, stored_name, [patient.user["id"], 2], 1.0)
    recording = await settled(database_url)
    assert recording.status == "failed" and recording.sha256 is None
    assert [p.name for p in tracks.parent.iterdir()] == [tracks.name]  # kept, for an operator
    url = f"/api/consultations/{cid}/recordings/{recording_id}"
    answer = await patient.call("GET", url, expect=409)
    assert answer["error"]["code"] == "recording_not_ready"


async def test_a_composition_stopped_by_shutdown_is_failed_and_its_tracks_are_kept(
    server: TestServer, database_url: str, api: Any, sockets: Any
) -> None:
    _, _, patient, _, cid = await video_consultation(api, sockets)
    recording_id, stored_name, tracks = await composing(server, cid, b"\x1a\x45\xdf\xa3")
    composer = calls_of(server).composer
    async with composer._one_at_a_time:  # still waiting for its turn at shutdown
        composer.start(recording_id, stored_name, [patient.user["id"], 2], 1.0)
        await asyncio.sleep(0)
        await composer.close()
    recording = (await rows(database_url, t.recordings))[0]
    assert recording.status == "failed"
    assert tracks.exists()
