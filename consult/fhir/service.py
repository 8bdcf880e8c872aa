"""The FHIR export of a patient's record, for the patient or a doctor who has taken them.

The same reader as the record (records/service.py's rule): the patient themself, or a doctor
who accepted a consultation of theirs, now or ever. Anyone else, and a patient id of nobody,
gets ``patient_not_found`` (as for the issued documents: a stranger learns nothing, not even
that the patient exists). Every read is audited as ``record.fhir.read``, a refusal too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from consult.audit import Audit
from consult.clock import Clock
from consult.domain import Actor
from consult.errors import NotFound
from consult.fhir import bundles, reading
from consult.fhir.codes import Resource
from consult.queue import participation
from consult.storage.uow import Database

ACTION: Final = "record.fhir.read"


class FhirExport:
    def __init__(self, db: Database, clock: Clock, audit: Audit) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit

    async def record(self, actor: Actor, patient_id: int, origin: str) -> Resource:
        """The whole record as a ``collection`` Bundle. ``origin`` (``scheme://host``) makes
        the files' URLs absolute."""
        items, now = await self._read(actor, patient_id, origin, detail=None)
        return bundles.collection(items, now)

    async def medication_requests(
        self,
        actor: Actor,
        patient_id: int,
        statuses: frozenset[str] | None,
        origin: str,
        self_url: str,
    ) -> Resource:
        """The patient's MedicationRequests with one of ``statuses`` (all when None), as a
        ``searchset`` Bundle with what they refer to."""
        searched = "MedicationRequest"
        if statuses is not None:
            searched += "?status=" + ",".join(sorted(statuses))
        items, now = await self._read(actor, patient_id, origin, detail=searched)
        return bundles.medication_requests(items, statuses, now, self_url)

    async def _read(
        self, actor: Actor, patient_id: int, origin: str, detail: str | None
    ) -> tuple[list[Resource], datetime]:
        # The whole record is read from a snapshot that holds no write lock (on SQLite, the one
        # writer the chat needs); it is handed out only once its audit row has committed.
        async with self._db.reader() as uow:
            patient = await reading.patient(uow, patient_id)
            if patient is None or not await participation.may_read_record(uow, actor, patient_id):
                self._audit.deny_after_rollback(uow, actor, ACTION, patient_id=patient_id)
                raise NotFound(f"no patient {patient_id} you may read", code="patient_not_found")
            now = self._clock.now()
            facts = await reading.record(uow, patient, actor, now)
        async with self._db.uow() as uow:
            await self._audit.write(uow, actor, ACTION, patient_id=patient_id, detail=detail)
            await uow.commit()
        return bundles.resources(facts, origin), now
