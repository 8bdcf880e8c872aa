"""The patient's timeline, a page at a time, for the patient or a doctor of theirs.

The record's reader rule (``participation.may_read_record``): the patient themself, or a doctor
who accepted a consultation of theirs, now or ever. Anyone else, and a patient id of nobody,
gets ``patient_not_found`` (as for the FHIR export: a stranger learns nothing, not even that
the patient exists). Every page read is audited as ``record.timeline.read`` (the filters in
its detail), a refusal too.

A page costs the same statements however long the history: the patient's row and the reader
check, one statement for the page's items (page.py), then each kind present on the page reads
its items whole (registry.py), then the audit row.
"""

from __future__ import annotations

from typing import Final

from consult.audit import Audit
from consult.clock import Clock
from consult.domain import Actor
from consult.errors import NotFound
from consult.queue import participation
from consult.records import repository as records_repo
from consult.schemas import PersonOut
from consult.storage.uow import Database
from consult.timeline import filters as f
from consult.timeline import page
from consult.timeline.kinds import Fields, Scope
from consult.timeline.registry import KINDS
from consult.timeline.schemas import TimelineEntryOut, TimelineOut

ACTION: Final = "record.timeline.read"
_BY_NAME: Final = {k.name: k for k in KINDS}


class Timeline:
    def __init__(self, db: Database, clock: Clock, audit: Audit) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit

    async def page(self, actor: Actor, patient_id: int, filters: f.Filters) -> TimelineOut:
        """The items after ``filters.after`` (the newest without), newest first, of the kinds
        asked for that the reader may see (a doctor never sees ratings), within the dates."""
        kinds = [_BY_NAME[name] for name in filters.kinds]
        kinds = [k for k in kinds if k.visible_to(actor)]
        # Read from a snapshot that holds no write lock (on SQLite, the one writer the chat
        # needs); handed out only once its audit row has committed.
        async with self._db.reader() as uow:
            patient = await records_repo.patient(uow, patient_id)
            if patient is None or not await participation.may_read_record(uow, actor, patient_id):
                self._audit.deny_after_rollback(uow, actor, ACTION, patient_id=patient_id)
                raise NotFound(f"no patient {patient_id} you may read", code="patient_not_found")
            scope = Scope(patient_id, actor, self._clock.now())
            keys = await page.keys(uow, {k.name: k.source(scope) for k in kinds}, filters)
            more = len(keys) > filters.limit
            keys = keys[: filters.limit]
            fields: dict[str, dict[int, Fields]] = {}
            for kind in kinds:
                ids = [key.id for key in keys if key.kind == kind.name]
                if ids:
                    fields[kind.name] = await kind.load(uow, ids, scope)
        async with self._db.uow() as uow:
            await self._audit.write(
                uow, actor, ACTION, patient_id=patient_id, detail=filters.described()
            )
            await uow.commit()
        items: list[TimelineEntryOut] = [
            _BY_NAME[key.kind].model.model_validate(
                {"kind": key.kind, "id": key.id, "occurred_at": key.at, **fields[key.kind][key.id]}
            )
            for key in keys
        ]
        last = keys[-1] if keys else None  # the cursor: where this page ends
        return TimelineOut(
            patient=PersonOut(id=patient.id, name=patient.name),
            items=items,  # type: ignore[arg-type]  # each a member of the TimelineItemOut union
            next=f.encode(last) if more and last else None,
        )
