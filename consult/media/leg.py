"""One participant's leg of a call: their server peer, the feeds it receives and the outlets
it sends (wired by :class:`~consult.media.call.CallRoom`), and what it has relayed."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiortc import RTCPeerConnection, RTCRtpSender

from consult.media.forwarding import packets_sent
from consult.media.relay import Feed, Outlet
from consult.media.stats import LegMeter, RelayTotals


@dataclass
class Leg:
    """One participant's server peer and the feeds and outlets on it."""

    user_id: str
    pc: RTCPeerConnection
    feeds: dict[str, Feed] = field(default_factory=dict)
    outlets: dict[str, Outlet] = field(default_factory=dict)
    senders: dict[str, RTCRtpSender] = field(default_factory=dict)  # the outlets' senders
    hooked: set[int] = field(default_factory=set)  # id() of receivers / senders set up
    ufrag: str | None = None
    meter: LegMeter = field(default_factory=LegMeter)

    def relayed(self) -> RelayTotals:
        """What this leg has relayed so far."""
        return RelayTotals(
            frames={kind: outlet.frames_sent for kind, outlet in self.outlets.items()},
            packets={kind: packets_sent(sender) for kind, sender in self.senders.items()},
            keyframe_requests=sum(feed.keyframe_requests for feed in self.feeds.values()),
        )

    async def close(self) -> None:
        """Close its feeds, outlets and peer."""
        for feed in self.feeds.values():
            await feed.close()
        for outlet in self.outlets.values():
            outlet.stop()
        await self.pc.close()
