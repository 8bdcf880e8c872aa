"""Turns committed domain events into Socket.IO emits to the users concerned."""

from __future__ import annotations

import socketio

from consult.events import (
    ConsultationEnded,
    ConsultationMatched,
    Event,
    MessagePosted,
    RecordChanged,
)
from consult.signaling.server import user_room


class Notifier:
    def __init__(self, sio: socketio.AsyncServer) -> None:
        self._sio = sio

    async def __call__(self, event: Event) -> None:
        match event:
            case ConsultationMatched(consultation=c) | ConsultationEnded(consultation=c):
                name = (
                    "consultation:matched"
                    if isinstance(event, ConsultationMatched)
                    else "consultation:ended"
                )
                rooms = [user_room(c["patient"]["id"])]
                if c.get("doctor"):
                    rooms.append(user_room(c["doctor"]["id"]))
                await self._sio.emit(name, {"consultation": c}, to=rooms)
            case MessagePosted(patient_id=p, doctor_id=d, message=m):
                await self._sio.emit(
                    "chat:message", {"message": m}, to=[user_room(p), user_room(d)]
                )
            case RecordChanged(patient_id=p, consultation_id=cid):
                await self._sio.emit("record:changed", {"consultation_id": cid}, to=user_room(p))
