"""The schedulers' overview: every specialty's queues at one moment, all forms together and
each form apart. ``read_queues`` reads what it needs in one transaction (a handful of queries);
``build_overview`` computes the figures from it outside the transaction."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from consult.clock import as_utc
from consult.dashboard.schemas import (
    DashboardDoctorOut,
    FormFiguresOut,
    OverviewOut,
    SpecialtyFiguresOut,
    WaitingTicketOut,
)
from consult.dashboard.wait_statistics import (
    BUCKET,
    HISTORY_SPAN,
    Waited,
    breached,
    wait_history,
    wait_stats,
)
from consult.domain import QUEUED_STATUSES, ConsultationStatus, Form
from consult.queue.doctors import DoctorLoad, doctor_loads, doctors_summary
from consult.schemas import PersonOut, SpecialtyOut
from consult.storage import tables as t
from consult.storage.uow import UnitOfWork

_C = t.consultations.c
_patient = t.users.alias("patient")
_doctor = t.users.alias("doctor")

MAX_TICKETS = 50  # tickets listed per specialty (the longest waits); the counts cover all
FORMS = [str(f) for f in Form]


@dataclass(frozen=True)
class QueuesNow:
    """What the overview is computed from."""

    specialties: list[tuple[str, str]]  # (code, name), by name
    queued: list[sa.Row]
    in_progress: dict[tuple[str, str], int]
    doctors: list[DoctorLoad]
    stretches: dict[tuple[str, str], list[Waited]]


async def read_queues(uow: UnitOfWork, now: datetime) -> QueuesNow:
    specialties = await uow.conn.execute(
        sa.select(t.specialties.c.code, t.specialties.c.name).order_by(t.specialties.c.name)
    )
    return QueuesNow(
        specialties=[(code, name) for code, name in specialties],
        queued=await _queued(uow),
        in_progress=await _in_progress(uow),
        doctors=await doctor_loads(uow, now),
        stretches=await _waiting_stretches(uow, now),
    )


def build_overview(queues: QueuesNow, now: datetime, wait_breach: int) -> OverviewOut:
    tickets = _tickets(queues.queued, now)
    out = [
        _specialty(
            code,
            name,
            tickets,
            queues.in_progress,
            queues.doctors,
            queues.stretches,
            now,
            wait_breach,
        )
        for code, name in queues.specialties
    ]
    return OverviewOut(
        at=now,
        wait_breach_seconds=wait_breach,
        history_bucket_seconds=int(BUCKET.total_seconds()),
        breaches=sum(1 for s in out if s.breach),
        specialties=out,
    )


def _specialty(
    code: str,
    name: str,
    tickets: dict[str, list[WaitingTicketOut]],
    in_progress: dict[tuple[str, str], int],
    doctors: list[DoctorLoad],
    stretches: dict[tuple[str, str], list[Waited]],
    now: datetime,
    wait_breach: int,
) -> SpecialtyFiguresOut:
    mine = tickets.get(code, [])
    forms = [
        FormFiguresOut(
            form=form,  # type: ignore[arg-type]
            **_figures(
                [tk for tk in mine if tk.form == form],
                in_progress.get((code, form), 0),
                doctors,
                code,
                form,
                stretches.get((code, form), []),
                now,
                wait_breach,
            ),
        )
        for form in FORMS
    ]
    overall = _figures(
        mine,
        sum(f.in_progress for f in forms),
        doctors,
        code,
        None,
        [s for form in FORMS for s in stretches.get((code, form), [])],
        now,
        wait_breach,
    )
    listed = sorted(mine, key=lambda tk: (-tk.waited_seconds, tk.consultation_id))
    return SpecialtyFiguresOut(
        specialty=SpecialtyOut(code=code, name=name),
        forms=forms,
        tickets=listed[:MAX_TICKETS],
        doctor_list=[
            DashboardDoctorOut(
                id=d.doctor_id,
                name=d.name,
                state=d.state,
                forms=sorted(d.forms),  # type: ignore[arg-type]
                consultations=len(d.elapsed),
                capacity=d.capacity,
            )
            for d in doctors
            if d.serves(code)
        ],
        **overall,
    )


def _figures(
    tickets: list[WaitingTicketOut],
    in_progress: int,
    doctors: list[DoctorLoad],
    specialty: str,
    form: str | None,
    stretches: list[Waited],
    now: datetime,
    wait_breach: int,
) -> dict[str, Any]:
    """The fields of ``QueueFiguresOut`` for one queue, or one specialty (``form`` None)."""
    longest, median = wait_stats([tk.waited_seconds for tk in tickets])
    return {
        "waiting": len(tickets),
        "offered": sum(1 for tk in tickets if tk.status == ConsultationStatus.OFFERED),
        "longest_wait_seconds": longest,
        "median_wait_seconds": median,
        "doctors": doctors_summary(doctors, specialty, form)[0],
        "in_progress": in_progress,
        "breach": breached(longest, wait_breach),
        "history": wait_history(stretches, now),
    }


async def _queued(uow: UnitOfWork) -> list[sa.Row]:
    """Every queued ticket, offers first and then in queue order within each queue."""
    return list(
        (
            await uow.conn.execute(
                sa.select(
                    t.consultations,
                    _patient.c.name.label("patient_name"),
                    _doctor.c.name.label("doctor_name"),
                )
                .join(_patient, _patient.c.id == _C.patient_id)
                .outerjoin(_doctor, _doctor.c.id == _C.doctor_id)
                .where(_C.status.in_(QUEUED_STATUSES))
                .order_by(_C.status, _C.rank_at, _C.id)
            )
        ).all()
    )


def _tickets(rows: list[sa.Row], now: datetime) -> dict[str, list[WaitingTicketOut]]:
    """The queued tickets of each specialty, with their place in their own specialty-and-form
    queue and their real wait, ``now - created_at``. A consultation cut off by the doctor's side
    comes back with its original ``created_at``: its wait counts from when the patient first
    joined."""
    places: dict[tuple[str, str], int] = defaultdict(int)
    out: dict[str, list[WaitingTicketOut]] = defaultdict(list)
    for r in rows:
        offered = r.status == ConsultationStatus.OFFERED
        if not offered:
            places[(r.specialty_code, r.form)] += 1
        out[r.specialty_code].append(
            WaitingTicketOut(
                consultation_id=r.id,
                patient=PersonOut(id=r.patient_id, name=r.patient_name),
                form=r.form,
                status=r.status,
                place=0 if offered else places[(r.specialty_code, r.form)],
                waited_seconds=max(0, round((now - as_utc(r.created_at)).total_seconds())),
                doctor=PersonOut(id=r.doctor_id, name=r.doctor_name) if r.doctor_id else None,
                returned=r.started_at is not None,
            )
        )
    return out


async def _in_progress(uow: UnitOfWork) -> dict[tuple[str, str], int]:
    rows = await uow.conn.execute(
        sa.select(_C.specialty_code, _C.form, sa.func.count())
        .where(_C.status == ConsultationStatus.ACTIVE)
        .group_by(_C.specialty_code, _C.form)
    )
    return {(s, f): int(n) for s, f, n in rows}


async def _waiting_stretches(uow: UnitOfWork, now: datetime) -> dict[tuple[str, str], list[Waited]]:
    """Each queue's stretches of waiting that reach into the last hour, from the consultations'
    timestamps (see ``wait_statistics.py``)."""
    since = now - HISTORY_SPAN
    rows = await uow.conn.execute(
        sa.select(
            _C.specialty_code, _C.form, _C.status, _C.created_at, _C.started_at, _C.ended_at
        ).where(
            _C.created_at <= now,
            sa.or_(
                _C.status.in_(QUEUED_STATUSES),
                _C.started_at >= since,
                sa.and_(_C.started_at.is_(None), _C.ended_at >= since),
            ),
        )
    )
    out: dict[tuple[str, str], list[Waited]] = defaultdict(list)
    for specialty, form, status, created, started, ended in rows:
        key = (specialty, form)
        created = as_utc(created)
        queued = status in QUEUED_STATUSES
        if started is not None:
            # Waited until it started; one back in the queue after an interruption (we do not
            # store when) is counted again from now on.
            out[key].append(Waited(created, as_utc(started)))
            if queued:
                out[key].append(Waited(now))
        else:
            out[key].append(Waited(created, None if queued or ended is None else as_utc(ended)))
    return out
