"""The patient's access history ("who saw my data"), read from the audit log.

Only a patient reads it, and only their own: every row is chosen by ``patient_id`` (the
patient whose data the access showed, which every read's audit row carries), newest first, a
page at a time, in one scan of ``ix_audit_log_patient_id_id``. access_actions.py says which
rows are listed and how each reads. A row names the doctor by name; a scheduler is
"scheduler" (staff who never treat the patient are not named), the patient "you". The client
address is not shown: it is the staff member's, not the patient's.
"""

from __future__ import annotations

from typing import Any, Literal

import sqlalchemy as sa

from consult.audit import Audit
from consult.clock import as_utc
from consult.domain import Actor, Client, Role
from consult.errors import NotAllowed
from consult.records.access_actions import LISTED, READ, what
from consult.records.schemas import ACCESS_PAGE, AccessEntryOut, AccessLogOut
from consult.schemas import PersonOut
from consult.storage import tables as t
from consult.storage.uow import Database, UnitOfWork

_A = t.audit_log.c
_U = t.users.c
_STAFF = (Role.DOCTOR.value, Role.SCHEDULER.value)
_LISTED = sorted(LISTED)


def check_patient(actor: Actor) -> None:
    if not actor.is_patient:
        raise NotAllowed("only patients read an access history, their own", code="not_a_patient")


class AccessLog:
    def __init__(self, db: Database, audit: Audit) -> None:
        self._db = db
        self._audit = audit

    async def of_patient(
        self,
        actor: Actor,
        *,
        cursor: int | None = None,
        limit: int = ACCESS_PAGE,
        others: bool = False,
    ) -> AccessLogOut:
        """A page of the patient's own history: the ``limit`` newest accesses older than
        ``cursor`` (an entry's id), only others' when ``others``. The read is audited as
        ``access_log.read``, a row the history itself never lists."""
        check_patient(actor)
        async with self._db.uow() as uow:
            rows = await _page(uow, actor.user_id, cursor, limit + 1, others)
            await self._audit.write(uow, actor, READ, patient_id=actor.user_id)
            await uow.commit()
        more = len(rows) > limit
        entries = [_entry(r, actor.user_id) for r in rows[:limit]]
        return AccessLogOut(entries=entries, next=entries[-1].id if more else None)


async def _page(
    uow: UnitOfWork, patient_id: int, cursor: int | None, count: int, others: bool
) -> list[Any]:
    # The patient's own reads and staff's: nobody else is allowed a read of their data, and
    # an unknown role must not show up under a name.
    staff = _A.actor_role.in_(_STAFF)
    where = [
        _A.patient_id == patient_id,
        _A.allowed,
        _A.action.in_(_LISTED),
        staff if others else sa.or_(_A.actor_id == patient_id, staff),
    ]
    if cursor is not None:
        where.append(_A.id < cursor)
    found = await uow.conn.execute(
        sa.select(
            _A.id,
            _A.at,
            _A.actor_id,
            _A.actor_role,
            _A.action,
            _A.consultation_id,
            _A.detail,
            _A.client,
            _U.name,
        )
        .select_from(t.audit_log.outerjoin(t.users, _U.id == _A.actor_id))
        .where(*where)
        .order_by(_A.id.desc())
        .limit(count)
    )
    return list(found)


def _entry(row: Any, patient_id: int) -> AccessEntryOut:
    by: Literal["you", "doctor", "scheduler"]
    doctor = None
    if row.actor_id == patient_id:
        by, who = "you", "you"
    elif row.actor_role == Role.DOCTOR:
        by, who = "doctor", row.name or "a doctor"
        doctor = PersonOut(id=row.actor_id, name=who)
    else:
        by, who = "scheduler", "scheduler"
    return AccessEntryOut(
        id=row.id,
        at=as_utc(row.at),
        by=by,
        who=who,
        doctor=doctor,
        action=row.action,
        what=what(row.action, row.detail, row.consultation_id),
        consultation_id=row.consultation_id,
        client=Client(row.client) if row.client else None,
    )
