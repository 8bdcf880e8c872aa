"""One specialty-and-form queue at one moment: its tickets in order, its doctors' state, and
the wait estimate at every place (read in one transaction; ``TicketService`` answers and
pushes tickets from it)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from consult.domain import QUEUED_STATUSES, ConsultationStatus
from consult.estimates import wait_model
from consult.estimates.tables import EstimateTables
from consult.queue import exclusions
from consult.queue import repository as repo
from consult.queue.doctors import DoctorLoad, doctor_loads, doctors_summary
from consult.schemas import DoctorsStateOut, EtaOut, TicketUpdateOut
from consult.storage import tables as t
from consult.storage.uow import UnitOfWork

_C = t.consultations.c
_RECENT = 50  # finished consultations the estimate learns from, per specialty
EXACT_PLACES = 60  # places in line given an exact range; further back, a lower bound

OFFERED_ETA = EtaOut(low_minutes=0, high_minutes=0, basis="a doctor is being asked to accept now")
NOBODY_ELSE = "no other doctor online now"


@dataclass(frozen=True)
class QueueView:
    """One specialty-and-form queue at one moment."""

    specialty: str
    form: str
    tickets: list[sa.Row]  # queued rows, offered first, then waiting in queue order
    doctors: DoctorsStateOut
    model: wait_model.DurationModel
    busy_elapsed: list[float]
    waiting: int
    # Estimates by place (``estimates/tables.py``), at least as deep as the view was read for.
    table: list[wait_model.Estimate] = field(default_factory=list)
    # This queue's doctors, to estimate a ticket without the doctors who declined it.
    loads: tuple[DoctorLoad, ...] = ()
    # The waiting tickets that exclude doctors now: consultation id -> those doctors.
    excluded: Mapping[int, frozenset[int]] = field(default_factory=dict)

    def estimate(self, ahead: int) -> wait_model.Estimate:
        """Beyond ``EXACT_PLACES`` the estimate of the last exact place is shown as a lower bound
        ("more than ...")."""
        capped = min(ahead, EXACT_PLACES)
        if capped >= len(self.table):  # deeper than the view was read for: compute here
            self.table[:] = wait_model.estimate_queue(
                capped + 1, self.doctors.online, self.busy_elapsed, self.model
            )
        found = self.table[capped]
        if ahead > capped and found.high_seconds is not None:
            return replace(found, high_seconds=None, beyond_horizon=True)
        return found

    def counted(self, excluded: frozenset[int]) -> frozenset[int]:
        """Of the doctors a ticket excludes, those the queue's estimate counts (online for it,
        with a connected console): only they change the ticket's estimate."""
        if not excluded:  # nearly every ticket, on every push
            return excluded
        return frozenset(d.doctor_id for d in self.loads if d.online and d.doctor_id in excluded)

    def eta_for(self, ahead: int, excluded: frozenset[int] = frozenset()) -> EtaOut:
        """The estimate at this place. While doctors online for this queue are excluded from
        the ticket (they declined it), it is estimated without them: they will not take it."""
        counted = self.counted(excluded)
        if not counted:
            return eta_out(self.estimate(ahead))
        others = [d for d in self.loads if d.doctor_id not in counted]
        state, busy_elapsed = doctors_summary(others, self.specialty, self.form)
        capped = min(ahead, EXACT_PLACES)
        found = wait_model.estimate_wait(capped, state.online, busy_elapsed, self.model)
        if ahead > capped and found.high_seconds is not None:
            found = replace(found, high_seconds=None, beyond_horizon=True)
        return eta_out(found, declined=True)

    def update_for(self, index: int, long_wait_after: timedelta) -> TicketUpdateOut:
        row = self.tickets[index]
        offered = row.status == ConsultationStatus.OFFERED
        ahead = 0 if offered else index - (len(self.tickets) - self.waiting)
        eta_out = OFFERED_ETA if offered else self.eta_for(ahead, self._excluded(row))
        return TicketUpdateOut(
            consultation_id=row.id,
            status=row.status,
            place=0 if offered else ahead + 1,
            waiting=self.waiting,
            eta=eta_out,
            doctors=self.doctors,
            long_wait=not offered and is_long_wait(eta_out, long_wait_after),
        )

    def payloads(self, long_wait_after: timedelta) -> list[tuple[int, dict[str, Any]]]:
        """(patient id, ``queue:ticket`` payload) for every queued patient: what
        ``update_for(i).model_dump(mode="json")`` gives, built as plain dicts. With thousands
        waiting, a push is otherwise mostly model validation; the parts every payload shares
        (the doctors, one estimate per place) are built once."""
        doctors = self.doctors.model_dump(mode="json")
        offered_eta = OFFERED_ETA.model_dump(mode="json")
        etas: dict[tuple[int, frozenset[int]], tuple[dict[str, Any], bool]] = {}
        first_waiting = len(self.tickets) - self.waiting
        out: list[tuple[int, dict[str, Any]]] = []
        for index, row in enumerate(self.tickets):
            if row.status == ConsultationStatus.OFFERED:
                place, eta_json, long_wait = 0, offered_eta, False
            else:
                ahead = index - first_waiting
                # Beyond the horizon all read the same; so do tickets excluding the same
                # doctors online (usually none).
                counted = self.counted(self._excluded(row))
                key = (min(ahead, EXACT_PLACES + 1), counted)
                if key not in etas:
                    eta_out = self.eta_for(ahead, counted)
                    etas[key] = (
                        eta_out.model_dump(mode="json"),
                        is_long_wait(eta_out, long_wait_after),
                    )
                eta_json, long_wait = etas[key]
                place = ahead + 1
            out.append(
                (
                    row.patient_id,
                    {
                        "consultation_id": row.id,
                        "status": str(row.status),
                        "place": place,
                        "waiting": self.waiting,
                        "eta": eta_json,
                        "doctors": doctors,
                        "long_wait": long_wait,
                    },
                )
            )
        return out

    def _excluded(self, row: Any) -> frozenset[int]:
        return self.excluded.get(row.id, frozenset())


