"""The visit's outcome in the consultation: the doctor's draft, saved as they type; "Issue and
end", which stores the recommendation, a package of e-prescriptions, referrals and sick leave
and ends the consultation in one transaction, once per consultation; reading it back.

Issued once: the request carries an ``Idempotency-Key``. The outcome row keeps the key and a
hash of the checked body, under the consultation's row lock, so a repeat with the same key and
body gets the stored outcome, a repeat with another body ``idempotency_key_reused``, and any
other request for an ended consultation ``consultation_ended``. Every write is audited.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from consult.audit import Audit
from consult.clock import Clock, as_utc
from consult.domain import Actor, ConsultationStatus
from consult.errors import Conflict, Invalid, NotAllowed, NotFound, Unprocessable
from consult.events import Push, RecordChanged
from consult.notify import messages
from consult.notify.outbox import enqueue
from consult.outcome import keys
from consult.outcome import repository as repo
from consult.outcome.catalogue_store import CatalogueStore
from consult.outcome.checks import CheckedOutcome, check_outcome, same_substance
from consult.outcome.issued import DraftOut, IssuerOut, OutcomeOut
from consult.outcome.schemas import OutcomeDraft
from consult.outcome.validity import clinic_day
from consult.queue.service import ConsultationService, check_doctor
from consult.storage import tables as t
from consult.storage.retry import retry_transient
from consult.storage.uow import Database, UnitOfWork

log = logging.getLogger(__name__)

MAX_KEY_LENGTH = 200


def request_hash(draft: OutcomeDraft) -> str:
    """The body as validated: the same outcome typed twice hashes alike."""
    return hashlib.sha256(draft.model_dump_json().encode()).hexdigest()


def check_idempotency_key(raw: str | None) -> str:
    if raw is None or not raw.strip():
        raise Invalid(
            "send an Idempotency-Key header (a fresh random value per outcome)",
            code="idempotency_key_required",
        )
    key = raw.strip()
    if len(key) > MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise Invalid(
            f"the Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters",
            code="invalid_idempotency_key",
        )
    return key


class OutcomeService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        audit: Audit,
        consultations: ConsultationService,
        catalogue: CatalogueStore,
    ) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._consultations = consultations
        self.catalogue = catalogue
        # Tests set it to raise between two writes of "Issue and end" (the step's name is
        # passed): everything before must roll back.
        self.fault: Callable[[str], None] | None = None

    def _step(self, name: str) -> None:
        if self.fault is not None:
            self.fault(name)

    async def _doctor_row(
        self, uow: UnitOfWork, actor: Actor, consultation_id: int, action: str
    ) -> sa.Row:
        check_doctor(actor)
        row = await self._consultations.participant_row(uow, actor, consultation_id, action)
        if row.doctor_id != actor.user_id:
            raise NotAllowed(
                "only the doctor who accepted the consultation issues its outcome",
                code="not_the_doctor",
            )
        return row

    # --- the draft --------------------------------------------------------------------------

    async def draft(self, actor: Actor, consultation_id: int) -> DraftOut:
        async with self._db.uow() as uow:
            row = await self._doctor_row(uow, actor, consultation_id, "outcome.draft.read")
            saved = await repo.draft(uow, consultation_id)
            body = OutcomeDraft.model_validate(saved.body) if saved else OutcomeDraft()
            return await self._drafted(
                uow,
                actor,
                "outcome.draft.read",
                row,
                body,
                version=saved.version if saved else 0,
                updated_at=as_utc(saved.updated_at) if saved else None,
            )

    @retry_transient()
    async def save_draft(self, actor: Actor, consultation_id: int, body: OutcomeDraft) -> DraftOut:
        """Store the draft as typed (the catalogue and ICD-10 rules wait for "Issue and end");
        the warnings come back at once."""
        async with self._db.uow() as uow:
            row = await self._doctor_row(uow, actor, consultation_id, "outcome.draft.write")
            if row.status != ConsultationStatus.ACTIVE:
                raise Conflict("the consultation has ended", code="consultation_ended")
            now = self._clock.now()
            version = await repo.save_draft(
                uow, consultation_id, actor.user_id, body.model_dump(mode="json"), now
            )
            return await self._drafted(
                uow, actor, "outcome.draft.write", row, body, version=version, updated_at=now
            )

    async def _drafted(
        self,
        uow: UnitOfWork,
        actor: Actor,
        action: str,
        row: sa.Row,
        body: OutcomeDraft,
        *,
        version: int,
        updated_at: datetime | None,
    ) -> DraftOut:
        """The draft as read or saved, with its warnings, once that is audited and committed."""
        warnings = await self._warnings(uow, row.patient_id, body)
        await self._audit.write(
            uow, actor, action, patient_id=row.patient_id, consultation_id=row.id
        )
        await uow.commit()
        return DraftOut(
            consultation_id=row.id,
            version=version,
            updated_at=updated_at,
            draft=body.model_dump(mode="json"),
            warnings=warnings,
        )

    async def _warnings(self, uow: UnitOfWork, patient_id: int, body: OutcomeDraft) -> list[str]:
        if not body.prescriptions:
            return []
        catalogue = await self.catalogue.get()
        products = [catalogue.get(p.product_id) for p in body.prescriptions]
        active = await repo.active_substances(uow, patient_id, clinic_day(self._clock.now()))
        clashes = same_substance([p for p in products if p is not None], active)
        return [
            f"the patient already has an active prescription for {substance}"
            for substance in clashes
        ]

    # --- issue and end ----------------------------------------------------------------------

    @retry_transient()
    async def issue_and_end(
        self, actor: Actor, consultation_id: int, body: OutcomeDraft, idempotency_key: str
    ) -> tuple[OutcomeOut, bool]:
        """The outcome, and whether it was stored now (False: a repeat got the stored one)."""
        digest = request_hash(body)
        async with self._db.uow() as uow:
            row = await self._doctor_row(uow, actor, consultation_id, "outcome.issue")
            stored = await repo.outcome_by_key(uow, actor.user_id, idempotency_key)
            if stored is not None:
                if stored.consultation_id != consultation_id or stored.request_hash != digest:
                    raise Unprocessable(
                        "this Idempotency-Key was used for another request",
                        code="idempotency_key_reused",
                    )
                return await self._load(uow, consultation_id), False
            if row.status != ConsultationStatus.ACTIVE:
                raise Conflict("the consultation has already ended", code="consultation_ended")
            now = self._clock.now()
            patient = await self._person(uow, row.patient_id)
            catalogue = await self.catalogue.get()
            checked = check_outcome(body, catalogue, clinic_day(now), patient.pesel)
            warnings = await self._warnings(uow, row.patient_id, body)
            await self._write(uow, actor, row, body, checked, idempotency_key, digest, now)
            await self._consultations.close_open(uow, actor, row)
            self._step("ended")
            await repo.drop_draft(uow, consultation_id)
            out = await self._load(uow, consultation_id)
            out.warnings = warnings
            payload = {"outcome": out.model_dump(mode="json", exclude={"warnings"})}
            uow.collect(Push((row.patient_id, actor.user_id), "outcome:issued", payload))
            uow.collect(RecordChanged(row.patient_id, consultation_id))
            await uow.commit()
        log.info("outcome of consultation %s issued by doctor %s", consultation_id, actor.user_id)
        return out, True

    async def _write(
        self,
        uow: UnitOfWork,
        actor: Actor,
        row: sa.Row,
        body: OutcomeDraft,
        checked: CheckedOutcome,
        idempotency_key: str,
        digest: str,
        now: datetime,
    ) -> None:
        common = {
            "patient_id": row.patient_id,
            "doctor_id": actor.user_id,
        }
        recommendation_id = None
        if body.recommendation:
            recommendation_id = await repo.insert(
                uow,
                t.recommendations,
                consultation_id=row.id,
                text=body.recommendation,
                created_at=now,
                **common,
            )
            self._step("recommendation")
        outcome_id = await repo.insert(
            uow,
            t.outcomes,
            consultation_id=row.id,
            idempotency_key=idempotency_key,
            request_hash=digest,
            issued_at=now,
            recommendation_id=recommendation_id,
            **common,
        )
        self._step("outcome")
        documents = {"consultation_id": row.id, "outcome_id": outcome_id, "issued_at": now}
        if checked.prescriptions:
            issued = await self._package(uow, checked, documents | common, now)
            count = len(checked.prescriptions)
            await self._package_mail(uow, actor, row.patient_id, issued, count, now)
        await self._referrals(uow, body, checked, documents | common)
        await self._sick_leave(uow, body, checked, documents | common)
        await self._audit.write(
            uow, actor, "outcome.issue", patient_id=row.patient_id, consultation_id=row.id
        )

    async def _referrals(
        self, uow: UnitOfWork, body: OutcomeDraft, checked: CheckedOutcome, values: dict[str, Any]
    ) -> None:
        for position, (draft, diagnosis) in enumerate(
            zip(body.referrals, checked.referral_diagnoses, strict=True)
        ):
            await repo.insert(
                uow,
                t.referrals,
                key=await repo.fresh_key(uow, t.referrals),
                access_code=keys.new_access_code(),
                position=position,
                kind=draft.kind,
                target=draft.target,
                diagnosis_code=diagnosis.code,
                diagnosis_title=diagnosis.title,
                reason=draft.reason,
                priority=draft.priority,
                **values,
            )
            self._step("referral")

    async def _sick_leave(
        self, uow: UnitOfWork, body: OutcomeDraft, checked: CheckedOutcome, values: dict[str, Any]
    ) -> None:
        leave, diagnosis = body.sick_leave, checked.sick_leave_diagnosis
        if leave is None or diagnosis is None:
            return
        await repo.insert(
            uow,
            t.sick_leaves,
            start=leave.start,
            end=leave.end,
            backdating_reason=leave.backdating_reason,
            recommendation=int(leave.recommendation),
            diagnosis_code=diagnosis.code,
            diagnosis_title=diagnosis.title,
            letter_codes=[str(c) for c in leave.letter_codes],
            employer_nip=checked.employer_nip,
            **values,
        )
        self._step("sick_leave")

    async def _package_mail(
        self,
        uow: UnitOfWork,
        actor: Actor,
        patient_id: int,
        issued: tuple[str, str],
        count: int,
        now: datetime,
    ) -> None:
        """The package's key and access code by e-mail, as the national system sends them."""
        key, code = issued
        to = await messages.recipient(uow, patient_id)
        doctor = actor.name
        mail = messages.prescription_issued(patient_id, to.email, to.name, doctor, code, key, count)
        await enqueue(uow, mail, now)

    async def _package(
        self, uow: UnitOfWork, checked: CheckedOutcome, values: dict[str, Any], now: datetime
    ) -> tuple[str, str]:
        """The package (its key and access code) with its prescriptions."""
        key, code = await repo.fresh_key(uow, t.prescription_packages), keys.new_access_code()
        package_id = await repo.insert(
            uow, t.prescription_packages, key=key, access_code=code, **values
        )
        self._step("package")
        rows = [
            repo.prescription_row(p, position, package_id, values, clinic_day(now))
            for position, p in enumerate(checked.prescriptions)
        ]
        await repo.insert_prescriptions(uow, rows)
        self._step("prescriptions")
        return str(key), code

    async def _person(self, uow: UnitOfWork, user_id: int) -> sa.Row:
        found = await uow.conn.execute(
            sa.select(
                t.users.c.id, t.users.c.name, t.users.c.pesel, t.users.c.licence_number
            ).where(t.users.c.id == user_id)
        )
        return found.one()

    # --- reading ----------------------------------------------------------------------------

    async def _load(self, uow: UnitOfWork, consultation_id: int) -> OutcomeOut:
        stored = await repo.outcome_of(uow, consultation_id)
        if stored is None:
            raise NotFound("this consultation ended without an outcome", code="outcome_not_found")
        now = self._clock.now()
        doctor = await self._person(uow, stored.doctor_id)
        text = None
        if stored.recommendation_id is not None:
            found = await uow.conn.execute(
                sa.select(t.recommendations.c.text).where(
                    t.recommendations.c.id == stored.recommendation_id
                )
            )
            text = found.scalar_one()
        packages = await repo.packages(uow, t.prescription_packages.c.outcome_id == stored.id, now)
        referrals = await repo.referrals(uow, t.referrals.c.outcome_id == stored.id)
        leaves = await repo.sick_leaves(uow, t.sick_leaves.c.outcome_id == stored.id)
        return OutcomeOut(
            consultation_id=consultation_id,
            patient_id=stored.patient_id,
            issued_at=as_utc(stored.issued_at),
            doctor=IssuerOut(id=doctor.id, name=doctor.name, licence_number=doctor.licence_number),
            recommendation=text,
            packages=packages,
            referrals=referrals,
            sick_leave=leaves[0] if leaves else None,
        )

    async def outcome(self, actor: Actor, consultation_id: int) -> OutcomeOut:
        """For the patient and any doctor who accepted the consultation; audited."""
        async with self._db.uow() as uow:
            row = await self._consultations.participant_row(
                uow, actor, consultation_id, "outcome.read", read=True, lock=False
            )
            out = await self._load(uow, consultation_id)
            await self._audit.write(
                uow, actor, "outcome.read", patient_id=row.patient_id, consultation_id=row.id
            )
            await uow.commit()
        return out
