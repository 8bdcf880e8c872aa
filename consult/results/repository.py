"""Result rows: written from a ReportDraft, found by the sender's identifier, read back as
payloads (flags computed on read), a page at a time, whole (the FHIR export), by id (the
record's timeline picks its page's results, then reads them here) and as one value's
history. The same few statements however many results a patient has: one for the results,
one for all their observations."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from consult.clock import as_utc
from consult.domain import Role
from consult.results.drafts import ObservationDraft, ReportDraft
from consult.results.flags import CRITICAL, OUT_OF_RANGE, flag
from consult.results.schemas import (
    ResultCodeOut,
    ResultHistoryPointOut,
    ResultIdentifierOut,
    ResultObservationOut,
    ResultOut,
    ResultPdfOut,
)
from consult.storage import tables as t
from consult.storage.uow import UnitOfWork

_R = t.results.c
_O = t.result_observations.c


# --- writing ------------------------------------------------------------------------------------


def report_values(draft: ReportDraft, fingerprint: str) -> dict[str, Any]:
    """The result row's columns that come from the report (not who, when or the file)."""
    category = draft.category
    return {
        "identifier_system": draft.identifier_system,
        "identifier_value": draft.identifier_value,
        "fingerprint": fingerprint,
        "status": draft.status,
        "category_system": category.system if category else None,
        "category_code": category.code if category else None,
        "category": category.display if category else None,
        "code_system": draft.code.system,
        "code": draft.code.code,
        "title": draft.code.display,
        "effective_at": draft.effective_at,
        "issued_at": draft.issued_at,
        "performer": draft.performer,
        "conclusion": draft.conclusion,
    }


async def insert_new(uow: UnitOfWork, **values: Any) -> int | None:
    """Inserts the result; None when the sender's identifier is stored already (a concurrent
    send committed first: the database waits for it, then skips the row)."""
    insert: Any = pg_insert if uow.dialect == "postgresql" else sqlite_insert
    statement = (
        insert(t.results)
        .values(**values)
        # The columns of uq_results_identifier.
        .on_conflict_do_nothing(index_elements=["sender", "identifier_system", "identifier_value"])
        .returning(_R.id)
    )
    found = (await uow.conn.execute(statement)).scalar_one_or_none()
    return None if found is None else int(found)


async def replace(uow: UnitOfWork, result_id: int, **values: Any) -> None:
    """A correction: the report's columns replaced, its observations removed (the caller
    adds the new ones)."""
    await uow.conn.execute(t.results.update().where(_R.id == result_id).values(**values))
    await uow.conn.execute(t.result_observations.delete().where(_O.result_id == result_id))


async def add_observations(
    uow: UnitOfWork,
    result_id: int,
    patient_id: int,
    effective_at: datetime,
    drafts: Sequence[ObservationDraft],
) -> None:
    if not drafts:
        return
    await uow.conn.execute(
        t.result_observations.insert(),
        [
            {
                "result_id": result_id,
                "patient_id": patient_id,
                "position": position,
                "code_system": o.code.system,
                "code": o.code.code,
                "display": o.code.display,
                "status": o.status,
                "value_kind": o.value_kind,
                "value_number": o.value_number,
                "value_text": o.value_text,
                "comparator": o.comparator,
                "unit": o.unit,
                "low": o.low,
                "high": o.high,
                "range_text": o.range_text,
                "interpretation": o.interpretation,
                "effective_at": o.effective_at or effective_at,
            }
            for position, o in enumerate(drafts)
        ],
    )


# --- finding ------------------------------------------------------------------------------------


async def patients_with_pesel(uow: UnitOfWork, pesel: str) -> list[int]:
    found = await uow.conn.execute(
        sa.select(t.users.c.id)
        .where(t.users.c.pesel == pesel, t.users.c.role == Role.PATIENT)
        .order_by(t.users.c.id)
    )
    return [int(i) for i in found.scalars()]


async def patient(uow: UnitOfWork, patient_id: int) -> Any:
    """The patient's id and name, or None (no such patient)."""
    u = t.users.c
    found = await uow.conn.execute(
        sa.select(u.id, u.name).where(u.id == patient_id, u.role == Role.PATIENT)
    )
    return found.first()


async def by_identifier(
    uow: UnitOfWork, sender: str, system: str, value: str, *, lock: bool = False
) -> Any:
    statement = sa.select(t.results).where(
        _R.sender == sender, _R.identifier_system == system, _R.identifier_value == value
    )
    return (await uow.conn.execute(statement.with_for_update() if lock else statement)).first()


async def row(uow: UnitOfWork, result_id: int) -> Any:
    return (await uow.conn.execute(sa.select(t.results).where(_R.id == result_id))).first()


# --- reading ------------------------------------------------------------------------------------

