"""Reading one patient's record for the FHIR export: the same statements however long the
record (one or two per kind of thing), through the features' own repositories where they have
one. The record holds what GET /api/patients/{patient_id}/record shows (every consultation but
cancelled ones), everything issued to the patient, the documents the reader may open and the
laboratory and imaging results."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from consult.calls import repository as calls_repo
from consult.clock import as_utc
from consult.documents import repository as documents_repo
from consult.domain import Actor, ConsultationStatus, Role
from consult.fhir.facts import (
    DoctorFacts,
    Participation,
    PatientFacts,
    Recommendation,
    RecordFacts,
    SharedDocument,
    Visit,
)
from consult.followups import repository as follow_up_repo
from consult.outcome import repository as outcome_repo
from consult.queue import repository as queue_repo
from consult.results import repository as results_repo
from consult.schemas import ConsultationOut
from consult.storage import tables as t
from consult.storage.uow import UnitOfWork

_C = t.consultations.c
_CD = t.consultation_doctors.c
_M = t.messages.c


async def patient(uow: UnitOfWork, patient_id: int) -> PatientFacts | None:
    found = await uow.conn.execute(
        sa.select(t.users.c.id, t.users.c.name, t.users.c.pesel).where(
            t.users.c.id == patient_id, t.users.c.role == Role.PATIENT
        )
    )
    row = found.first()
    return None if row is None else PatientFacts(id=row.id, name=row.name, pesel=row.pesel)


async def record(uow: UnitOfWork, facts: PatientFacts, reader: Actor, now: datetime) -> RecordFacts:
    """The record as ``reader`` may see it; prescriptions' statuses as of ``now``."""
    pid = facts.id
    consultations = await queue_repo.list_consultations(
        uow, _C.patient_id == pid, _C.status != ConsultationStatus.CANCELLED
    )
    consultations.sort(key=lambda c: c.id, reverse=True)
    ids = [c.id for c in consultations]
    visits = await _visits(uow, consultations)
    recommendations = await _recommendations(uow, ids)
    follow_ups = await follow_up_repo.list_follow_ups(uow, t.follow_ups.c.consultation_id.in_(ids))
    recordings = [r for r in await calls_repo.recordings_of(uow, ids) if r.status == "ready"]
    # Everything issued to the patient, also a renewal's package (no consultation of its own).
    packages = await outcome_repo.packages(uow, t.prescription_packages.c.patient_id == pid, now)
    referrals = await outcome_repo.referrals(uow, t.referrals.c.patient_id == pid)
    leaves = await outcome_repo.sick_leaves(uow, t.sick_leaves.c.patient_id == pid)
    doctor_ids = {p.doctor_id for v in visits for p in v.participants}
    doctor_ids |= {r.doctor_id for r in recommendations}
    doctor_ids |= {f.doctor.id for f in follow_ups}
    doctor_ids |= {p.doctor.id for p in packages} | {r.doctor.id for r in referrals}
    doctor_ids |= {s.doctor.id for s in leaves}
    return RecordFacts(
        patient=facts,
        doctors=await _doctors(uow, doctor_ids),
        visits=visits,
        recommendations=recommendations,
        follow_ups=follow_ups,
        recordings=recordings,
        documents=await _documents(uow, pid, reader),
        packages=packages,
        referrals=referrals,
        sick_leaves=leaves,
        results=await results_repo.of_patient(uow, pid),
    )


async def _visits(uow: UnitOfWork, consultations: list[ConsultationOut]) -> list[Visit]:
    ids = [c.id for c in consultations]
    taken: dict[int, list[Participation]] = {i: [] for i in ids}
    if ids:
        rows = await uow.conn.execute(
            sa.select(t.consultation_doctors)
            .where(_CD.consultation_id.in_(ids))
            .order_by(_CD.accepted_at, _CD.doctor_id)
        )
        for r in rows:
            taken[r.consultation_id].append(Participation(r.doctor_id, as_utc(r.accepted_at)))
    forms = await calls_repo.stretches_of(uow, consultations)
    return [Visit(c, forms[c.id], taken[c.id]) for c in consultations]


async def _recommendations(uow: UnitOfWork, ids: list[int]) -> list[Recommendation]:
    if not ids:
        return []
    r = t.recommendations.c
    rows = await uow.conn.execute(
        sa.select(t.recommendations).where(r.consultation_id.in_(ids)).order_by(r.id.desc())
    )
    return [
        Recommendation(x.id, x.consultation_id, x.doctor_id, x.text, as_utc(x.created_at))
        for x in rows
    ]


async def _doctors(uow: UnitOfWork, ids: set[int]) -> dict[int, DoctorFacts]:
    if not ids:
        return {}
    u = t.users.c
    rows = await uow.conn.execute(
        sa.select(u.id, u.name, u.licence_number).where(u.id.in_(sorted(ids)))
    )
    return {r.id: DoctorFacts(r.id, r.name, r.licence_number) for r in rows}


async def _documents(uow: UnitOfWork, patient_id: int, reader: Actor) -> list[SharedDocument]:
    """The patient's documents (not deleted), each with the consultations it was shared into.
    A doctor gets those they may open (documents/service.py's rule): all while consulting the
    patient now, else the ones shared into a consultation they accepted."""
    rows = await documents_repo.current(uow, patient_id)
    if not rows:
        return []
    shared = await _shared_into(uow, patient_id)
    if reader.is_doctor and not await documents_repo.doctor_consults(
        uow, reader.user_id, patient_id
    ):
        accepted = await _accepted(uow, reader.user_id, {c for cs in shared.values() for c in cs})
        rows = [r for r in rows if accepted & set(shared.get(r.id, ()))]
    return [SharedDocument(documents_repo.document_out(r), shared.get(r.id, ())) for r in rows]


async def _shared_into(uow: UnitOfWork, patient_id: int) -> dict[int, tuple[int, ...]]:
    """Document id -> the patient's consultations it was shared into, in order."""
    found = await uow.conn.execute(
        sa.select(_M.document_id, _M.consultation_id)
        .select_from(t.messages.join(t.consultations, _C.id == _M.consultation_id))
        .where(_C.patient_id == patient_id, _M.document_id.is_not(None))
        .distinct()
        .order_by(_M.document_id, _M.consultation_id)
    )
    shared: dict[int, tuple[int, ...]] = {}
    for row in found:
        shared[row.document_id] = (*shared.get(row.document_id, ()), row.consultation_id)
    return shared


async def _accepted(uow: UnitOfWork, doctor_id: int, consultation_ids: set[int]) -> set[int]:
    if not consultation_ids:
        return set()
    found = await uow.conn.execute(
        sa.select(_CD.consultation_id).where(
            _CD.doctor_id == doctor_id, _CD.consultation_id.in_(sorted(consultation_ids))
        )
    )
    return set(found.scalars())
