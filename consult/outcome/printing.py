"""The printouts of issued documents, for whom may read them: a package of e-prescriptions, a
referral or a sick leave as its informational PDF (printouts.py), for the patient it was
issued to, a doctor who took that patient (``participation.took_patient``), or the doctor who
issued it (a renewal approved by a doctor it was handed to, who may never have consulted
the patient). Anyone else
gets the same 404 as for a document that does not exist, audited as a denied
``outcome.printout.read``; a read is audited as an allowed one.

The record archive asks for the printouts of one patient's documents without an actor
(``own``): it has checked that the patient reads their own record and audits the archive as one
read.

The rows are read in a read-only unit (the patient's name and PESEL, the doctor's name and
licence number as they are now, from ``users``); the PDF is made after it, in a worker thread
(about 25 ms of CPU that must not hold the event loop), one at a time per process: reportlab's
font subsetting is not thread-safe, and the waiting is done on the loop, not in the pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import sqlalchemy as sa

from consult.audit import Audit
from consult.clock import Clock, as_utc
from consult.domain import Actor
from consult.errors import NotFound
from consult.outcome.printout_files import (
    PACKAGE_FILE,
    REFERRAL_FILE,
    SICK_LEAVE_FILE,
    PrintoutFile,
)
from consult.outcome.printouts import (
    PackagePrintout,
    Parties,
    PrintedPrescription,
    ReferralPrintout,
    SickLeavePrintout,
    package_pdf,
    referral_pdf,
    sick_leave_pdf,
)
from consult.queue import participation
from consult.storage import tables as t
from consult.storage.uow import Database, UnitOfWork

ACTION: Final = "outcome.printout.read"
CONTENT_TYPE: Final = "application/pdf"
_P = t.prescriptions


@dataclass(frozen=True)
class Printout:
    filename: str  # ASCII, no key or code in it: it stays in the browser's download list
    content: bytes


@dataclass(frozen=True)
class _Kind:
    """What differs between the three: the table, the name in messages and the audit detail,
    the not-found code, the file's name and route."""

    table: sa.Table
    name: str
    code: str
    file: PrintoutFile


# By keyword: tests/unit/test_docs_match_server.py finds the codes as ``code="..."``.
PACKAGE: Final = _Kind(
    table=t.prescription_packages, name="package", code="package_not_found", file=PACKAGE_FILE
)
REFERRAL: Final = _Kind(
    table=t.referrals, name="referral", code="referral_not_found", file=REFERRAL_FILE
)
SICK_LEAVE: Final = _Kind(
    table=t.sick_leaves, name="sick leave", code="sick_leave_not_found", file=SICK_LEAVE_FILE
)
_KINDS: Final = {kind.file: kind for kind in (PACKAGE, REFERRAL, SICK_LEAVE)}


