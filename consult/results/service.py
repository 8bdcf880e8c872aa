"""Results: received from a sending system (a bundle in, a result stored once), read by the
patient and their doctors (a page at a time, one value's history, the report's PDF).

Receiving: the bundle is read in a worker thread (intake.py: FHIR validation and consult's
rules), its PDF judged and written to the results folder outside any transaction (as
documents are), then one short transaction finds the patient by PESEL and stores the result,
or finds it stored already under the sender's identifier: the same content again changes
nothing (200), a correction (status amended, corrected, appended, cancelled or
entered-in-error) replaces it, anything else under that identifier is a conflict. Every
outcome is audited as ``result.receive`` (actor role ``integration``, a refusal too).

Reading: the patient, or a doctor who accepted a consultation of theirs, now or ever (the
FHIR export's rule); anyone else, and an id of nobody, get ``patient_not_found``. Every read
is audited as ``result.read``, a refusal too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from consult.audit import Audit
from consult.clock import Clock
from consult.documents import repository as documents_repo
from consult.documents.file_store import DocumentStore, Received
from consult.domain import Actor
from consult.errors import ConsultError, NotFound
from consult.events import Push
from consult.queue import participation
from consult.results import intake
from consult.results import repository as repo
from consult.results.drafts import Submission
from consult.results.integrations import Integration, IntegrationCredentials
from consult.results.issues import refused
from consult.results.schemas import (
    HISTORY_POINTS,
    RESULTS_PAGE,
    ResultCodeOut,
    ResultHistoryOut,
    ResultOut,
    ResultsOut,
)
from consult.schemas import PersonOut
from consult.storage.uow import Database, UnitOfWork

log = logging.getLogger(__name__)

RECEIVE: Final = "result.receive"
READ: Final = "result.read"
RECEIVED_EVENT: Final = "result:received"
# A report sent again under its identifier with other content replaces the stored one only
# with one of these statuses: FHIR's for a report changed after it was released.
CORRECTIONS: Final = frozenset(
    {"amended", "corrected", "appended", "cancelled", "entered-in-error"}
)
# Bundles read at once per process: each holds its body, its JSON and its model in memory.
READERS: Final = 2
# The largest body: a PDF of 8 MB (the documents' limit) is 10.7 MB in base64.
MAX_BODY: Final = 12_000_000


@dataclass(frozen=True)
class Delivery:
    """What a bundle did: the result as stored now, ``created`` (201), ``unchanged`` or
    ``replaced`` (200), and what each of the bundle's entries was."""

    result: ResultOut
    outcome: str
    entries: tuple[str | int, ...]


