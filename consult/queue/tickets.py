"""The patient's view of the queue: place in line, a wait estimate (a range), the doctors'
state, what happens next, and alternative slots when waiting is not worth it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import sqlalchemy as sa

from consult.booking.schemas import SlotOut
from consult.clock import Clock, as_utc
from consult.domain import QUEUED_STATUSES, Actor, ConsultationStatus
from consult.errors import Conflict
from consult.queue import eta
from consult.queue import repository as repo
from consult.queue.doctors import doctor_loads, doctors_summary
from consult.queue.policy import QueueRules
from consult.queue.schemas import TicketOut
from consult.queue.service import ConsultationService
from consult.schemas import DoctorsStateOut, EtaOut, StartConsultationIn, TicketUpdateOut
from consult.storage import tables as t
from consult.storage.uow import Database, UnitOfWork

_C = t.consultations.c
_RECENT = 50  # finished consultations the estimate learns from, per specialty
EXACT_PLACES = 60  # places in line given an exact range; further back, a lower bound

Alternatives = Callable[[Actor, str, int], Awaitable[list[SlotOut]]]


@dataclass(frozen=True)
class QueueView:
    """One specialty-and-form queue at one moment."""

    specialty: str
    form: str
    tickets: list[sa.Row]  # queued rows, offered first, then waiting in queue order
    doctors: DoctorsStateOut
    model: eta.DurationModel
    busy_elapsed: list[float]
    waiting: int
    _estimates: dict[int, eta.Estimate] = field(default_factory=dict)

    def estimate(self, ahead: int) -> eta.Estimate:
        """Beyond ``EXACT_PLACES`` the estimate of the last exact place is shown as a lower bound
        ("more than ..."). The table up to the place asked for is computed in one go
        (``estimate_queue`` shares the work: ~60 places cost about what two do one by one)."""
        capped = min(ahead, EXACT_PLACES)
        if capped not in self._estimates:
            upto = min(max(capped, self.waiting - 1), EXACT_PLACES)
            computed = eta.estimate_queue(
                upto + 1, self.doctors.online, self.busy_elapsed, self.model
            )
            self._estimates.update(enumerate(computed))
        found = self._estimates[capped]
        if ahead > capped and found.high_seconds is not None:
            return replace(found, high_seconds=None, beyond_horizon=True)
        return found

    def update_for(self, index: int) -> TicketUpdateOut:
        row = self.tickets[index]
        offered = row.status == ConsultationStatus.OFFERED
        ahead = 0 if offered else index - (len(self.tickets) - self.waiting)
        estimate = None if offered else self.estimate(ahead)
        return TicketUpdateOut(
            consultation_id=row.id,
            status=row.status,
            place=0 if offered else ahead + 1,
            waiting=self.waiting,
            eta=_eta_out(estimate)
            if not offered
            else EtaOut(
                low_minutes=0, high_minutes=0, basis="a doctor is being asked to accept now"
            ),
            doctors=self.doctors,
        )


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
        self._estimates = EstimateCache()

    async def join(self, actor: Actor, request: StartConsultationIn) -> TicketOut:
        """Join the queue and answer with the ticket; the estimate shown is kept."""
        consultation = await self._consultations.start(actor, request)
        ticket = await self.ticket(actor, consultation.id)
        if ticket is None:  # left already, by a concurrent request of the patient's
            raise Conflict("the ticket was closed meanwhile", code="ticket_closed")
        await self._consultations.record_estimate(
            consultation.id,
            _seconds(ticket.eta.low_minutes),
            _seconds(ticket.eta.high_minutes),
        )
        return ticket

    async def ticket(self, actor: Actor, consultation_id: int | None = None) -> TicketOut | None:
        """The patient's current ticket (None when they are not queued). Asked for by id (the
        answer to a join), a ticket already accepted by a doctor is answered as place 0."""
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
            view = await queue_view(
                uow,
                consultation.specialty.code,
                consultation.form,
                self._clock.now(),
                self._estimates,
            )
        if consultation.status == ConsultationStatus.ACTIVE:
            return TicketOut(
                consultation=consultation,
                place=0,
                waiting=view.waiting,
                eta=EtaOut(low_minutes=0, high_minutes=0, basis="a doctor has accepted you"),
                doctors=view.doctors,
                next="Your doctor has accepted: the consultation is open.",
            )
        index = next(i for i, r in enumerate(view.tickets) if r.id == consultation.id)
        update = view.update_for(index)
        alternatives: list[SlotOut] = []
        long_wait = update.eta.high_minutes is None or (
            update.eta.high_minutes * 60 > self._rules.alternatives_threshold.total_seconds()
        )
        if long_wait and update.place > 0 and self._alternatives is not None:
            alternatives = await self._alternatives(
                actor, consultation.specialty.code, self._rules.alternatives_count
            )
        return TicketOut(
            consultation=consultation,
            place=update.place,
            waiting=update.waiting,
            eta=update.eta,
            doctors=update.doctors,
            next=_next_step(update, bool(alternatives)),
            alternatives=alternatives,
        )

    async def updates(self, specialty: str, form: str) -> list[tuple[int, TicketUpdateOut]]:
        """(patient id, their ticket) for everyone queued for this specialty and form."""
        async with self._db.reader() as uow:
            view = await queue_view(uow, specialty, form, self._clock.now(), self._estimates)
        return [(row.patient_id, view.update_for(i)) for i, row in enumerate(view.tickets)]


class EstimateCache:
    """Per-place estimates cost milliseconds each and change slowly: a queue's table of them is
    reused while its inputs (doctors online, whole minutes each busy doctor has been busy, the
    duration model) stay the same, for at most ``ttl``. Owned by one TicketService."""

    def __init__(self, ttl: timedelta = timedelta(seconds=15)) -> None:
        self._ttl = ttl
        self._tables: dict[tuple[object, ...], tuple[datetime, dict[int, eta.Estimate]]] = {}

    def table(
        self,
        now: datetime,
        specialty: str,
        form: str,
        online: int,
        busy_elapsed: list[float],
        model: eta.DurationModel,
    ) -> dict[int, eta.Estimate]:
        key = (
            specialty,
            form,
            online,
            tuple(sorted(int(e // 60) for e in busy_elapsed)),
            round(model.median_seconds),
            round(model.spread, 2),
        )
        found = self._tables.get(key)
        if found is None or found[0] <= now:
            if len(self._tables) > 256:  # stale keys of long-gone states
                self._tables = {k: v for k, v in self._tables.items() if v[0] > now}
            found = (now + self._ttl, {})
            self._tables[key] = found
        return found[1]


async def queue_view(
    uow: UnitOfWork,
    specialty: str,
    form: str,
    now: datetime,
    cache: EstimateCache | None = None,
) -> QueueView:
    tickets = (
        await uow.conn.execute(
            sa.select(_C.id, _C.patient_id, _C.status, _C.rank_at)
            .where(_C.specialty_code == specialty, _C.form == form, _C.status.in_(QUEUED_STATUSES))
            # Offers first ("offered" sorts before "waiting"), then queue order.
            .order_by(_C.status, _C.rank_at, _C.id)
        )
    ).all()
    doctors, busy_elapsed = await doctors_state(uow, specialty, form, now)
    model = eta.DurationModel.fit(await recent_durations(uow, specialty, form), form)
    estimates = (
        cache.table(now, specialty, form, doctors.online, busy_elapsed, model) if cache else {}
    )
    return QueueView(
        specialty=specialty,
        form=form,
        tickets=list(tickets),
        doctors=doctors,
        model=model,
        busy_elapsed=busy_elapsed,
        waiting=sum(1 for r in tickets if r.status == ConsultationStatus.WAITING),
        _estimates=estimates,
    )


async def doctors_state(
    uow: UnitOfWork, specialty: str, form: str, now: datetime
) -> tuple[DoctorsStateOut, list[float]]:
    """Doctors serving this queue, and how long each busy one's consultation has run (the
    counting rules are in ``doctors.py``, shared with the schedulers' dashboard)."""
    return doctors_summary(await doctor_loads(uow, now, specialty, form), specialty, form)