class Printing:
    def __init__(self, db: Database, clock: Clock, audit: Audit, clinic_name: str) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._clinic_name = clinic_name
        self._rendering = asyncio.Lock()

    async def package(self, actor: Actor, package_id: int) -> Printout:
        row, items = await self._read(actor, PACKAGE, package_id, _prescriptions)
        return await self._make(PACKAGE, row, items)

    async def referral(self, actor: Actor, referral_id: int) -> Printout:
        row, _ = await self._read(actor, REFERRAL, referral_id, None)
        return await self._make(REFERRAL, row, [])

    async def sick_leave(self, actor: Actor, sick_leave_id: int) -> Printout:
        row, _ = await self._read(actor, SICK_LEAVE, sick_leave_id, None)
        return await self._make(SICK_LEAVE, row, [])

    async def own(self, patient_id: int, file: PrintoutFile, document_id: int) -> Printout | None:
        """The printout of a document issued to ``patient_id``, for a caller that has checked
        that the patient reads their own record and audits that read itself (the archive);
        None when there is no such document of theirs."""
        kind = _KINDS[file]
        async with self._db.reader() as uow:
            row = await _document(uow, kind.table, document_id)
            if row is None or row.patient_id != patient_id:
                return None
            items = await _prescriptions(uow, document_id) if kind is PACKAGE else []
        return await self._make(kind, row, items)

    async def _make(self, kind: _Kind, row: Any, items: list[Any]) -> Printout:
        printout: Any
        if kind is PACKAGE:
            make: Callable[[Any], bytes] = package_pdf
            printout = self._package(row, items)
        elif kind is REFERRAL:
            make, printout = referral_pdf, self._referral(row)
        else:
            make, printout = sick_leave_pdf, self._sick_leave(row)
        async with self._rendering:
            content = await asyncio.to_thread(make, printout)
        return Printout(kind.file.filename(row.id, as_utc(row.issued_at)), content)

    def _package(self, row: Any, items: list[Any]) -> PackagePrintout:
        return PackagePrintout(
            parties=self._parties(row),
            key=row.key,
            access_code=row.access_code,
            issued_at=as_utc(row.issued_at),
            prescriptions=[_printed(item) for item in items],
        )

    def _referral(self, row: Any) -> ReferralPrintout:
        return ReferralPrintout(
            parties=self._parties(row),
            key=row.key,
            access_code=row.access_code,
            issued_at=as_utc(row.issued_at),
            kind=row.kind,
            target=row.target,
            diagnosis_code=row.diagnosis_code,
            diagnosis_title=row.diagnosis_title,
            reason=row.reason,
            priority=row.priority,
            cancelled=row.cancelled_at is not None,
        )

    def _sick_leave(self, row: Any) -> SickLeavePrintout:
        return SickLeavePrintout(
            parties=self._parties(row),
            issued_at=as_utc(row.issued_at),
            start=row.start,
            end=row.end,
            recommendation=row.recommendation,
            diagnosis_code=row.diagnosis_code,
            diagnosis_title=row.diagnosis_title,
            letter_codes=list(row.letter_codes),
            employer_nip=row.employer_nip,
            backdating_reason=row.backdating_reason,
            cancelled=row.cancelled_at is not None,
        )

    # --- reading, with the access rule and its audit -----------------------------------------

    async def _read(
        self,
        actor: Actor,
        kind: _Kind,
        document_id: int,
        items: Callable[[UnitOfWork, int], Awaitable[list[Any]]] | None,
    ) -> tuple[Any, list[Any]]:
        """The document's row (with the parties' columns) and its items, once the actor may
        read it; ``NotFound`` alike for a document that does not exist and another's."""
        detail = f"{kind.name} {document_id}"
        async with self._db.reader() as uow:
            row = await _document(uow, kind.table, document_id)
            allowed = row is not None and await self._may_read(uow, actor, row)
            loaded = await items(uow, document_id) if allowed and items else []
        if row is None or not allowed:
            if row is not None:  # another's: a denied read of that patient's data
                await self._audit.deny(
                    actor,
                    ACTION,
                    patient_id=row.patient_id,
                    consultation_id=row.consultation_id,
                    detail=detail,
                )
            # The same answer either way: a stranger learns nothing of what exists.
            raise NotFound(f"no {detail} you may print", code=kind.code)
        async with self._db.uow() as uow:
            await self._audit.write(
                uow,
                actor,
                ACTION,
                patient_id=row.patient_id,
                consultation_id=row.consultation_id,
                detail=detail,
            )
            await uow.commit()
        return row, loaded

    async def _may_read(self, uow: UnitOfWork, actor: Actor, row: Any) -> bool:
        if actor.is_patient:
            return bool(actor.user_id == row.patient_id)
        if not actor.is_doctor:
            return False
        if actor.user_id == row.doctor_id:
            return True
        return await participation.took_patient(uow, actor.user_id, row.patient_id)

    def _parties(self, row: Any) -> Parties:
        return Parties(
            clinic_name=self._clinic_name,
            patient_name=row.patient_name,
            pesel=row.patient_pesel,
            doctor_name=row.doctor_name,
            licence_number=row.doctor_licence or "not on file",
        )


async def _document(uow: UnitOfWork, table: sa.Table, document_id: int) -> Any:
    """The row with the patient's name and PESEL and the doctor's name and licence number."""
    patient, doctor = t.users.alias("patient"), t.users.alias("doctor")
    found = await uow.conn.execute(
        sa.select(
            table,
            patient.c.name.label("patient_name"),
            patient.c.pesel.label("patient_pesel"),
            doctor.c.name.label("doctor_name"),
            doctor.c.licence_number.label("doctor_licence"),
        )
        .select_from(
            table.join(patient, patient.c.id == table.c.patient_id).join(
                doctor, doctor.c.id == table.c.doctor_id
            )
        )
        .where(table.c.id == document_id)
    )
    return found.first()


async def _prescriptions(uow: UnitOfWork, package_id: int) -> list[Any]:
    found = await uow.conn.execute(
        sa.select(_P).where(_P.c.package_id == package_id).order_by(_P.c.position)
    )
    return list(found)


def _printed(item: Any) -> PrintedPrescription:
    return PrintedPrescription(
        product_name=item.product_name,
        strength=item.strength,
        form=item.form,
        pack_size=item.pack_size,
        packs=item.packs,
        dosage_instruction=item.dosage_instruction,
        payment_level=item.payment_level,
        dispense_from=item.dispense_from,
        valid_until=item.valid_until,
        cancelled=item.cancelled_at is not None,
    )
