"""Recording a call: the forwarded packets muxed into a WebM file, never decoded.

A :class:`Recorder` is one more subscriber of the call's feeds: an
:class:`~consult.media.relay.Outlet` per participant and kind (so it starts at a keyframe and
its timestamps stay continuous when a participant rejoins), read on the event loop and written
by a thread of its own (file I/O and muxing stay off the loop). The file holds one track per
participant and kind (VP8 and Opus, as negotiated). Whether to record at all (both sides'
consent) is decided before :meth:`CallRoom.start_recording` is called.

The container header needs each video track's size, which only the first keyframe carries, so
packets are held until every video track has one (or ``open_after`` seconds have passed; a
voice call has no keyframes to wait for).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from aiortc.mediastreams import MediaStreamError

from consult.media.relay import Outlet
from consult.private_files import private_dir, private_file

log = logging.getLogger(__name__)

CODECS = {"video": ("libvpx", 90_000), "audio": ("libopus", 48_000)}
RECORDABLE = ("video/vp8", "audio/opus")
_TICK = object()
MAX_HELD = 3_000  # packets held before the header can be written (about 20 s of a call)


def vp8_size(data: bytes) -> tuple[int, int] | None:
    """A VP8 keyframe's width and height (RFC 6386 9.1), or None for other frames."""
    if len(data) < 10 or data[0] & 0x01 or data[3:6] != b"\x9d\x01\x2a":
        return None
    width = int.from_bytes(data[6:8], "little") & 0x3FFF
    height = int.from_bytes(data[8:10], "little") & 0x3FFF
    return width, height


@dataclass(frozen=True)
class RecordingSummary:
    path: Path
    seconds: float
    packets: dict[str, int]  # per track ("<user>/<kind>")


@dataclass
class _Track:
    name: str
    kind: str
    outlet: Outlet
    first_at: float | None = None
    size: tuple[int, int] | None = None
    packets: int = 0


class Recorder:
    def __init__(
        self, path: Path, tracks: Iterable[tuple[str, str]], *, open_after: float = 5.0
    ) -> None:
        """``tracks``: (user id, kind) pairs, in the order they appear in the file."""
        self.path = path
        self._tracks = [
            _Track(f"{user}/{kind}", kind, Outlet(kind, label=f"recording {user}/{kind}"))
            for user, kind in tracks
        ]
        self._by_key = {t.name: t for t in self._tracks}
        self._open_after = open_after
        self._started = time.monotonic()
        self._queue: queue.Queue[Any] = queue.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._thread = threading.Thread(target=self._write, name=f"recorder {path.name}")
        self._error: BaseException | None = None

    def outlet(self, user_id: str, kind: str) -> Outlet | None:
        track = self._by_key.get(f"{user_id}/{kind}")
        return None if track is None else track.outlet

    def start(self) -> None:
        self._started = time.monotonic()
        self._thread.start()
        self._tasks = [asyncio.create_task(self._read(t)) for t in self._tracks]

    async def _read(self, track: _Track) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                packet = await track.outlet.recv()
                feed = track.outlet.feed
                if not isinstance(packet, av.Packet) or (
                    feed is not None
                    and feed.codec is not None
                    and feed.codec.mimeType.lower() not in RECORDABLE
                ):
                    continue  # an H.264 leg (allowed only by a non-default codec list)
                if track.first_at is None:
                    track.first_at = time.monotonic()
                self._queue.put((track, packet))

    async def stop(self) -> RecordingSummary:
        """Stop reading, finish the file (in the writer thread), and say what it holds."""
        for track in self._tracks:
            track.outlet.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._queue.put(None)
        await asyncio.to_thread(self._thread.join)
        if self._error is not None:
            raise RuntimeError(f"recording {self.path.name} failed") from self._error
        return RecordingSummary(
            self.path,
            time.monotonic() - self._started,
            {t.name: t.packets for t in self._tracks},
        )

    # -- the writer thread -----------------------------------------------------------------

    def _write(self) -> None:
        container: Any = None
        streams: dict[str, Any] = {}
        held: list[tuple[_Track, av.Packet]] = []
        try:
            while True:
                try:
                    item = self._queue.get(timeout=0.5)
                except queue.Empty:
                    item = _TICK  # no packet: still look whether the header can be written
                if item is None:
                    break
                if item is not _TICK:
                    track, packet = item
                    if track.kind == "video" and track.size is None:
                        track.size = vp8_size(bytes(packet))
                    held.append((track, packet))
                    del held[:-MAX_HELD]
                if container is None and self._ready():
                    container, streams = self._open()
                if container is not None:
                    for track, packet in held:
                        self._mux(container, streams[track.name], track, packet)
                    held.clear()
            if container is None and held:
                container, streams = self._open()
                for track, packet in held:
                    self._mux(container, streams[track.name], track, packet)
        except BaseException as exc:  # reported by stop(); the call itself goes on
            log.exception("recording %s failed", self.path.name)
            self._error = exc
        finally:
            if container is not None:
                container.close()

    def _ready(self) -> bool:
        videos = [t for t in self._tracks if t.kind == "video"]
        if all(t.size is not None for t in videos):
            return any(t.first_at is not None for t in self._tracks)
        return time.monotonic() - self._started > self._open_after

    def _open(self) -> tuple[Any, dict[str, Any]]:
        private_dir(self.path.parent)
        private_file(self.path)  # FFmpeg writes into it and keeps its mode (0600)
        container: Any = av.open(str(self.path), "w", format="webm")
        streams: dict[str, Any] = {}
        for track in self._tracks:
            codec, rate = CODECS[track.kind]
            stream: Any
            if track.kind == "video":
                stream = container.add_stream(codec, rate=30)
                stream.width, stream.height = track.size or (640, 480)
                stream.pix_fmt = "yuv420p"
            else:
                stream = container.add_stream(codec, rate=rate)
                stream.layout = "stereo"
            stream.metadata["title"] = track.name  # whose track: composition.py reads it
            streams[track.name] = stream
        return container, streams

    def _mux(self, container: Any, stream: Any, track: _Track, packet: av.Packet) -> None:
        _, rate = CODECS[track.kind]
        assert packet.pts is not None and track.first_at is not None
        # Tracks start when their first packet arrived, on one clock for the whole file.
        offset = round((track.first_at - self._started) * rate)
        out = av.Packet(bytes(packet))
        out.pts = out.dts = offset + packet.pts
        out.time_base = Fraction(1, rate)
        out.is_keyframe = packet.is_keyframe
        out.stream = stream
        container.mux(out)
        track.packets += 1
