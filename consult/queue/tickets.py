"""The patient's view of the queue: place in line, a wait estimate (a range), the doctors'
state, what happens next, and alternative slots when waiting is not worth it. The queue itself,
read at one moment, is ``queue_view.py``'s."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from consult.booking.schemas import SlotOut
from consult.clock import Clock
from consult.domain import QUEUED_STATUSES, Actor, ConsultationStatus
from consult.estimates.tables import EstimateTables
from consult.queue import repository as repo
from consult.queue.policy import QueueRules
from consult.queue.queue_view import (
    EXACT_PLACES,
    NOBODY_ELSE,
    OFFERED_ETA,
    is_long_wait,
    queue_position,
    queue_view,
)
from consult.queue.schemas import TicketOut
from consult.queue.service import ConsultationService
from consult.schemas import ConsultationOut, EtaOut, StartConsultationIn
from consult.storage import tables as t
from consult.storage.uow import Database, UnitOfWork

_C = t.consultations.c

Alternatives = Callable[[Actor, str, int], Awaitable[list[SlotOut]]]


class TicketService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        rules: QueueRules,
        consultations: ConsultationService,
        alternatives: Alternatives | None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._rules = rules
        self._consultations = consultations
        self._alternatives = alternatives
        self._estimates = EstimateTables(max_places=EXACT_PLACES + 1)

    async def join(self, actor: Actor, request: StartConsultationIn) -> TicketOut:
        """Join the queue and answer with the ticket. The ticket is read, and the estimate it
        shows stored, in the joining transaction: one unit of work per join."""
        tickets: list[TicketOut] = []

        async def estimate(uow: UnitOfWork, consultation: ConsultationOut) -> EtaOut:
            tickets[:] = [await self._ticket_in(uow, consultation)]
            return tickets[0].eta

        await self._consultations.start(actor, request, estimate=estimate)
        return await self._with_alternatives(actor, tickets[0])

    async def ticket(self, actor: Actor, consultation_id: int | None = None) -> TicketOut | None:
        """The patient's current ticket (None when they are not queued). Asked for by id, a
        ticket already accepted by a doctor is answered as place 0."""
        statuses = [*QUEUED_STATUSES]
        if consultation_id is not None:
            statuses.append(ConsultationStatus.ACTIVE)
        async with self._db.reader() as uow:
            where = [_C.patient_id == actor.user_id, _C.status.in_(statuses)]
            if consultation_id is not None:
                where.append(_C.id == consultation_id)
            (consultation,) = (await repo.list_consultations(uow, *where)) or (None,)
            if consultation is None:
                return None
            ticket = await self._ticket_in(uow, consultation)
        return await self._with_alternatives(actor, ticket)

    async def _ticket_in(self, uow: UnitOfWork, consultation: ConsultationOut) -> TicketOut:
        """One patient's ticket from counts (their place, the queue's length), not from the
        whole queue: a join must not read every waiting row."""
        specialty, form = consultation.specialty.code, str(consultation.form)
        now = self._clock.now()
        ahead, waiting, excluded = await queue_position(uow, consultation.id, now)
        view = await queue_view(
            uow, specialty, form, now, self._estimates, tickets=False, places=ahead + 1
        )
        view = replace(view, waiting=waiting)
        next_step = None
        if consultation.status == ConsultationStatus.ACTIVE:
            place, eta_out = 0, EtaOut(low_minutes=0, high_minutes=0, basis=_ACCEPTED)
            next_step = "Your doctor has accepted: the consultation is open."
        elif consultation.status == ConsultationStatus.OFFERED:
            place, eta_out = 0, OFFERED_ETA
        else:
            place, eta_out = ahead + 1, view.eta_for(ahead, excluded)
        return TicketOut(
            consultation=consultation,
            place=place,
            waiting=waiting,
            eta=eta_out,
            doctors=view.doctors,
            long_wait=place > 0 and is_long_wait(eta_out, self._rules.alternatives_threshold),
            next=next_step or _next_step(place, view.doctors.online, eta_out.basis == NOBODY_ELSE),
        )

    async def _with_alternatives(self, actor: Actor, ticket: TicketOut) -> TicketOut:
        if not (ticket.long_wait and self._alternatives is not None):
            return ticket
        alternatives = await self._alternatives(
            actor, ticket.consultation.specialty.code, self._rules.alternatives_count
        )
        if not alternatives:
            return ticket
        return ticket.model_copy(
            update={
                "alternatives": alternatives,
                "next": ticket.next + _BOOK_INSTEAD,
            }
        )

    async def updates(self, specialty: str, form: str) -> list[tuple[int, dict[str, Any]]]:
        """(patient id, their ``queue:ticket`` payload, a ``TicketUpdateOut`` as JSON) for
        everyone queued for this specialty and form."""
        async with self._db.reader() as uow:
            view = await queue_view(uow, specialty, form, self._clock.now(), self._estimates)
        return view.payloads(self._rules.alternatives_threshold)


_ACCEPTED = "a doctor has accepted you"
_BOOK_INSTEAD = " You can also book one of the slots below instead."


def _next_step(place: int, online: int, nobody_else: bool) -> str:
    """``nobody_else``: every doctor online declined this ticket a short while ago."""
    if place == 0:
        return "A doctor is being asked to take you now; the consultation opens when they accept."
    if online == 0:
        return "No doctor of this specialty is online now; you stay in line until one comes."
    if nobody_else and online == 1:
        return (
            "The doctor online cannot take you just now. You keep your place in line: a doctor "
            "who comes online takes you at once, and this one may be asked again in a few "
            "minutes."
        )
    if nobody_else:
        return (
            "The doctors online cannot take you just now. You keep your place in line: a doctor "
            "who comes online takes you at once, and these may be asked again in a few minutes."
        )
    return "You will be connected when a doctor is free; keep this page open."
