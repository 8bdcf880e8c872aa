"""Payload models of the schedulers' dashboard: the queues overview (HTTP, the
``scheduler:overview`` push and, rendered as text, ``/metrics``) and the actions' bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from consult.domain import ConsultationStatus, Form, PresenceStatus
from consult.schemas import DoctorsStateOut, In, Out, PersonOut, SpecialtyCode, SpecialtyOut


class WaitPointOut(Out):
    """One 5-minute bucket of the last hour, from consultation timestamps (an approximation,
    see docs/protocol.md)."""

    start: datetime
    end: datetime
    waiting: int = Field(description="patients waiting at the end of the bucket")
    peak: int = Field(description="the most patients waiting at once during the bucket")


class QueueFiguresOut(Out):
    waiting: int = Field(description="patients queued: waiting, or offered to a doctor")
    offered: int = Field(description="of which offered to a doctor who has not accepted yet")
    longest_wait_seconds: int | None = Field(
        description="now - joined, of the longest-waiting queued patient; null when none"
    )
    median_wait_seconds: int | None
    doctors: DoctorsStateOut
    in_progress: int = Field(description="active consultations")
    breach: bool = Field(description="the longest wait exceeds the breach threshold")
    history: list[WaitPointOut]


class FormFiguresOut(QueueFiguresOut):
    form: Form


class WaitingTicketOut(Out):
    consultation_id: int
    patient: PersonOut
    form: Form
    status: ConsultationStatus
    place: int = Field(description="in its specialty and form queue; 0 = being offered")
    waited_seconds: int
    doctor: PersonOut | None = Field(description="the doctor it is offered to, if any")
    returned: bool = Field(
        description="back in the queue after a consultation cut off by the doctor's side"
    )


class DashboardDoctorOut(Out):
    id: int
    name: str
    state: Literal["free", "busy", "away"] = Field(
        description="free/busy: online with a connected console; away: away, or in the "
        "disconnection grace"
    )
    forms: list[Form]
    consultations: int = Field(description="offers and active consultations now")
    capacity: int


class SpecialtyFiguresOut(QueueFiguresOut):
    specialty: SpecialtyOut
    forms: list[FormFiguresOut] = Field(description="the same figures for each form")
    tickets: list[WaitingTicketOut] = Field(
        description="queued tickets, longest wait first (at most 50; `waiting` is the count)"
    )
    doctor_list: list[DashboardDoctorOut] = Field(
        description="doctors online or away for this specialty"
    )


class OverviewOut(Out):
    at: datetime
    wait_breach_seconds: int
    history_bucket_seconds: int
    breaches: int = Field(description="specialties in breach")
    specialties: list[SpecialtyFiguresOut]


class MoveTicketIn(In):
    specialty: SpecialtyCode = Field(description="the queue to move it to")


class DoctorAwayOut(Out):
    doctor: PersonOut
    status: PresenceStatus
    withdrawn: list[int] = Field(description="consultations whose offer went back to the queue")
