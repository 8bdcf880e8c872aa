"""Decline exclusions: the doctors a queued ticket is not offered to, and until when.

A doctor who declines a ticket, or lets its offer lapse while online with a connected console,
is not offered that ticket again until ``QueueRules.decline_exclusion`` later
(``policy.excluded_doctors``). Each such doctor has a row of their own in
``ticket_exclusions``, so a second doctor declining does not free the first; a doctor
declining the same ticket again moves the end of their row. An offer withdrawn because its
doctor went away or offline, or their console dropped, records nothing.

Rows are written and deleted only by a transaction that holds the ticket's consultation row
(a decline, a lapse and a scheduler's move lock it; the sweep takes with ``SKIP LOCKED`` only
the rows it can), so no two writers ever wait on each other's exclusion rows. Rows that ran out
are deleted by the sweep (``end_expired``); until then they exclude nobody. They outlive the
ticket's stay in the queue (an offer accepted, a ticket cancelled) by at most the exclusion.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from consult.clock import as_utc
from consult.domain import ConsultationStatus
from consult.queue.policy import excluded_doctors
from consult.storage import tables as t
from consult.storage.uow import UnitOfWork

_C = t.consultations.c
_E = t.ticket_exclusions.c


async def record(uow: UnitOfWork, consultation_id: int, doctor_id: int, ends_at: datetime) -> None:
    """Exclude the doctor from the ticket until ``ends_at`` (replacing an earlier exclusion of
    theirs, which may have run out without being deleted yet)."""
    params = {"consultation_id": consultation_id, "doctor_id": doctor_id, "ends_at": ends_at}
    await uow.conn.execute(_FORGET_ONE, params)
    await uow.conn.execute(_RECORD, params)


async def of_ticket(uow: UnitOfWork, consultation_id: int, now: datetime) -> frozenset[int]:
    """The doctors the ticket must not be offered to at ``now``."""
    rows = await uow.conn.execute(_OF_TICKET, {"consultation_id": consultation_id})
    return excluded_doctors(_ends(rows), now)


async def of_queue(
    uow: UnitOfWork, specialty: str, form: str, now: datetime
) -> dict[int, frozenset[int]]:
    """For each waiting ticket of the queue that excludes someone at ``now``, the doctors."""
    found: dict[int, list[Any]] = {}
    for row in await uow.conn.execute(_OF_QUEUE, {"specialty": specialty, "form": form}):
        found.setdefault(row.consultation_id, []).append(row)
    excluded = {cid: excluded_doctors(_ends(rows), now) for cid, rows in found.items()}
    return {cid: doctors for cid, doctors in excluded.items() if doctors}


def not_excluded(
    doctor: sa.ColumnElement[Any], now: sa.ColumnElement[Any]
) -> sa.ColumnElement[bool]:
    """SQL: the consultations row in the query does not exclude ``doctor`` at ``now`` (the rule
    of ``policy.excluded_doctors``)."""
    return ~sa.exists().where(_E.consultation_id == _C.id, _E.doctor_id == doctor, _E.ends_at > now)


async def clear(uow: UnitOfWork, consultation_id: int) -> None:
    """End every exclusion of the ticket (the caller holds its row)."""
    await uow.conn.execute(_CLEAR, {"consultation_id": consultation_id})


async def end_expired(uow: UnitOfWork, now: datetime) -> set[tuple[str, str]]:
    """Delete the exclusions that ran out by ``now``, of the tickets whose rows no other
    transaction holds (the others are left to the next sweep). Returns the (specialty, form)
    queues of the waiting tickets among them: their estimates count those doctors again."""
    tickets = (await uow.conn.execute(_EXPIRED_TICKETS, {"now": now})).all()
    if not tickets:
        return set()
    await uow.conn.execute(_END, {"ids": [r.id for r in tickets], "now": now})
    return {(r.specialty_code, r.form) for r in tickets if r.status == ConsultationStatus.WAITING}


def _ends(rows: Iterable[Any]) -> list[tuple[int, datetime]]:
    return [(row.doctor_id, as_utc(row.ends_at)) for row in rows]


# Built once, bound per call (statement building costs more than running: performance.md).
_ONE_TICKET = _E.consultation_id == sa.bindparam("consultation_id")
_FORGET_ONE = t.ticket_exclusions.delete().where(
    _ONE_TICKET, _E.doctor_id == sa.bindparam("doctor_id")
)
_RECORD = t.ticket_exclusions.insert().values(
    consultation_id=sa.bindparam("consultation_id"),
    doctor_id=sa.bindparam("doctor_id"),
    ends_at=sa.bindparam("ends_at"),
)
_OF_TICKET = sa.select(_E.doctor_id, _E.ends_at).where(_ONE_TICKET)
_OF_QUEUE = (
    sa.select(_E.consultation_id, _E.doctor_id, _E.ends_at)
    .join(t.consultations, _C.id == _E.consultation_id)
    .where(
        _C.specialty_code == sa.bindparam("specialty"),
        _C.form == sa.bindparam("form"),
        _C.status == ConsultationStatus.WAITING,
    )
)
_CLEAR = t.ticket_exclusions.delete().where(_ONE_TICKET)
_NOW = sa.bindparam("now", type_=t.Timestamp)
_EXPIRED_TICKETS = (
    sa.select(_C.id, _C.status, _C.specialty_code, _C.form)
    .where(_C.id.in_(sa.select(_E.consultation_id).where(_E.ends_at <= _NOW)))
    .order_by(_C.id)
    .with_for_update(skip_locked=True)
)
_END = t.ticket_exclusions.delete().where(
    _E.consultation_id.in_(sa.bindparam("ids", expanding=True)), _E.ends_at <= _NOW
)