_NEWEST_FIRST = (_R.effective_at.desc(), _R.id.desc())


async def results(uow: UnitOfWork, *where: Any, limit: int | None = None) -> list[ResultOut]:
    """The results matching ``where`` (a page's, the timeline's by id), newest first, with
    their observations: two statements."""
    statement = sa.select(t.results).where(*where).order_by(*_NEWEST_FIRST)
    rows = list(await uow.conn.execute(statement if limit is None else statement.limit(limit)))
    if not rows:
        return []
    found = await uow.conn.execute(
        sa.select(t.result_observations)
        .where(_O.result_id.in_([r.id for r in rows]))
        .order_by(_O.result_id, _O.position)
    )
    observations: dict[int, list[ResultObservationOut]] = {r.id: [] for r in rows}
    for o in found:
        observations[o.result_id].append(observation_out(o))
    return [result_out(r, observations[r.id]) for r in rows]


async def by_id(uow: UnitOfWork, result_id: int) -> ResultOut:
    (found,) = await results(uow, _R.id == result_id)
    return found


async def page(uow: UnitOfWork, patient_id: int, before: int | None, limit: int) -> list[ResultOut]:
    """The ``limit`` newest results older than result ``before`` (by when they were taken;
    a ``before`` that is not this patient's result gives nothing)."""
    where = [_R.patient_id == patient_id]
    if before is not None:
        cursor = sa.select(_R.effective_at).where(_R.id == before, _R.patient_id == patient_id)
        at = cursor.scalar_subquery()
        where.append(sa.or_(_R.effective_at < at, sa.and_(_R.effective_at == at, _R.id < before)))
    return await results(uow, *where, limit=limit)


async def of_patient(uow: UnitOfWork, patient_id: int) -> list[ResultOut]:
    """Every result of the patient (the FHIR export's), newest first."""
    return await results(uow, _R.patient_id == patient_id)


async def history(
    uow: UnitOfWork, patient_id: int, system: str, code: str, limit: int
) -> tuple[list[Any], bool]:
    """The last ``limit`` observations of this code (oldest first), and whether older ones
    were left out."""
    found = await uow.conn.execute(
        sa.select(t.result_observations)
        .where(_O.patient_id == patient_id, _O.code == code, _O.code_system == system)
        .order_by(_O.effective_at.desc(), _O.id.desc())
        .limit(limit + 1)
    )
    rows = list(found)
    return rows[:limit][::-1], len(rows) > limit


# --- payloads -----------------------------------------------------------------------------------


def observation_out(o: Any) -> ResultObservationOut:
    shown, source = flag(o.interpretation, o.value_number, o.comparator, o.low, o.high)
    return ResultObservationOut(
        id=o.id,
        code=ResultCodeOut(system=o.code_system, code=o.code, display=o.display),
        status=o.status,
        value_kind=o.value_kind,
        value=o.value_text,
        value_number=o.value_number,
        comparator=o.comparator,
        unit=o.unit,
        low=o.low,
        high=o.high,
        range=o.range_text,
        interpretation=o.interpretation,
        flag=shown,
        flag_source=source,
        critical=o.interpretation in CRITICAL,
        effective_at=as_utc(o.effective_at),
    )


def history_point(o: Any) -> ResultHistoryPointOut:
    out = observation_out(o)
    return ResultHistoryPointOut(
        result_id=o.result_id,
        observation_id=o.id,
        effective_at=out.effective_at,
        value=out.value,
        value_number=out.value_number,
        unit=out.unit,
        low=out.low,
        high=out.high,
        flag=out.flag,
        flag_source=out.flag_source,
    )


def _when(value: datetime | None) -> datetime | None:
    return as_utc(value) if value is not None else None


def result_out(r: Any, observations: list[ResultObservationOut]) -> ResultOut:
    category = None
    if r.category is not None:
        category = ResultCodeOut(system=r.category_system, code=r.category_code, display=r.category)
    pdf = None
    if r.pdf_stored_name is not None:
        pdf = ResultPdfOut(url=f"/api/results/{r.id}/report.pdf", size=r.pdf_size)
    return ResultOut(
        id=r.id,
        patient_id=r.patient_id,
        sender=r.sender,
        identifier=ResultIdentifierOut(system=r.identifier_system, value=r.identifier_value),
        status=r.status,
        category=category,
        code=ResultCodeOut(system=r.code_system, code=r.code, display=r.title),
        effective_at=as_utc(r.effective_at),
        issued_at=_when(r.issued_at),
        received_at=as_utc(r.received_at),
        changed_at=_when(r.changed_at),
        performer=r.performer,
        conclusion=r.conclusion,
        pdf=pdf,
        observations=observations,
        out_of_range=sum(1 for o in observations if o.flag in OUT_OF_RANGE),
    )
