"""The doctors' state as the queues see it: who is online, busy or away, and for which queues.

Shared by the patient's ticket (``tickets.py``: one specialty and form) and the schedulers'
dashboard (``dashboard/overview.py``: every specialty, each form and all forms together), so
that both count a doctor the same way:

- **online**: presence ``online`` with a connected console (not in the disconnection grace);
- **busy**: online, and their offers plus active consultations fill their capacity;
- **away**: presence ``away``, or ``online`` but within the disconnection grace.

Offline doctors (no presence row, or ``offline``) are not counted anywhere.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa

from consult.domain import ConsultationStatus, PresenceStatus
from consult.queue.repository import code_set, presence_columns, seconds_between
from consult.schemas import DoctorsStateOut
from consult.storage import tables as t
from consult.storage.uow import UnitOfWork

_C = t.consultations.c
_P = t.doctor_presence.c

DoctorState = Literal["free", "busy", "away"]


@dataclass(frozen=True)
class DoctorLoad:
    """One doctor who is online or away, with how long each of their open consultations (offers
    and active ones) has run; an offer not yet accepted counts 0 s."""

    doctor_id: int
    name: str
    status: str
    connected: bool
    specialties: frozenset[str]
    forms: frozenset[str]
    capacity: int
    elapsed: tuple[float, ...]

    @property
    def online(self) -> bool:
        return self.status == PresenceStatus.ONLINE and self.connected

    @property
    def busy(self) -> bool:
        return self.online and len(self.elapsed) >= self.capacity

    @property
    def state(self) -> DoctorState:
        if not self.online:
            return "away"
        return "busy" if self.busy else "free"

    def serves(self, specialty: str, form: str | None = None) -> bool:
        """Present for this specialty (and form; any of their forms when ``form`` is None)."""
        return specialty in self.specialties and (form is None or form in self.forms)


async def doctor_loads(
    uow: UnitOfWork, now: datetime, specialty: str | None = None, form: str | None = None
) -> list[DoctorLoad]:
    """Every doctor online or away (only those of one queue when ``specialty``/``form`` are
    given), in doctor id order; two queries."""
    rows = (await uow.conn.execute(_PRESENT)).all()
    rows = [
        r
        for r in rows
        if (specialty is None or specialty in code_set(r.specialties))
        and (form is None or form in code_set(r.forms))
    ]
    elapsed: dict[int, list[float]] = {r.doctor_id: [] for r in rows}
    if rows:
        for did, seconds in await uow.conn.execute(_open_since(uow.dialect), {"now": now}):
            if did in elapsed:
                elapsed[did].append(float(seconds) if seconds is not None else 0.0)
    return [
        DoctorLoad(
            doctor_id=r.doctor_id,
            name=r.name,
            status=r.status,
            connected=r.disconnected_at is None,
            specialties=code_set(r.specialties),
            forms=code_set(r.forms),
            capacity=r.capacity,
            elapsed=tuple(elapsed[r.doctor_id]),
        )
        for r in rows
    ]


# Built once: read for every ticket, push and match (docs/performance.md, statement costs).
_PRESENT_STATUSES = [PresenceStatus.ONLINE, PresenceStatus.AWAY]
_PRESENT = (
    sa.select(*presence_columns(), t.users.c.name)
    .join(t.users, t.users.c.id == _P.doctor_id)
    .where(_P.status.in_(_PRESENT_STATUSES))
    .order_by(_P.doctor_id)
)


@functools.cache
def _open_since(dialect: str) -> sa.Select[Any]:
    """Each present doctor's open consultations (offers and active ones) with how long they
    have run by ``:now``, in seconds."""
    now = sa.bindparam("now", type_=t.Timestamp)
    return sa.select(_C.doctor_id, seconds_between(dialect, now, _C.started_at)).where(
        _C.status.in_([ConsultationStatus.ACTIVE, ConsultationStatus.OFFERED]),
        _C.doctor_id.in_(
            sa.select(_P.doctor_id).where(_P.status.in_(_PRESENT_STATUSES)).scalar_subquery()
        ),
    )


def doctors_summary(
    doctors: Iterable[DoctorLoad], specialty: str, form: str | None = None
) -> tuple[DoctorsStateOut, list[float]]:
    """The counts for one queue (or one specialty, any form), and for each busy doctor how long
    their oldest open consultation has run (a busy doctor frees up when it ends, roughly)."""
    mine = [d for d in doctors if d.serves(specialty, form)]
    online = [d for d in mine if d.online]
    busy = [d for d in online if d.busy]
    state = DoctorsStateOut(online=len(online), busy=len(busy), away=len(mine) - len(online))
    return state, [max(d.elapsed) for d in busy]
