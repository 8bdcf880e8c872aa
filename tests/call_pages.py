"""A participant's call page as web/common/call.js runs it, with an aiortc peer over real UDP.

Each page sends numbered pictures with a grey level of its own (``TAGS``), so that a test sees
pictures arriving from the *other* side. It offers through ``ws``: anything with an
``async emit(event, data)`` returning the ack (tests.support.SocketClient, or an adapter over a
cluster tab) that raises a Socket.IO error, ``TimeoutError`` or ``ConnectionError`` when its
connection goes away. Watching (``watch()``), it re-offers as the page does: when pictures stop
for ``STALL`` seconds, a new peer and a new offer, again after ``RETRY`` seconds while refused.

Used by tests/integration/test_call_nodes.py (two processes) and tests/cluster/ (HAProxy).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.request
from typing import Any, Protocol

import av
import socketio
from aiortc import (
    AudioStreamTrack,
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError

from tests.integration.test_media_relay import NumberedVideo, read_frame
from tests.metrics_reader import parse_metrics, sample
from tests.support import wait_for

STALL, RETRY = 2.0, 1.0  # as web/common/call.js: STALL_MS, RETRY_MS
TAGS = {"patient": 60, "doctor": 200}  # each side's grey level
GONE = (socketio.exceptions.SocketIOError, TimeoutError, ConnectionError)


class Node(Protocol):
    @property
    def url(self) -> str: ...


class Signalling(Protocol):
    async def emit(self, event: str, data: Any = None) -> dict[str, Any]: ...


class Page:
    """One participant's call: one peer with the server at a time, offered through ``ws``."""

    def __init__(self, role: str, ws: Signalling, cid: int, *, video: bool = True) -> None:
        self.role, self.ws, self.cid, self.video = role, ws, cid, video
        self.pc: RTCPeerConnection | None = None
        self.pictures: list[tuple[float, int]] = []  # (time, grey level) of each one decoded
        self.refusals: list[str] = []  # error codes of offers refused on the way
        self.tasks: list[asyncio.Task[None]] = []
        self.watching: asyncio.Task[None] | None = None
        self.sdp = ""

    async def join(self) -> dict[str, Any]:
        """A new peer and its offer; the ack (the answer applied when there is one)."""
        await self._close_peer()
        pc = self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTrack(AudioStreamTrack())
        if self.video:
            pc.addTrack(NumberedVideo(TAGS[self.role]))
        pc.on("track", lambda track: self.tasks.append(asyncio.create_task(self._eat(track))))
        await pc.setLocalDescription(await pc.createOffer())
        try:
            ack = await self.ws.emit(
                "call:offer", {"consultation_id": self.cid, "sdp": pc.localDescription.sdp}
            )
        except GONE:  # its node went away
            return {"ok": False, "error": {"code": "disconnected"}}
        if ack["ok"]:
            self.sdp = ack["data"]["sdp"]
            await pc.setRemoteDescription(RTCSessionDescription(self.sdp, ack["data"]["type"]))
        return ack

    async def rejoin(self) -> None:
        """Offer until answered (the page's "reconnecting")."""
        while True:
            ack = await self.join()
            if ack["ok"]:
                return
            self.refusals.append(ack["error"]["code"])
            await asyncio.sleep(RETRY)

    def watch(self) -> None:
        """From now on, rejoin when pictures stop for STALL seconds (the server's peer died)."""
        self.watching = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(0.1)
            last = self.pictures[-1][0] if self.pictures else 0.0
            if time.monotonic() - last > STALL:
                await self.rejoin()
                await wait_for(lambda: self.since(time.monotonic() - 1) > 0, 30, "pictures")

    def since(self, moment: float, role: str | None = None) -> int:
        """Pictures decoded since ``moment`` from the other side (``role``'s grey level)."""
        other = role or ("doctor" if self.role == "patient" else "patient")
        return sum(1 for at, grey in self.pictures if at >= moment and abs(grey - TAGS[other]) < 40)

    async def _eat(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                if isinstance(frame, av.VideoFrame):
                    self.pictures.append((time.monotonic(), read_frame(frame)[1]))

    async def _close_peer(self) -> None:
        if self.pc is not None:
            await self.pc.close()
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks.clear()

    async def close(self) -> None:
        if self.watching is not None:
            self.watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.watching
        await self._close_peer()


async def pictures_both_ways(patient: Page, doctor: Page, since: float, what: str) -> None:
    await wait_for(lambda: patient.since(since) >= 10 and doctor.since(since) >= 10, 20, what)


def calls_held(node: Node) -> float:
    """The calls whose room this node holds (its /metrics, read from loopback)."""
    with urllib.request.urlopen(node.url + "/metrics", timeout=5) as response:
        text = response.read().decode()
    return parse_metrics(text)[sample("consult_calls_in_progress")]
