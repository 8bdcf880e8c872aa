"""The schedulers' ratings figures, live: when a rating is given or changed, the schedulers'
sockets get the whole summary of the last 30 days again as ``ratings:summary`` (coalesced and
rate-limited as the queues' overview is: ``RoomPush``)."""

from __future__ import annotations

from typing import Any

import socketio

from consult.events import RatingStored
from consult.ratings.service import RatingService
from consult.signaling.scheduler_push import RoomPush


class RatingsPush(RoomPush):
    event_name = "ratings:summary"
    watched = (RatingStored,)

    def __init__(
        self,
        sio: socketio.AsyncServer,
        ratings: RatingService,
        *,
        interval: float = 0.25,
        local_audience: bool = True,
    ) -> None:
        super().__init__(sio, interval=interval, local_audience=local_audience)
        self._ratings = ratings

    async def payload(self) -> dict[str, Any]:
        return (await self._ratings.summary()).model_dump(mode="json")