class ResultService:
    def __init__(self, db: Database, clock: Clock, audit: Audit, store: DocumentStore) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._store = store
        self._readers = asyncio.Semaphore(READERS)
        # The sending systems' credentials (the edge authenticates a delivery with them).
        self.credentials = IntegrationCredentials(db, clock)

    # --- receiving ------------------------------------------------------------------------------

    async def receive(
        self, sender: Integration, body: bytes, loads: Callable[[bytes], Any]
    ) -> Delivery:
        """Store the result a bundle delivers (``loads``: JSON as the edge parses it), or
        refuse it (``BundleRefused``, ``unknown_patient``, ...) with nothing stored."""
        patient_id: list[int] = []  # once known, for the audit of a refusal
        try:
            async with self._readers:
                submission = await asyncio.to_thread(intake.read, body, loads)
            return await self._store_result(sender, submission, patient_id)
        except ConsultError as exc:
            await self.refused(sender, exc, patient_id[0] if patient_id else None)
            raise

    async def refused(
        self, sender: Integration, error: ConsultError, patient_id: int | None = None
    ) -> None:
        """Audit a delivery refused (here, or at the edge: its body too large, not FHIR JSON)."""
        await self._audit_receive(sender, f"{error.status} {error.code}", patient_id, False)

    async def _store_result(
        self, sender: Integration, submission: Submission, known: list[int]
    ) -> Delivery:
        report = submission.report
        fingerprint = report.fingerprint()
        async with self._db.reader() as uow:
            patient_id = await self._patient(uow, submission)
            known.append(patient_id)
            stored = await repo.by_identifier(
                uow, sender.name, report.identifier_system, report.identifier_value
            )
            if _same(stored, fingerprint, patient_id):
                return await self._unchanged(uow, stored.id, submission)
            _check_replaceable(stored, submission, patient_id)
        pdf = await self._keep_pdf(submission)
        committed = False
        try:
            delivery, old_pdf = await self._write(sender, submission, patient_id, fingerprint, pdf)
            committed = True
        finally:
            if not committed and pdf is not None:
                await self._store.remove(pdf[0])
        if delivery.outcome == "unchanged" and pdf is not None:
            await self._store.remove(pdf[0])  # another send stored it meanwhile
        if old_pdf is not None:
            await self._store.remove(old_pdf)
        return delivery

    async def _patient(self, uow: UnitOfWork, submission: Submission) -> int:
        found = await repo.patients_with_pesel(uow, submission.pesel)
        if not found:
            raise refused(
                422,
                "not-found",
                "no patient of this clinic has this PESEL: nothing was stored",
                submission.pesel_at,
                code="unknown_patient",
            )
        if len(found) > 1:
            raise refused(
                422,
                "multiple-matches",
                "more than one patient of this clinic has this PESEL: nothing was stored; "
                "the clinic must correct its patients' profiles",
                submission.pesel_at,
                code="ambiguous_patient",
            )
        return found[0]

    async def _unchanged(self, uow: UnitOfWork, result_id: int, submission: Submission) -> Delivery:
        result = await repo.by_id(uow, result_id)
        log.info("result %s sent again unchanged: nothing stored", result_id)
        return Delivery(result, "unchanged", submission.entries)

    async def _keep_pdf(self, submission: Submission) -> tuple[str, Received] | None:
        """The report's PDF, judged whole (a PDF, readable, no scripts or embedded files; at
        most 8 MB) and kept under a generated name, before any transaction."""
        data = submission.report.pdf
        if data is None:
            return None
        try:
            received = await self._store.receive(_reader(data))
        except ConsultError as exc:
            kind = "too-costly" if exc.status == 413 else "value"
            raise refused(
                422,
                kind,
                f"the PDF is refused: {exc.message}",
                submission.pdf_at,
                code="invalid_report",
            ) from None
        if received.content_type != intake.PDF:
            await self._store.discard(received.temp)
            raise refused(
                422,
                "value",
                "presentedForm's data is not a PDF",
                submission.pdf_at,
                code="invalid_report",
            )
        return await self._store.keep(received), received

    async def _write(
        self,
        sender: Integration,
        submission: Submission,
        patient_id: int,
        fingerprint: str,
        pdf: tuple[str, Received] | None,
    ) -> tuple[Delivery, str | None]:
        """One transaction: the result stored (or replaced), audited, the patient told."""
        report = submission.report
        now = self._clock.now()
        values = repo.report_values(report, fingerprint) | {
            "pdf_stored_name": pdf[0] if pdf else None,
            "pdf_size": pdf[1].size if pdf else None,
            "pdf_sha256": pdf[1].sha256 if pdf else None,
        }
        old_pdf = None
        async with self._db.uow() as uow:
            key = (sender.name, report.identifier_system, report.identifier_value)
            stored = await repo.by_identifier(uow, *key, lock=True)
            result_id = None
            if stored is None:
                result_id = await repo.insert_new(
                    uow,
                    **values,
                    patient_id=patient_id,
                    integration_id=sender.id,
                    sender=sender.name,
                    received_at=now,
                )
            outcome = "created"
            if result_id is None:
                # Stored before (or meanwhile, by another send: read it now).
                stored = stored or await repo.by_identifier(uow, *key, lock=True)
                if _same(stored, fingerprint, patient_id):
                    return await self._unchanged(uow, stored.id, submission), None
                _check_replaceable(stored, submission, patient_id)
                result_id, outcome, old_pdf = stored.id, "replaced", stored.pdf_stored_name
                await repo.replace(uow, result_id, **values, changed_at=now)
            await repo.add_observations(
                uow, result_id, patient_id, report.effective_at, report.observations
            )
            result = await repo.by_id(uow, result_id)
            detail = f"{outcome} result {result_id}: {'|'.join(key[1:])}"
            await self._audit.write_many(uow, [self._entry(sender, detail, patient_id, True)])
            doctors = await documents_repo.consulting_doctors(uow, patient_id)
            payload = {"result": result.model_dump(mode="json")}
            uow.collect(Push((patient_id, *doctors), RECEIVED_EVENT, payload))
            await uow.commit()
        log.info("result %s %s for patient %s by %s", result_id, outcome, patient_id, sender.name)
        return Delivery(result, outcome, submission.entries), old_pdf

    def _entry(
        self, sender: Integration, detail: str, patient_id: int | None, allowed: bool
    ) -> dict[str, Any]:
        entry = self._audit.entry(
            None,
            RECEIVE,
            patient_id=patient_id,
            allowed=allowed,
            detail=f"{sender.name} (integration {sender.id}): {detail}",
            ip=sender.ip,
        )
        return entry | {"actor_role": "integration"}

    async def _audit_receive(
        self, sender: Integration, detail: str, patient_id: int | None, allowed: bool
    ) -> None:
        async with self._db.uow() as uow:
            await self._audit.write_many(uow, [self._entry(sender, detail, patient_id, allowed)])
            await uow.commit()

    # --- reading --------------------------------------------------------------------------------

    async def page(
        self, actor: Actor, patient_id: int, *, before: int | None = None, limit: int = RESULTS_PAGE
    ) -> ResultsOut:
        """The ``limit`` newest results older than result ``before``, newest first."""
        async with self._db.uow() as uow:
            patient = await self._readable(uow, actor, patient_id)
            found = await repo.page(uow, patient_id, before, limit + 1)
            await self._audit.write(uow, actor, READ, patient_id=patient_id)
            await uow.commit()
        shown = found[:limit]
        return ResultsOut(
            patient=PersonOut(id=patient.id, name=patient.name),
            results=shown,
            next=shown[-1].id if len(found) > limit else None,
        )

    async def history(
        self, actor: Actor, patient_id: int, system: str, code: str
    ) -> ResultHistoryOut:
        """One value's history (the observations of one code), oldest first, for a chart."""
        async with self._db.uow() as uow:
            patient = await self._readable(uow, actor, patient_id)
            rows, more = await repo.history(uow, patient_id, system, code, HISTORY_POINTS)
            await self._audit.write(
                uow, actor, READ, patient_id=patient_id, detail=f"history of {system}|{code}"[:300]
            )
            await uow.commit()
        display = rows[-1].display if rows else code
        return ResultHistoryOut(
            patient=PersonOut(id=patient.id, name=patient.name),
            code=ResultCodeOut(system=system, code=code, display=display),
            points=[repo.history_point(r) for r in rows],
            has_more=more,
        )

    async def report_pdf(self, actor: Actor, result_id: int) -> tuple[Path, str]:
        """The report's PDF file and a name to save it as, for whoever may read the patient's
        results; anyone else gets the 404 of a result that does not exist."""
        async with self._db.uow() as uow:
            row = await repo.row(uow, result_id)
            if row is None or not await _may_read(uow, actor, row.patient_id):
                self._audit.deny_after_rollback(
                    uow, actor, READ, patient_id=row.patient_id if row else None
                )
                raise NotFound(f"no result {result_id} you may read", code="result_not_found")
            if row.pdf_stored_name is None:
                raise NotFound("this result has no PDF", code="no_report_pdf")
            await self._audit.write(
                uow, actor, READ, patient_id=row.patient_id, detail=f"result {result_id} PDF"
            )
            await uow.commit()
        if not await self._store.exists(row.pdf_stored_name):
            log.error("the PDF of result %s is missing from the results folder", result_id)
            raise NotFound("the result's PDF file is missing", code="no_report_pdf")
        return self._store.path(row.pdf_stored_name), f"result-{result_id}.pdf"

    async def _readable(self, uow: UnitOfWork, actor: Actor, patient_id: int) -> Any:
        patient = await repo.patient(uow, patient_id)
        if patient is None or not await _may_read(uow, actor, patient_id):
            self._audit.deny_after_rollback(uow, actor, READ, patient_id=patient_id)
            raise NotFound(f"no patient {patient_id} you may read", code="patient_not_found")
        return patient


