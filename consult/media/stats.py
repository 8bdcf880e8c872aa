"""Call quality per leg, from the server's side: what the doctor's console shows, and the
process's call figures for /metrics (:class:`CallFigures`).

A *leg* is one participant's connection with the server. For each kind of media it has an
``in`` stream (participant -> server) and an ``out`` stream (server -> participant). Bit and
frame rates are measured between two calls of :meth:`LegMeter.sample`; round-trip time and
loss of the ``out`` stream come from the participant's receiver reports, loss of the ``in``
stream from what the server received.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class StreamStats:
    kind: str
    direction: str  # "in" (participant -> server) or "out" (server -> participant)
    packets: int
    packets_lost: int
    loss: float  # fraction of the packets lost, 0..1, over the whole call
    bitrate: float  # bits per second since the previous sample
    fps: float  # frames (audio: packets) per second since the previous sample
    rtt_ms: float | None = None  # "out" only: from the participant's receiver reports
    jitter: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class LegStats:
    user_id: str
    state: str  # the server peer's connectionState
    streams: list[StreamStats] = field(default_factory=list)

    @property
    def rtt_ms(self) -> float | None:
        values = [s.rtt_ms for s in self.streams if s.rtt_ms is not None]
        return max(values) if values else None

    def stream(self, kind: str, direction: str) -> StreamStats | None:
        return next((s for s in self.streams if (s.kind, s.direction) == (kind, direction)), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "state": self.state,
            "rtt_ms": self.rtt_ms,
            "streams": [s.to_dict() for s in self.streams],
        }


@dataclass
class Counters:
    """Running totals of one stream, read from the feed / outlet that moves its packets."""

    frames: int
    bytes: int


class LegMeter:
    """Turns running totals into rates between samples."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last: dict[tuple[str, str], tuple[float, Counters]] = {}

    def rates(self, key: tuple[str, str], now_counters: Counters) -> tuple[float, float]:
        now = self._clock()
        previous = self._last.get(key)
        self._last[key] = (now, Counters(now_counters.frames, now_counters.bytes))
        if previous is None or now <= previous[0]:
            return 0.0, 0.0
        elapsed = now - previous[0]
        bitrate = (now_counters.bytes - previous[1].bytes) * 8 / elapsed
        fps = (now_counters.frames - previous[1].frames) / elapsed
        return bitrate, fps


def rtp_figures(report: Any, kind: str) -> dict[str, dict[str, Any]]:
    """The aiortc stats report's figures for one kind: inbound, remote-inbound."""
    figures: dict[str, dict[str, Any]] = {}
    for stat in report.values():
        if getattr(stat, "kind", None) != kind:
            continue
        if stat.type == "inbound-rtp":
            figures["in"] = {
                "packets": stat.packetsReceived,
                "lost": max(stat.packetsLost, 0),
                "jitter": stat.jitter,
            }
        elif stat.type == "remote-inbound-rtp":
            rtt = stat.roundTripTime
            figures["out"] = {
                "packets": stat.packetsReceived,
                "lost": max(stat.packetsLost, 0),
                "jitter": stat.jitter,
                "rtt_ms": None if rtt is None else rtt * 1000,
            }
    return figures


def loss_fraction(packets: int, lost: int) -> float:
    total = packets + lost
    return lost / total if total > 0 else 0.0


def leg_stats(
    user_id: str,
    state: str,
    report: Any,
    meter: LegMeter,
    feeds: Mapping[str, Any],
    outlets: Mapping[str, Any],
    kinds: Iterable[str],
) -> LegStats:
    """One leg's figures: aiortc's report for packets, loss and RTT, the feed's sink and
    the outlet's counters for the rates."""
    streams: list[StreamStats] = []
    for kind in kinds:
        figures = rtp_figures(report, kind)
        feed, outlet = feeds.get(kind), outlets.get(kind)
        moved = {
            "in": None if feed is None else Counters(feed.sink.frames, feed.sink.bytes),
            "out": None if outlet is None else Counters(outlet.frames_sent, outlet.bytes_sent),
        }
        for direction, counters in moved.items():
            if counters is None:
                continue
            bitrate, fps = meter.rates((kind, direction), counters)
            got = figures.get(direction, {})
            packets, lost = got.get("packets", 0), got.get("lost", 0)
            streams.append(
                StreamStats(
                    kind,
                    direction,
                    packets,
                    lost,
                    loss_fraction(packets, lost),
                    bitrate,
                    fps,
                    rtt_ms=got.get("rtt_ms"),
                    jitter=got.get("jitter"),
                )
            )
    return LegStats(user_id, state, streams)


@dataclass
class RelayTotals:
    """What this process has relayed since it started, per kind of media: the legs that are
    gone are added in when they go, the live ones when the figures are read."""

    frames: dict[str, int] = field(default_factory=dict)
    packets: dict[str, int] = field(default_factory=dict)
    keyframe_requests: int = 0

    def add(self, other: RelayTotals) -> None:
        for mine, theirs in ((self.frames, other.frames), (self.packets, other.packets)):
            for kind, value in theirs.items():
                mine[kind] = mine.get(kind, 0) + value
        self.keyframe_requests += other.keyframe_requests


@dataclass(frozen=True)
class LegFigures:
    """One live leg for /metrics: its state, round-trip time and loss per stream."""

    consultation_id: str
    user_id: str
    state: str
    rtt_seconds: float | None
    loss: dict[tuple[str, str], float]  # (kind, direction) -> fraction lost, 0..1


@dataclass(frozen=True)
class CallFigures:
    """The calls of this process, as /metrics shows them."""

    calls: int
    recordings: int
    legs: list[LegFigures]
    relayed: RelayTotals


def leg_figures(consultation_id: str, user_id: str, state: str, report: Any) -> LegFigures:
    """A leg's figures from its aiortc stats report (the quality meter is left alone)."""
    loss: dict[tuple[str, str], float] = {}
    rtts: list[float] = []
    for kind in ("audio", "video"):
        for direction, got in rtp_figures(report, kind).items():
            loss[(kind, direction)] = loss_fraction(got["packets"], got["lost"])
            if got.get("rtt_ms") is not None:
                rtts.append(got["rtt_ms"] / 1000)
    return LegFigures(consultation_id, user_id, state, max(rtts) if rtts else None, loss)