async def queue_view(
    uow: UnitOfWork,
    specialty: str,
    form: str,
    now: datetime,
    tables: EstimateTables | None = None,
    *,
    tickets: bool = True,
    places: int | None = None,
) -> QueueView:
    """The queue with its rows and estimates for every place, or (``tickets=False``) only the
    estimates for the first ``places`` places."""
    rows: list[sa.Row] = []
    excluded: dict[int, frozenset[int]] = {}
    if tickets:
        rows = list(await uow.conn.execute(_QUEUE, {"specialty": specialty, "form": form}))
        excluded = await exclusions.of_queue(uow, specialty, form, now)
    loads = await doctor_loads(uow, now, specialty, form)
    doctors, busy_elapsed = doctors_summary(loads, specialty, form)
    model = wait_model.DurationModel.fit(await recent_durations(uow, specialty, form), form)
    waiting = sum(1 for r in rows if r.status == ConsultationStatus.WAITING)
    depth = min(places if places is not None else waiting, EXACT_PLACES + 1)
    table: list[wait_model.Estimate] = []
    if tables is not None:
        table = await tables.table(now, specialty, form, depth, doctors.online, busy_elapsed, model)
    return QueueView(
        specialty=specialty,
        form=form,
        tickets=rows,
        doctors=doctors,
        model=model,
        busy_elapsed=busy_elapsed,
        waiting=waiting,
        table=list(table),
        loads=tuple(loads),
        excluded=excluded,
    )


