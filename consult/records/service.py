"""Write-back to the patient's record (recommendations) and reading the record.

A patient reads their own record. A doctor reads a patient's record only through a
consultation of that patient's they accepted (``participation``). Every read and write is
audited; a refused read too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from consult.audit import Audit
from consult.calls import repository as calls_repo
from consult.chat import repository as chat_repo
from consult.clock import Clock
from consult.domain import Actor, ConsultationStatus
from consult.errors import Conflict, NotAllowed, NotFound
from consult.events import RecordChanged
from consult.followups import repository as follow_up_repo
from consult.outcome import repository as outcome_repo
from consult.queue import participation
from consult.queue import repository as queue_repo
from consult.queue.service import ConsultationService
from consult.records import repository as records_repo
from consult.records.schemas import (
    RECORD_PAGE,
    RECORD_TRANSCRIPT_PAGE,
    RecommendationOut,
    RecordEntryOut,
    RecordOut,
)
from consult.schemas import (
    MESSAGES_PAGE,
    MessagesOut,
    PersonOut,
)
from consult.storage import tables as t
from consult.storage.uow import Database, UnitOfWork


class RecordService:
    def __init__(
        self, db: Database, clock: Clock, audit: Audit, consultations: ConsultationService
    ) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._consultations = consultations

    async def add_recommendation(
        self, actor: Actor, consultation_id: int, text: str
    ) -> RecommendationOut:
        async with self._db.uow() as uow:
            row = await self._consultations.participant_row(
                uow, actor, consultation_id, "record.recommendation.write"
            )
            if actor.user_id != row.doctor_id:
                raise NotAllowed(
                    "only the consulting doctor writes recommendations", code="not_the_doctor"
                )
            if row.status != ConsultationStatus.ACTIVE:
                raise Conflict(
                    "recommendations are written while the consultation is active",
                    code="consultation_not_active",
                )
            rid = (
                await uow.conn.execute(
                    t.recommendations.insert()
                    .values(
                        consultation_id=consultation_id,
                        patient_id=row.patient_id,
                        doctor_id=actor.user_id,
                        text=text,
                        created_at=self._clock.now(),
                    )
                    .returning(t.recommendations.c.id)
                )
            ).scalar_one()
            await self._audit.write(
                uow,
                actor,
                "record.recommendation.write",
                patient_id=row.patient_id,
                consultation_id=consultation_id,
            )
            uow.collect(RecordChanged(row.patient_id, consultation_id))
            (out,) = await records_repo.recommendations(uow, t.recommendations.c.id == rid)
            await uow.commit()
        return out

    async def record(
        self,
        actor: Actor,
        patient_id: int,
        *,
        before: int | None = None,
        limit: int = RECORD_PAGE,
    ) -> RecordOut:
        """A page of the record: the ``limit`` newest consultations older than ``before``,
        each with the first page of its transcript. The statements are the same few however
        long the record (one for each kind of thing, for the whole page)."""
        async with self._db.uow() as uow:
            patient = await self._readable_patient(uow, actor, patient_id)
            ids = await records_repo.page_ids(uow, patient_id, before, limit + 1)
            more = len(ids) > limit
            ids = ids[:limit]
            entries = await _entries(uow, ids, self._clock.now())
            await self._audit.write(uow, actor, "record.read", patient_id=patient_id)
            await uow.commit()
        return RecordOut(
            patient=PersonOut(id=patient.id, name=patient.name),
            entries=entries,
            next=ids[-1] if more else None,
        )

    async def transcript(
        self,
        actor: Actor,
        patient_id: int,
        consultation_id: int,
        after_seq: int = 0,
        limit: int = MESSAGES_PAGE,
    ) -> MessagesOut:
        """A page of one transcript in the record, for whoever may read the record (a doctor of
        the patient's may read a consultation held by another doctor here, as in the record)."""
        async with self._db.uow() as uow:
            await self._readable_patient(uow, actor, patient_id)
            if not await records_repo.in_record(uow, patient_id, consultation_id):
                raise NotFound(
                    f"no consultation {consultation_id} in this record",
                    code="consultation_not_found",
                )
            messages, more = await chat_repo.messages_after(uow, consultation_id, after_seq, limit)
            await self._audit.write(
                uow, actor, "record.read", patient_id=patient_id, consultation_id=consultation_id
            )
            await uow.commit()
        return MessagesOut(messages=messages, has_more=more)

    async def _readable_patient(self, uow: UnitOfWork, actor: Actor, patient_id: int) -> Any:
        """The patient's row if the actor may read their record; refused (and the refusal
        audited) otherwise."""
        # A stranger learns nothing, not even that the patient exists (as the timeline and the
        # FHIR export answer).
        patient = await records_repo.patient(uow, patient_id)
        if patient is None or not await participation.may_read_record(uow, actor, patient_id):
            self._audit.deny_after_rollback(uow, actor, "record.read", patient_id=patient_id)
            raise NotFound(f"no patient {patient_id} you may read", code="patient_not_found")
        return patient


async def _entries(uow: UnitOfWork, ids: list[int], now: datetime) -> list[RecordEntryOut]:
    """The record entries of these consultations, in this order: one statement per kind of
    thing for them all."""
    if not ids:
        return []
    by_id = {
        c.id: c for c in await queue_repo.list_consultations(uow, t.consultations.c.id.in_(ids))
    }
    consultations = [by_id[i] for i in ids]
    recommendations = await records_repo.recommendations(
        uow, t.recommendations.c.consultation_id.in_(ids)
    )
    follow_ups = await follow_up_repo.list_follow_ups(uow, t.follow_ups.c.consultation_id.in_(ids))
    recordings = await calls_repo.recordings_of(uow, ids)
    forms = await calls_repo.stretches_of(uow, consultations)
    transcripts = await chat_repo.first_messages(uow, ids, RECORD_TRANSCRIPT_PAGE)
    packages = await outcome_repo.packages(
        uow, t.prescription_packages.c.consultation_id.in_(ids), now
    )
    referrals = await outcome_repo.referrals(uow, t.referrals.c.consultation_id.in_(ids))
    leaves = await outcome_repo.sick_leaves(uow, t.sick_leaves.c.consultation_id.in_(ids))
    return [
        RecordEntryOut(
            consultation=c,
            transcript=transcripts[c.id][0],
            transcript_has_more=transcripts[c.id][1],
            recommendations=[r for r in recommendations if r.consultation_id == c.id],
            follow_ups=[f for f in follow_ups if f.consultation_id == c.id],
            forms=forms[c.id],
            recordings=[r for r in recordings if r.consultation_id == c.id],
            packages=[p for p in packages if p.consultation_id == c.id],
            referrals=[r for r in referrals if r.consultation_id == c.id],
            sick_leaves=[s for s in leaves if s.consultation_id == c.id],
        )
        for c in consultations
    ]
