"""The queue ticket payload: it carries booking's slots as alternatives, so it lives here rather
than in consult/schemas.py (which booking's own models import)."""

from __future__ import annotations

from pydantic import Field

from consult.booking.schemas import SlotOut
from consult.schemas import ConsultationOut, DoctorsStateOut, EtaOut, Out


class TicketOut(Out):
    consultation: ConsultationOut
    place: int = Field(description="1 = next in line; 0 = being connected to a doctor now")
    waiting: int = Field(description="tickets in this specialty and form queue")
    eta: EtaOut
    doctors: DoctorsStateOut
    long_wait: bool = Field(
        description="no doctor can serve the ticket now or the upper estimate passes "
        "CONSULT_ALTERNATIVES_THRESHOLD (alternatives are then offered when there are slots)"
    )
    next: str = Field(description="what happens next, in words for the patient")
    alternatives: list[SlotOut] = Field(
        default_factory=list, description="free slots offered when the wait is long or no doctor"
    )