async def _may_read(uow: UnitOfWork, actor: Actor, patient_id: int) -> bool:
    """The patient, or a doctor who accepted a consultation of theirs (now or ever)."""
    if actor.is_patient:
        return actor.user_id == patient_id
    return actor.is_doctor and await participation.took_patient(uow, actor.user_id, patient_id)


def _same(stored: Any, fingerprint: str, patient_id: int) -> bool:
    """Sent again as stored: the same content for the same patient."""
    return (
        stored is not None and stored.fingerprint == fingerprint and stored.patient_id == patient_id
    )


def _check_replaceable(stored: Any, submission: Submission, patient_id: int) -> None:
    """Other content under a stored identifier: a correction replaces it (of the same
    patient); anything else is refused."""
    if stored is None:
        return
    at = f"Bundle.entry[{submission.entries.index(intake.REPORT)}].resource"
    if submission.report.status not in CORRECTIONS:
        raise refused(
            409,
            "duplicate",
            "a different report is stored under this identifier: send a change with status "
            "amended or corrected (it then replaces the stored one), or use a new identifier",
            f"{at}.identifier",
            code="identifier_conflict",
        )
    if stored.patient_id != patient_id:
        raise refused(
            409,
            "conflict",
            "the report stored under this identifier is another patient's: a correction keeps "
            "the patient (mark the stored one entered-in-error for its patient, and send this "
            "one under a new identifier)",
            f"{at}.subject",
            code="identifier_conflict",
        )


def _reader(data: bytes) -> Any:
    """``read_chunk`` over bytes in memory, for DocumentStore.receive."""
    view = memoryview(data)
    position = 0

    async def read_chunk(size: int) -> bytes:
        nonlocal position
        chunk = bytes(view[position : position + size])
        position += len(chunk)
        return chunk

    return read_chunk
