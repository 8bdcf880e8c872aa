"""A call's recording made playable: the recorder's tracks composed into one picture and one sound.

The recorder (recorder.py) muxes what it forwards without decoding it: one VP8 and one Opus track
per participant. Players (Chromium, VLC's defaults) play the first video and the first audio
track only, so half of the call would be silent and unseen. After the call, off the live path,
this module decodes those tracks and writes the file that participants download:

- one video track (VP8, ``FPS`` frames per second): the two participants side by side, each
  fitted into a ``SIDE`` box (aspect kept, black around), in the order given (the service puts
  the patient left, the doctor right); a side is black while its participant sends no picture;
- one audio track (Opus, mono, 48 kHz): both voices mixed at their own levels, silence where
  nobody sent sound;
- no video track at all when nobody sent a picture (a voice call).

Run as ``python -m consult.media.composition SOURCE TARGET LEFT RIGHT`` (``LEFT`` and ``RIGHT``
are user ids) in a process of its own (composer.py does), so decoding and encoding never compete
with the event loop for the GIL; it writes ``TARGET`` whole or exits non-zero.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from av.filter import Graph
from PIL import Image

from consult.private_files import private_file

SIDE = (640, 480)
FPS = 15
RATE = 48_000
_AUDIO_TIME = Fraction(1, RATE)
# Decoded frames arrive in file order, interleaved across tracks only roughly: a picture is
# emitted once every track has been read this far past it.
_LAG = 1.0
# Gaps in a participant's sound longer than this are filled with silence (shorter ones are
# jitter, absorbed by the timeline).
_GAP = 0.02


@dataclass(frozen=True)
class Composed:
    seconds: float
    video: bool


@dataclass
class _Side:
    audio: Any = None  # the abuffer source of the mix
    resampler: Any = None
    next_sample: int = 0  # where this side's sound has reached on the output timeline
    pending: deque[tuple[float, Any]] = field(default_factory=deque)  # decoded pictures


def compose(source: Path, target: Path, order: Sequence[str]) -> Composed:
    """Write ``target`` from the recorder's file ``source``; ``order``: the user ids, left first."""
    start, end, video_seen = _survey(source)
    private_file(target)  # FFmpeg writes into it and keeps its mode (0600)
    with av.open(str(source)) as raw, av.open(str(target), "w", format="webm") as out:
        sides = [_Side() for _ in order]
        where = _sides_of(raw, order)
        for stream in raw.streams:
            stream.codec_context.thread_count = 1
        video_out = _video_stream(out) if video_seen else None
        audio_out = out.add_stream("libopus", rate=RATE)
        audio_out.layout = "mono"
        graph, sink = _mixer(sides)
        screen = _Screen(len(sides))
        tick = 0
        last_video = 0.0
        for packet in raw.demux():
            if packet.stream.index not in where or packet.pts is None:
                continue
            side = sides[where[packet.stream.index]]
            now = float(packet.pts * packet.time_base) - start
            decoded: list[Any] = packet.decode()
            for frame in decoded:
                if frame.time is None:
                    continue
                at = frame.time - start
                if packet.stream.type == "audio":
                    _hear(side, frame, at)
                else:
                    side.pending.append((at, frame))
                    last_video = max(last_video, at)
            for quiet in sides:  # a side that sends nothing must not hold the mix back
                _silent_until(quiet, now - _LAG)
            _drain(sink, audio_out, out)
            if video_out is not None:
                tick = _show(sides, screen, video_out, out, tick, now - _LAG)
        if video_out is not None:
            _show(sides, screen, video_out, out, tick, last_video)
            out.mux(video_out.encode(None))
        finish = max(s.next_sample for s in sides)
        for side in sides:
            if finish > side.next_sample:
                side.audio.push(_silence(side.next_sample, finish - side.next_sample))
            side.audio.push(None)
        _drain(sink, audio_out, out)
        out.mux(audio_out.encode(None))
        del graph
    return Composed(seconds=end - start, video=video_seen)


def _survey(source: Path) -> tuple[float, float, bool]:
    """The first and last timestamps (seconds) and whether any picture was recorded."""
    first, last, video = float("inf"), 0.0, False
    with av.open(str(source)) as raw:
        for packet in raw.demux():
            if packet.pts is None or packet.size == 0:
                continue
            at = float(packet.pts * packet.time_base)
            first, last = min(first, at), max(last, at)
            video = video or packet.stream.type == "video"
    return (0.0 if first == float("inf") else first), last, video


