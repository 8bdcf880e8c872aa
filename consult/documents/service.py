"""Uploading, listing, reading, deleting and sharing a patient's medical documents.

An upload is streamed to a temporary file first, outside any transaction (on SQLite a unit of
work holds the only writer, which must not wait on a slow client); then one short transaction
re-checks the limit under the patient's row lock and inserts the row. A refused upload leaves
no row and no file.

Who reads a document: its patient; a doctor while consulting that patient (an active
consultation); and a doctor into whose consultation the patient shared it, also after that
consultation ended - the message is part of the transcript that doctor keeps reading in the
record (records/service.py: a doctor reads a record through a past consultation of theirs).
Every access is audited, refusals too.

Who is told: an upload and a deletion are pushed, once committed, as ``document:uploaded`` and
``document:deleted`` to the patient (every tab) and to the doctors consulting them now (an
active consultation), and to nobody else: the pages keep their lists, and the chat messages
that shared a deleted document, current without a reload.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consult.accounts.checks import check_verified_patient
from consult.accounts.repository import lock_user
from consult.audit import Audit
from consult.chat.service import ChatService
from consult.clock import Clock
from consult.documents import repository as repo
from consult.documents.file_store import DocumentStore, ReadChunk, Received
from consult.documents.rules import MAX_FILES, check_description, safe_filename
from consult.documents.schemas import DocumentDeletedOut, DocumentOut, DocumentUploadedOut
from consult.documents.sniff import display_name
from consult.domain import Actor
from consult.errors import Invalid, LimitReached, NotAllowed, NotFound
from consult.events import Push
from consult.schemas import MessageOut, Out
from consult.storage.uow import Database, UnitOfWork

log = logging.getLogger(__name__)


def check_patient(actor: Actor) -> None:
    check_verified_patient(actor, only_patients="upload and manage documents", feature="documents")


def too_many() -> LimitReached:
    return LimitReached(
        f"you may keep at most {MAX_FILES} documents at a time; delete one first",
        code="too_many_documents",
    )


# The Socket.IO events that tell the pages a patient's documents changed (docs/protocol.md).
UPLOADED = "document:uploaded"
DELETED = "document:deleted"


async def tell(uow: UnitOfWork, patient_id: int, name: str, payload: Out) -> None:
    """Collect ``name`` for the patient and the doctors consulting them now, and nobody else;
    sent once the transaction commits. Asked last before the commit, so a doctor who accepts
    the patient meanwhile has (all but surely) not read the list yet when it commits."""
    doctors = await repo.consulting_doctors(uow, patient_id)
    uow.collect(Push((patient_id, *doctors), name, payload.model_dump(mode="json")))


@dataclass
class Download:
    document: DocumentOut
    path: Path


@dataclass
class Upload:
    """An upload in progress: fed by the HTTP edge part by part, then finished or abandoned."""

    filename: str | None = None
    description: str | None = None
    received: Received | None = None


class DocumentService:
    def __init__(
        self, db: Database, clock: Clock, audit: Audit, store: DocumentStore, chat: ChatService
    ) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._store = store
        self._chat = chat

    # --- upload ---------------------------------------------------------------------------

    async def begin_upload(self, actor: Actor) -> Upload:
        """Refuse early, before any byte of the file is read, what would be refused anyway."""
        check_patient(actor)
        async with self._db.reader() as uow:
            if await repo.count_current(uow, actor.user_id) >= MAX_FILES:
                raise too_many()
        return Upload()

    async def receive_file(
        self, upload: Upload, filename: str | None, read_chunk: ReadChunk
    ) -> None:
        if upload.received is not None:
            raise Invalid("send one file per upload", code="one_file_per_upload")
        upload.filename = safe_filename(filename)
        upload.received = await self._store.receive(read_chunk)

    async def abandon(self, upload: Upload) -> None:
        if upload.received is not None:
            await self._store.discard(upload.received.temp)
            upload.received = None

    async def finish_upload(self, actor: Actor, upload: Upload) -> DocumentOut:
        """Keep a received upload: on any refusal, nothing of it is left."""
        try:
            received = upload.received
            if received is None:
                raise Invalid("the upload has no file part named 'file'", code="file_required")
            description = check_description(upload.description)
            assert upload.filename is not None
            return await self._keep(actor, received, upload.filename, description)
        finally:
            await self.abandon(upload)

    async def _keep(
        self, actor: Actor, received: Received, filename: str, description: str
    ) -> DocumentOut:
        stored = await self._store.keep(received)
        committed = False
        try:
            async with self._db.uow() as uow:
                # One patient's uploads one at a time, so the limit holds under concurrency.
                await lock_user(uow, actor.user_id)
                if await repo.count_current(uow, actor.user_id) >= MAX_FILES:
                    raise too_many()
                document_id = await repo.insert(
                    uow,
                    patient_id=actor.user_id,
                    stored_name=stored,
                    filename=display_name(filename, received.content_type),
                    description=description,
                    content_type=received.content_type,
                    size=received.size,
                    sha256=received.sha256,
                    created_at=self._clock.now(),
                )
                await self._audit.write(
                    uow,
                    actor,
                    "document.upload",
                    patient_id=actor.user_id,
                    detail=f"document {document_id}",
                )
                out = repo.document_out(await repo.load(uow, document_id))
                await tell(
                    uow,
                    actor.user_id,
                    UPLOADED,
                    DocumentUploadedOut(patient_id=actor.user_id, document=out),
                )
                await uow.commit()
                committed = True
        finally:
            if not committed:
                await self._store.remove(stored)
        log.info("document %s uploaded by patient %s", document_id, actor.user_id)
        return out

    # --- reading --------------------------------------------------------------------------

    async def mine(self, actor: Actor) -> list[DocumentOut]:
        check_patient(actor)
        return await self.of_patient(actor, actor.user_id)

    async def of_patient(self, actor: Actor, patient_id: int) -> list[DocumentOut]:
        """A patient's documents, for the doctor consulting them now (or the patient)."""
        async with self._db.uow() as uow:
            own = actor.is_patient and actor.user_id == patient_id
            if not own and not (
                actor.is_doctor and await repo.doctor_consults(uow, actor.user_id, patient_id)
            ):
                self._audit.deny_after_rollback(uow, actor, "document.list", patient_id=patient_id)
                # Not 403: a stranger learns nothing, not even that the patient exists.
                raise NotFound(
                    f"no patient {patient_id} whose documents you may see (a doctor sees them "
                    "only while consulting the patient)",
                    code="patient_not_found",
                )
            rows = await repo.current(uow, patient_id)
            await self._audit.write(uow, actor, "document.list", patient_id=patient_id)
            await uow.commit()
        return [repo.document_out(r) for r in rows]

    async def download(self, actor: Actor, document_id: int) -> Download:
        async with self._db.uow() as uow:
            row = await repo.load(uow, document_id)
            if row is None:
                raise NotFound(f"no document {document_id}", code="document_not_found")
            consultation_id = None
            if actor.is_patient and actor.user_id == row.patient_id:
                allowed = True
            elif actor.is_doctor:
                consultation_id = await repo.shared_with(uow, actor.user_id, document_id)
                allowed = consultation_id is not None or await repo.doctor_consults(
                    uow, actor.user_id, row.patient_id
                )
            else:
                allowed = False
            if not allowed:
                self._audit.deny_after_rollback(
                    uow, actor, "document.read", patient_id=row.patient_id
                )
                raise NotAllowed("this document is not yours to see", code="not_your_document")
            if row.deleted_at is not None:
                raise NotFound("the patient has deleted this document", code="document_deleted")
            await self._audit.write(
                uow,
                actor,
                "document.read",
                patient_id=row.patient_id,
                consultation_id=consultation_id,
                detail=f"document {document_id}",
            )
            await uow.commit()
        path = self._store.path(row.stored_name)
        if not await self._store.exists(row.stored_name):
            log.error("the file of document %s is missing from the documents directory", row.id)
            raise NotFound("the document's file is missing", code="document_file_missing")
        return Download(repo.document_out(row), path)

    # --- deleting and sharing ---------------------------------------------------------------

    async def delete(self, actor: Actor, document_id: int) -> None:
        """The file goes; the row stays (marked deleted) for the chat messages that name it."""
        check_patient(actor)
        async with self._db.uow() as uow:
            row = await self._own(uow, actor, document_id, "document.delete")
            await repo.mark_deleted(uow, document_id, self._clock.now())
            await self._audit.write(
                uow,
                actor,
                "document.delete",
                patient_id=actor.user_id,
                detail=f"document {document_id}",
            )
            # What a chat message that shared it shows from now on (also after a reload).
            gone = repo.document_ref(await repo.load(uow, document_id))
            await tell(
                uow,
                actor.user_id,
                DELETED,
                DocumentDeletedOut(patient_id=actor.user_id, document=gone),
            )
            await uow.commit()
        await self._store.remove(row.stored_name)
        log.info("document %s deleted by its patient", document_id)

    async def share(
        self, actor: Actor, consultation_id: int, document_id: int, client_id: str
    ) -> MessageOut:
        """Post the patient's own document into their active consultation's chat."""
        check_patient(actor)
        async with self._db.reader() as uow:  # only reads: the chat's write follows
            row = await self._own(uow, actor, document_id, "document.share")
        # The chat checks the consultation is the patient's and active, and audits the write.
        message = await self._chat.post(
            actor,
            consultation_id,
            client_id,
            f"Shared a document: {row.filename}",
            document_id=document_id,
        )
        log.info("document %s shared into consultation %s", document_id, consultation_id)
        return message

    async def _own(self, uow: UnitOfWork, actor: Actor, document_id: int, action: str) -> Any:
        """The actor's own document, not deleted; another patient's is refused (audited)."""
        row = await repo.load(uow, document_id)
        if row is None or row.deleted_at is not None:
            raise NotFound(f"no document {document_id}", code="document_not_found")
        if row.patient_id != actor.user_id:
            self._audit.deny_after_rollback(uow, actor, action, patient_id=row.patient_id)
            raise NotAllowed("this document is not yours", code="not_your_document")
        return row
