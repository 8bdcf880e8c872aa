"""Every call room of this process: opened for a consultation, found again, ended, closed
on shutdown, and counted for /metrics."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from consult.errors import Conflict, NotFound
from consult.media.call import CallEvent, CallRoom
from consult.media.host_address import ANY_ADDRESS, MediaAddress
from consult.media.ice import IceConfig
from consult.media.offers import DEFAULT_CODECS
from consult.media.stats import CallFigures, LegFigures, RelayTotals


class CallRegistry:
    """Every call room of this process; the app closes them all on shutdown."""

    def __init__(
        self,
        ice: IceConfig,
        *,
        codecs: Mapping[str, tuple[str, ...]] = DEFAULT_CODECS,
        keyframe_interval: float = 0.3,
        on_event: Callable[[CallEvent], None] | None = None,
        address: MediaAddress = ANY_ADDRESS,
    ) -> None:
        self.ice = ice
        self.address = address
        self._codecs = codecs
        self._keyframe_interval = keyframe_interval
        self._on_event = on_event
        self._rooms: dict[str, CallRoom] = {}
        self._totals = RelayTotals()  # of every leg dropped in this process

    def open(self, consultation_id: str, participants: Iterable[str]) -> CallRoom:
        """The consultation's room, created on first use. The caller has checked access."""
        room = self._rooms.get(consultation_id)
        wanted = frozenset(participants)
        if room is not None and not room.closed:
            if room.participants != wanted:
                raise Conflict(
                    "This consultation's call has other participants.",
                    code="media_participants_changed",
                )
            return room
        room = CallRoom(
            consultation_id,
            wanted,
            ice=self.ice,
            codecs=self._codecs,
            keyframe_interval=self._keyframe_interval,
            on_event=self._on_event,
            totals=self._totals,
            address=self.address,
        )
        self._rooms[consultation_id] = room
        return room

    def get(self, consultation_id: str) -> CallRoom:
        room = self._rooms.get(consultation_id)
        if room is None or room.closed:
            raise NotFound("This consultation has no call.", code="media_no_call")
        return room

    async def end(self, consultation_id: str) -> None:
        """Close the consultation's call (nothing to do when there is none)."""
        room = self._rooms.pop(consultation_id, None)
        if room is not None:
            await room.close()

    async def close(self) -> None:
        rooms, self._rooms = list(self._rooms.values()), {}
        for room in rooms:
            await room.close()

    async def figures(self) -> CallFigures:
        """This process's calls for /metrics: calls and recordings in progress, each live
        leg's state, round-trip time and loss, and what was relayed since the start."""
        rooms = [room for room in self._rooms.values() if not room.closed]
        relayed = RelayTotals()
        relayed.add(self._totals)
        legs: list[LegFigures] = []
        for room in rooms:
            relayed.add(room.relayed())
            legs += await room.leg_figures()
        return CallFigures(
            calls=len(rooms),
            recordings=sum(room.recording() for room in rooms),
            legs=legs,
            relayed=relayed,
        )

    def resources(self) -> dict[str, int]:
        totals = {"rooms": len(self._rooms), "peers": 0, "feeds": 0, "outlets": 0, "tasks": 0}
        for room in self._rooms.values():
            for key, value in room.resources().items():
                totals[key] += value
        return totals