def _sides_of(raw: Any, order: Sequence[str]) -> dict[int, int]:
    """Stream index -> side, from the track names the recorder wrote ("<user>/<kind>")."""
    where = {}
    for stream in raw.streams:
        user = str(stream.metadata.get("title", "")).partition("/")[0]
        if user in order and stream.type in ("audio", "video"):
            where[stream.index] = order.index(user)
    if not where:  # a file from before tracks were named: two tracks per user, in id order
        by_id = sorted(order)
        count = min(len(raw.streams), 2 * len(order))
        where = {i: order.index(by_id[i // 2]) for i in range(count)}
    return where


def _video_stream(out: Any) -> Any:
    stream = out.add_stream("libvpx", rate=FPS)
    stream.width, stream.height = SIDE[0] * 2, SIDE[1]
    stream.pix_fmt = "yuv420p"
    stream.bit_rate = 1_500_000
    # libvpx's fast settings: composing must take a fraction of the call's length. One thread:
    # its default (one per core) spins for nothing on frames this small and takes the cores
    # that calls in progress need.
    stream.options = {"deadline": "realtime", "cpu-used": "8"}
    stream.codec_context.thread_count = 1
    return stream


def _mixer(sides: list[_Side]) -> tuple[Graph, Any]:
    graph = Graph()
    mix = graph.add("amix", f"inputs={len(sides)}:duration=longest:normalize=0")
    for i, side in enumerate(sides):
        side.audio = graph.add_abuffer(
            format="s16", layout="mono", sample_rate=RATE, time_base=_AUDIO_TIME
        )
        side.audio.link_to(mix, 0, i)
        side.resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
    sink = graph.add("abuffersink")
    mix.link_to(sink)
    graph.configure()
    return graph, sink


def _hear(side: _Side, frame: Any, at: float) -> None:
    _silent_until(side, at)
    for piece in side.resampler.resample(frame):
        piece.pts, piece.time_base = side.next_sample, _AUDIO_TIME
        side.audio.push(piece)
        side.next_sample += piece.samples


def _silent_until(side: _Side, at: float) -> None:
    """Silence on the side's sound up to ``at`` seconds, if it has a gap longer than _GAP."""
    begins = round(at * RATE)
    if begins - side.next_sample > _GAP * RATE:
        side.audio.push(_silence(side.next_sample, begins - side.next_sample))
        side.next_sample = begins


def _silence(at: int, samples: int) -> Any:
    frame = av.AudioFrame(format="s16", layout="mono", samples=samples)
    for plane in frame.planes:
        plane.update(bytes(plane.buffer_size))
    frame.sample_rate, frame.pts, frame.time_base = RATE, at, _AUDIO_TIME
    return frame


def _drain(sink: Any, stream: Any, out: Any) -> None:
    for frame in _pulled(sink):
        out.mux(stream.encode(frame))


def _pulled(sink: Any) -> Iterator[Any]:
    while True:
        try:
            yield sink.pull()
        except (av.error.BlockingIOError, av.error.EOFError):
            return


class _Screen:
    """The side-by-side picture: redrawn only where a side changed."""

    def __init__(self, sides: int) -> None:
        self.canvas = Image.new("RGB", (SIDE[0] * sides, SIDE[1]))
        self.frame: Any = None

    def show(self, side: int, picture: Any) -> None:
        """Put a decoded picture on its side, scaled to fit (aspect kept), black around."""
        scale = min(SIDE[0] / picture.width, SIDE[1] / picture.height)
        width = max(2, int(picture.width * scale) // 2 * 2)
        height = max(2, int(picture.height * scale) // 2 * 2)
        image = picture.reformat(width=width, height=height, format="rgb24", threads=1).to_image()
        left = side * SIDE[0]
        if image.size != SIDE:
            self.canvas.paste((0, 0, 0), (left, 0, left + SIDE[0], SIDE[1]))
        self.canvas.paste(image, (left + (SIDE[0] - width) // 2, (SIDE[1] - height) // 2))
        self.frame = None

    def current(self) -> Any:
        if self.frame is None:
            self.frame = av.VideoFrame.from_image(self.canvas)
        return self.frame


def _show(
    sides: list[_Side], screen: _Screen, stream: Any, out: Any, tick: int, until: float
) -> int:
    """Encode the side-by-side pictures of every tick up to ``until`` seconds; the next tick."""
    while tick / FPS <= until:
        at = tick / FPS
        for i, side in enumerate(sides):
            latest = None
            while side.pending and side.pending[0][0] <= at:
                latest = side.pending.popleft()[1]
            if latest is not None:  # only the picture shown is converted
                screen.show(i, latest)
        frame = screen.current()
        frame.pts, frame.time_base = tick, Fraction(1, FPS)
        out.mux(stream.encode(frame))
        tick += 1
    return tick


def main(argv: Sequence[str]) -> int:
    source, target, *order = argv
    os.nice(10)  # after the call, behind the calls in progress
    composed = compose(Path(source), Path(target), order)
    print(f"composed {composed.seconds:.1f} s, video: {composed.video}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