async def recent_durations(uow: UnitOfWork, specialty: str, form: str) -> list[float]:
    rows = await uow.conn.execute(
        sa.select(_C.started_at, _C.ended_at)
        .where(
            _C.specialty_code == specialty,
            _C.form == form,
            _C.status == ConsultationStatus.ENDED,
            _C.started_at.is_not(None),
        )
        .order_by(_C.ended_at.desc())
        .limit(_RECENT)
    )
    return [(as_utc(e) - as_utc(s)).total_seconds() for s, e in rows]


def _next_step(update: TicketUpdateOut, has_alternatives: bool) -> str:
    if update.place == 0:
        return "A doctor is being asked to take you now; the consultation opens when they accept."
    if update.doctors.online == 0:
        text = "No doctor of this specialty is online now; you stay in line until one comes."
    else:
        text = "You will be connected when a doctor is free; keep this page open."
    if has_alternatives:
        text += " You can also book one of the slots below instead."
    return text


def _seconds(minutes: int | None) -> int | None:
    return None if minutes is None else minutes * 60


def _eta_out(estimate: eta.Estimate | None) -> EtaOut:
    if estimate is None or estimate.no_doctor_online:
        return EtaOut(low_minutes=None, high_minutes=None, basis="no doctor online now")
    return EtaOut(
        low_minutes=estimate.low_seconds // 60,
        high_minutes=None if estimate.high_seconds is None else estimate.high_seconds // 60,
        basis=estimate.text,
    )
