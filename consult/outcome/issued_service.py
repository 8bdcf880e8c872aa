"""Issued documents after the visit: the patient's PESEL on file, the patient's (or a
consulting doctor's) list of packages, referrals and sick leave, and cancelling one (its
issuing doctor, with a reason: it stays in the record as cancelled). Every read and write is
audited; a refusal too."""

from __future__ import annotations

import logging
from typing import Any, Final

import sqlalchemy as sa

from consult.audit import Audit
from consult.clock import Clock
from consult.domain import Actor
from consult.errors import Conflict, NotAllowed, NotFound
from consult.events import Push, RecordChanged
from consult.outcome import repository as repo
from consult.outcome.issued import IssuedOut
from consult.outcome.pesel import parse_pesel
from consult.queue import participation
from consult.queue.service import check_doctor
from consult.storage import tables as t
from consult.storage.retry import retry_transient
from consult.storage.uow import Database, UnitOfWork

log = logging.getLogger(__name__)


# What may be cancelled: the kind in the route and event, and its table.
KINDS: Final = {
    "prescription": t.prescriptions,
    "referral": t.referrals,
    "sick_leave": t.sick_leaves,
}


def _not_found(kind: str, document_id: int) -> NotFound:
    if kind == "prescription":
        return NotFound(f"no prescription {document_id}", code="prescription_not_found")
    if kind == "referral":
        return NotFound(f"no referral {document_id}", code="referral_not_found")
    return NotFound(f"no sick leave {document_id}", code="sick_leave_not_found")


class IssuedDocuments:
    def __init__(self, db: Database, clock: Clock, audit: Audit) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit

    async def set_pesel(self, actor: Actor, raw: str) -> str:
        """The patient puts their PESEL in their profile (validated: checksum, birth date)."""
        if not actor.is_patient:
            raise NotAllowed("only patients have a PESEL on file here", code="not_a_patient")
        pesel = parse_pesel(raw, today=self._clock.now().date()).number
        async with self._db.uow() as uow:
            on_file = await uow.conn.execute(
                sa.select(t.users.c.identity, t.users.c.pesel).where(t.users.c.id == actor.user_id)
            )
            identity, current = on_file.one()
            # A verified identity was checked against a document with this PESEL: it stays.
            if identity == "verified" and current is not None and current != pesel:
                raise Conflict(
                    "your PESEL was verified with your identity; ask the clinic to change it",
                    code="pesel_verified",
                )
            await uow.conn.execute(
                t.users.update().where(t.users.c.id == actor.user_id).values(pesel=pesel)
            )
            await self._audit.write(uow, actor, "profile.pesel.write", patient_id=actor.user_id)
            await uow.commit()
        return pesel

    async def pesel(self, actor: Actor) -> str | None:
        async with self._db.reader() as uow:
            found = await uow.conn.execute(
                sa.select(t.users.c.pesel).where(t.users.c.id == actor.user_id)
            )
            return found.scalar_one_or_none()

    async def of_patient(self, actor: Actor, patient_id: int) -> IssuedOut:
        """Everything issued to the patient, newest first: for the patient, or a doctor who
        accepted a consultation of theirs."""
        async with self._db.uow() as uow:
            if not await participation.may_read_record(uow, actor, patient_id):
                self._audit.deny_after_rollback(
                    uow, actor, "outcome.documents.read", patient_id=patient_id
                )
                raise NotFound(f"no patient {patient_id} you may read", code="patient_not_found")
            now = self._clock.now()
            out = IssuedOut(
                packages=await repo.packages(
                    uow, t.prescription_packages.c.patient_id == patient_id, now
                ),
                referrals=await repo.referrals(uow, t.referrals.c.patient_id == patient_id),
                sick_leaves=await repo.sick_leaves(uow, t.sick_leaves.c.patient_id == patient_id),
            )
            await self._audit.write(uow, actor, "outcome.documents.read", patient_id=patient_id)
            await uow.commit()
        return out

    @retry_transient()
    async def cancel(self, actor: Actor, kind: str, document_id: int, reason: str) -> Any:
        """The document, cancelled now; ``Conflict`` if it already was."""
        check_doctor(actor)
        table = KINDS[kind]
        action = f"outcome.{kind}.cancel"
        async with self._db.uow() as uow:
            row = await repo.lock_document(uow, table, document_id)
            if row is None:
                raise _not_found(kind, document_id)
            if row.doctor_id != actor.user_id:
                self._audit.deny_after_rollback(
                    uow, actor, action, patient_id=row.patient_id, consultation_id=None
                )
                raise NotAllowed(
                    "only the doctor who issued it cancels it", code="not_the_issuing_doctor"
                )
            if row.cancelled_at is not None:
                raise Conflict("it is already cancelled", code="already_cancelled")
            await repo.cancel_document(uow, table, document_id, self._clock.now(), reason)
            document = await self._reload(uow, kind, row)
            consultation_id = await self._consultation_of(uow, kind, row)
            await self._audit.write(
                uow,
                actor,
                action,
                patient_id=row.patient_id,
                consultation_id=consultation_id,
                detail=f"{kind} {document_id}",
            )
            payload = {"kind": kind, "document": document.model_dump(mode="json")}
            uow.collect(Push((row.patient_id, actor.user_id), "outcome:cancelled", payload))
            if consultation_id is not None:
                uow.collect(RecordChanged(row.patient_id, consultation_id))
            await uow.commit()
        log.info("%s %s cancelled by doctor %s", kind, document_id, actor.user_id)
        return document

    async def _reload(self, uow: UnitOfWork, kind: str, row: Any) -> Any:
        now = self._clock.now()
        if kind == "prescription":
            (package,) = await repo.packages(
                uow, t.prescription_packages.c.id == row.package_id, now
            )
            return package
        if kind == "referral":
            (referral,) = await repo.referrals(uow, t.referrals.c.id == row.id)
            return referral
        (leave,) = await repo.sick_leaves(uow, t.sick_leaves.c.id == row.id)
        return leave

    async def _consultation_of(self, uow: UnitOfWork, kind: str, row: Any) -> int | None:
        if kind != "prescription":
            return int(row.consultation_id)
        found = await uow.conn.execute(
            sa.select(t.prescription_packages.c.consultation_id).where(
                t.prescription_packages.c.id == row.package_id
            )
        )
        return found.scalar_one_or_none()
