"""Outlets: what one participant is sent. Keyframe gating, timestamps across a rejoin, overflow."""

from __future__ import annotations

import fractions

import av
from aiortc import RTCRtpReceiver
from aiortc.rtcrtpreceiver import RemoteStreamTrack

from consult.media.relay import OUTLET_QUEUE, Feed, Outlet
from tests.unit.test_media_forwarding import RecordingTransport

VIDEO_TB = fractions.Fraction(1, 90000)


def feed(kind: str = "video") -> Feed:
    receiver = RTCRtpReceiver(kind, RecordingTransport())  # type: ignore[arg-type]
    receiver._track = RemoteStreamTrack(kind=kind)
    return Feed(kind, receiver, keyframe_interval=0.0)


def packet(pts: int, keyframe: bool, data: bytes = b"frame") -> av.Packet:
    p = av.Packet(data)
    p.pts, p.time_base, p.is_keyframe = pts, VIDEO_TB, keyframe
    return p


def queued(outlet: Outlet) -> list[av.Packet]:
    items = []
    while not outlet._queue.empty():
        items.append(outlet._queue.get_nowait())
    return items


async def test_video_waits_for_a_keyframe_and_asks_for_one() -> None:
    source, outlet = feed(), Outlet("video")
    outlet.attach(source)
    assert source.keyframe_requests == 1  # asked at once
    source.deliver(packet(3000, False))
    source.deliver(packet(6000, False))
    assert queued(outlet) == []  # a picture cannot start with these
    assert source.keyframe_requests == 3  # and asked again (throttle 0 here)
    source.deliver(packet(9000, True, b"key"))
    source.deliver(packet(12000, False, b"delta"))
    out = queued(outlet)
    assert [bytes(p) for p in out] == [b"key", b"delta"]
    assert [p.pts for p in out] == [0, 3000]  # the outlet's own timeline starts at 0


async def test_a_rejoin_continues_the_timestamps_from_a_keyframe() -> None:
    first, second, outlet = feed(), feed(), Outlet("video")
    outlet.attach(first)
    first.deliver(packet(0, True))
    first.deliver(packet(3000, False))
    outlet.attach(second)  # the sender rejoined with a new peer: a new feed, a new clock
    assert outlet not in first.outlets and outlet in second.outlets
    second.deliver(packet(900_000, False))
    second.deliver(packet(903_000, True))
    second.deliver(packet(906_000, False))
    assert [p.pts for p in queued(outlet)] == [0, 3000, 6000, 9000]


async def test_a_slow_receiver_loses_whole_pictures_not_parts() -> None:
    source, outlet = feed(), Outlet("video")
    outlet.attach(source)
    source.deliver(packet(0, True))
    for i in range(1, OUTLET_QUEUE + 1):
        source.deliver(packet(i * 3000, False))
    assert queued(outlet) == [] and outlet.dropped == OUTLET_QUEUE
    source.deliver(packet(10**6, False))
    assert queued(outlet) == []  # still waiting for a keyframe
    source.deliver(packet(10**6 + 3000, True))
    assert len(queued(outlet)) == 1


async def test_a_slow_receiver_loses_the_oldest_audio() -> None:
    source, outlet = feed("audio"), Outlet("audio")
    outlet.attach(source)
    for i in range(OUTLET_QUEUE + 3):
        p = packet(i * 960, True, bytes([i]))
        p.time_base = fractions.Fraction(1, 48000)
        source.deliver(p)
    out = queued(outlet)
    assert len(out) == OUTLET_QUEUE and bytes(out[0]) == bytes([3]) and outlet.dropped == 3


async def test_a_closed_feed_hands_nothing_on() -> None:
    source, outlet = feed(), Outlet("video")
    outlet.attach(source)
    await source.close()
    assert outlet.feed is None
    source.deliver(packet(0, True))
    assert queued(outlet) == []
