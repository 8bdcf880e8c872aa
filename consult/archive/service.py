"""Download everything: the patient's own record as one ZIP archive, its FHIR bundle and every
file of theirs (chat transcripts, documents, ready call recordings, the printouts of what was
issued to them),
with a manifest naming each file (layout.py).

Only the patient, for their own record (``GET /api/patients/me/archive``); anyone else is
refused ``not_a_patient``, audited as a denied ``record.archive.read``. The record is read as
the FHIR export reads it (fhir/reading.py), from one snapshot that holds no write lock: the
bundle, and the files it names. The read is audited once, as ``record.archive.read`` (the
files inside are this one read, not one row each), and only once that row has committed does
a byte go out. The files are then sent one at a time, a chunk at a time (zipping.py): a
document or recording from its folder, a printout made when its turn comes; memory does not
grow with the archive. A file missing from its folder is listed in the manifest as missing:
the answer has begun by then, and the rest of the record is still worth having.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Final

from pydantic_core import to_json

from consult.archive import layout
from consult.archive.transcripts import transcript
from consult.archive.zipping import Send, ZipStream
from consult.audit import Audit
from consult.calls import repository as calls_repo
from consult.calls.recordings import RecordingStore
from consult.chat import repository as chat_repo
from consult.clock import Clock
from consult.documents import repository as documents_repo
from consult.documents.file_store import DocumentStore
from consult.domain import Actor
from consult.errors import NotAllowed
from consult.fhir import bundles, reading
from consult.fhir.codes import Resource
from consult.fhir.facts import PatientFacts
from consult.outcome.printing import Printing
from consult.outcome.validity import clinic_time
from consult.storage.uow import Database

log = logging.getLogger(__name__)

ACTION: Final = "record.archive.read"


class RecordArchive:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        audit: Audit,
        documents: DocumentStore,
        recordings: RecordingStore,
        printing: Printing,
    ) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._documents = documents
        self._recordings = recordings
        self._printing = printing

    async def open(self, actor: Actor, origin: str) -> Archive:
        """The caller's own record, read and audited; ``Archive.send`` then sends its bytes.
        ``origin`` (``scheme://host``) makes the bundle's file URLs absolute."""
        async with self._db.reader() as uow:
            patient = await reading.patient(uow, actor.user_id) if actor.is_patient else None
            if patient is not None:
                now = self._clock.now()
                facts = await reading.record(uow, patient, actor, now)
                documents = await documents_repo.current(uow, patient.id)
                ready = (r.id for r in facts.recordings)
                recordings = await calls_repo.stored_names(uow, ready)
                visits = [v.consultation.id for v in facts.visits]
                transcripts = await chat_repo.message_counts(uow, visits)
        if patient is None:
            await self._audit.deny(actor, ACTION, detail="not a patient")
            raise NotAllowed(
                "only a patient downloads a record as an archive: their own",
                code="not_a_patient",
            )
        entries = layout.entries(
            facts,
            {row.id: self._documents.path(row.stored_name) for row in documents},
            {rid: self._recordings.path(name) for rid, name in recordings.items()},
            transcripts,
        )
        bundle = bundles.collection(bundles.resources(facts, origin), now)
        async with self._db.uow() as uow:
            detail = f"{len(entries)} files and the FHIR bundle"
            await self._audit.write(uow, actor, ACTION, patient_id=patient.id, detail=detail)
            await uow.commit()
        return Archive(self._db, self._printing, patient, now, bundle, entries)


class Archive:
    """One patient's record, read; sent once."""

    def __init__(
        self,
        db: Database,
        printing: Printing,
        patient: PatientFacts,
        now: datetime,
        bundle: Resource,
        entries: list[layout.Entry],
    ) -> None:
        self._db = db
        self._printing = printing
        self._patient = patient
        self._now = now
        self._bundle = bundle
        self._entries = entries
        self.filename = layout.archive_name(now)
        self.content_type = layout.CONTENT_TYPE

    async def send(self, send: Send) -> None:
        """The archive, written to ``send`` as it is made: the bundle, each file, then the
        manifest (it carries each file's size)."""
        out = ZipStream(send)
        # pydantic's serializer: json.dumps's bytes, but json.dumps with an indent runs in
        # Python: 90 ms on the loop for a 300-consultation record's bundle (record_bench.py).
        data = to_json(self._bundle, indent=2)
        size = await out.add_bytes(layout.BUNDLE, data, _zip_time(self._now), deflate=True)
        del data
        files: list[dict[str, Any]] = [
            {"path": layout.BUNDLE, **layout.bundle_about(), "size": size}
        ]
        missing = []
        for entry in self._entries:
            written = await self._write(out, entry)
            if written is None:
                log.error(
                    "%s of patient %s is missing: not in the archive", entry.path, self._patient.id
                )
                missing.append(entry)
            else:
                files.append({"path": entry.path, **entry.about, "size": written})
        index = layout.manifest(self._patient, self._now, files, missing)
        await out.add_bytes(layout.MANIFEST, index, _zip_time(self._now), deflate=True)
        await out.close()

    async def _write(self, out: ZipStream, entry: layout.Entry) -> int | None:
        at = _zip_time(entry.at)
        if entry.file is not None:
            return await out.add_file(entry.path, entry.file, at)
        if entry.transcript is not None:
            chunks = transcript(self._db, entry.transcript)
            return await out.add_chunks(entry.path, chunks, at, deflate=True)
        if entry.printout is not None:
            kind, document_id = entry.printout
            printout = await self._printing.own(self._patient.id, kind, document_id)
            if printout is not None:
                return await out.add_bytes(entry.path, printout.content, at, deflate=False)
        return None


def _zip_time(at: datetime) -> datetime:
    """ZIP keeps a wall-clock time without a zone: the clinic's, as the printouts show."""
    return clinic_time(at)
