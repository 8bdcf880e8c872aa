"""Composing a recorder's file (one track per participant and kind) into one playable file,
on files built like the recorder's: a voice call gives one mixed sound and no picture, and a
track that starts late is placed at its time, silence before it."""

from __future__ import annotations

import math
from array import array
from fractions import Fraction
from pathlib import Path

import av

from consult.media.composition import compose
from tests.integration.test_recording_playback import power

RATE = 48_000


def tone_frames(hz: int, seconds: float, start: float) -> list[av.AudioFrame]:
    frames = []
    for n in range(int(seconds * 50)):  # 20 ms frames
        first = round((start + n / 50) * RATE)
        samples = array(
            "h", (round(8000 * math.sin(2 * math.pi * hz * (first + i) / RATE)) for i in range(960))
        )
        frame = av.AudioFrame(format="s16", layout="mono", samples=960)
        frame.planes[0].update(samples.tobytes())
        frame.sample_rate, frame.pts, frame.time_base = RATE, first, Fraction(1, RATE)
        frames.append(frame)
    return frames


def recorder_like(path: Path, tones: dict[str, tuple[int, float]]) -> None:
    """A WebM as the recorder writes it: video and audio tracks named "<user>/<kind>" for each
    participant; only sound recorded (a voice call): ``tones`` user -> (Hz, start second)."""
    with av.open(str(path), "w", format="webm") as out:
        streams = {}
        for user in tones:
            video = out.add_stream("libvpx", rate=30)
            video.width, video.height, video.pix_fmt = 640, 480, "yuv420p"
            video.metadata["title"] = f"{user}/video"
            audio = out.add_stream("libopus", rate=RATE)
            audio.layout = "mono"
            audio.metadata["title"] = f"{user}/audio"
            streams[user] = audio
        for user, (hz, start) in tones.items():
            for frame in tone_frames(hz, 2.0, start):
                out.mux(streams[user].encode(frame))
            out.mux(streams[user].encode(None))


def sound_of(path: Path) -> tuple[list[str], array]:
    sound = array("h")
    with av.open(str(path)) as container:
        kinds = [s.type for s in container.streams]
        resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        for frame in container.decode(audio=0):
            for piece in resampler.resample(frame):
                sound.frombytes(bytes(piece.planes[0])[: piece.samples * 2])
    return kinds, sound


def test_a_voice_call_gives_one_sound_with_both_voices_and_no_picture(tmp_path: Path) -> None:
    source, target = tmp_path / "c.tracks.webm", tmp_path / "c.webm"
    recorder_like(source, {"7": (440, 0.0), "9": (880, 1.0)})  # the doctor speaks a second later
    composed = compose(source, target, ["7", "9"])
    assert composed.video is False
    kinds, sound = sound_of(target)
    assert kinds == ["audio"]
    assert 2.7 * RATE < len(sound) < 3.3 * RATE  # from the first sound to the last
    alone, both = sound[int(0.2 * RATE) : int(0.8 * RATE)], sound[int(1.2 * RATE) : int(1.8 * RATE)]
    assert power(alone, 440) > 50 * power(alone, 880)  # the first second: the patient alone
    assert power(both, 440) > 50 * power(both, 660) and power(both, 880) > 50 * power(both, 660)
    assert target.stat().st_mode & 0o777 == 0o600
