"""Turns committed domain events into Socket.IO emits to the users concerned."""

from __future__ import annotations

import socketio

from consult.events import (
    ConsultationEnded,
    ConsultationInterrupted,
    ConsultationMatched,
    Event,
    MessagePosted,
    MessagesRead,
    OfferMade,
    OfferWithdrawn,
    PresenceChanged,
    Push,
    QueueChanged,
    RecordChanged,
    TicketDropped,
    TicketMoved,
    Typing,
)
from consult.signaling.fanout import QueueFanout
from consult.signaling.server import user_room


class Notifier:
    def __init__(self, sio: socketio.AsyncServer, fanout: QueueFanout) -> None:
        self._sio = sio
        self._fanout = fanout

    async def __call__(self, event: Event) -> None:
        emit = self._sio.emit
        match event:
            case Push(user_ids=users, name=name, payload=payload):
                await emit(name, payload, to=[user_room(u) for u in users])
            case ConsultationMatched(consultation=c) | ConsultationEnded(consultation=c):
                name = (
                    "consultation:matched"
                    if isinstance(event, ConsultationMatched)
                    else "consultation:ended"
                )
                rooms = [user_room(c["patient"]["id"])]
                if c.get("doctor"):
                    rooms.append(user_room(c["doctor"]["id"]))
                await emit(name, {"consultation": c}, to=rooms)
            case MessagePosted(patient_id=p, doctor_id=d, message=m):
                await emit("chat:message", {"message": m}, to=[user_room(p), user_room(d)])
            case MessagesRead(patient_id=p, doctor_id=d, receipt=r):
                await emit("chat:read", r, to=[user_room(p), user_room(d)])
            case Typing(to_user_id=u, typing=typing):
                await emit("chat:typing", typing, to=user_room(u))
            case RecordChanged(patient_id=p, consultation_id=cid):
                await emit("record:changed", {"consultation_id": cid}, to=user_room(p))
            case OfferMade(doctor_id=d, consultation=c, expires_at=expires):
                await emit(
                    "queue:offer", {"consultation": c, "expires_at": expires}, to=user_room(d)
                )
            case OfferWithdrawn(doctor_id=d, consultation_id=cid, reason=why):
                await emit(
                    "queue:offer-withdrawn",
                    {"consultation_id": cid, "reason": why},
                    to=user_room(d),
                )
            case TicketDropped(patient_id=p, consultation_id=cid, reason=why):
                await emit(
                    "queue:dropped", {"consultation_id": cid, "reason": why}, to=user_room(p)
                )
            case TicketMoved(patient_id=p, consultation=c):
                await emit("queue:moved", {"consultation": c}, to=user_room(p))
            case ConsultationInterrupted(patient_id=p, consultation_id=cid, reason=why):
                await emit(
                    "consultation:interrupted",
                    {"consultation_id": cid, "reason": why},
                    to=user_room(p),
                )
            case PresenceChanged(doctor_id=d, status=status, reason=why):
                await emit("presence:changed", {"status": status, "reason": why}, to=user_room(d))
            case QueueChanged(specialty=s, form=f):
                self._fanout.changed(s, f)