async def queue_position(
    uow: UnitOfWork, consultation_id: int, now: datetime
) -> tuple[int, int, frozenset[int]]:
    """(waiting tickets ahead of this one, waiting tickets in its queue, the doctors it is not
    offered to now), by counting along the queue index: the order is ``queue_view``'s
    (rank_at, then id). The exclusions are read only for a waiting ticket that has some."""
    row = (await uow.conn.execute(_POSITION, {"consultation_id": consultation_id})).one()
    excluded: frozenset[int] = frozenset()
    if row.exclusions and row.status == ConsultationStatus.WAITING:
        excluded = await exclusions.of_ticket(uow, consultation_id, now)
    return int(row.ahead), int(row.waiting), excluded


async def recent_durations(uow: UnitOfWork, specialty: str, form: str) -> list[float]:
    rows = await uow.conn.execute(
        _recent_durations(uow.dialect), {"specialty": specialty, "form": form}
    )
    return [float(seconds) for (seconds,) in rows]


# Statements built once, bound per call: every join and push runs them, and building a
# statement and its cache key costs more than running it (docs/performance.md).
_QUEUE = (
    # rank_at only orders: not selected (a datetime parsed per row, per push, on SQLite)
    sa.select(_C.id, _C.patient_id, _C.status)
    .where(
        _C.specialty_code == sa.bindparam("specialty"),
        _C.form == sa.bindparam("form"),
        _C.status.in_(QUEUED_STATUSES),
    )
    # Offers first ("offered" sorts before "waiting"), then queue order.
    .order_by(_C.status, _C.rank_at, _C.id)
)


def _position() -> sa.Select[Any]:
    me = t.consultations.alias("me")
    other = t.consultations.alias("other")
    same_queue = sa.and_(
        other.c.status == ConsultationStatus.WAITING,
        other.c.specialty_code == me.c.specialty_code,
        other.c.form == me.c.form,
    )
    before = sa.or_(
        other.c.rank_at < me.c.rank_at,
        sa.and_(other.c.rank_at == me.c.rank_at, other.c.id < me.c.id),
    )
    count = sa.select(sa.func.count()).select_from(other)
    e = t.ticket_exclusions.c
    return sa.select(
        me.c.status,
        count.where(same_queue, before).scalar_subquery().label("ahead"),
        count.where(same_queue).scalar_subquery().label("waiting"),
        # Usually 0: the exclusions themselves are read only when there are some.
        sa.select(sa.func.count())
        .select_from(t.ticket_exclusions)
        .where(e.consultation_id == me.c.id)
        .scalar_subquery()
        .label("exclusions"),
    ).where(me.c.id == sa.bindparam("consultation_id"))


_POSITION = _position()


@functools.cache
def _recent_durations(dialect: str) -> sa.Select[Any]:
    """The lengths, in seconds, of the queue's last finished consultations."""
    return (
        sa.select(repo.seconds_between(dialect, _C.ended_at, _C.started_at))
        .where(
            _C.specialty_code == sa.bindparam("specialty"),
            _C.form == sa.bindparam("form"),
            _C.status == ConsultationStatus.ENDED,
            _C.started_at.is_not(None),
        )
        .order_by(_C.ended_at.desc())
        .limit(_RECENT)
    )


def is_long_wait(eta_out: EtaOut, threshold: timedelta) -> bool:
    """Waiting is not worth it (alternatives are offered): nobody can serve the ticket now,
    or the upper estimate passes the threshold."""
    high = eta_out.high_minutes
    return high is None or high * 60 > threshold.total_seconds()


def eta_out(estimate: wait_model.Estimate | None, declined: bool = False) -> EtaOut:
    """``declined``: estimated without the doctors who declined the ticket."""
    if estimate is None or estimate.no_doctor_online:
        basis = NOBODY_ELSE if declined else "no doctor online now"
        return EtaOut(low_minutes=None, high_minutes=None, basis=basis)
    return EtaOut(
        low_minutes=estimate.low_seconds // 60,
        high_minutes=None if estimate.high_seconds is None else estimate.high_seconds // 60,
        basis=estimate.text,
    )
