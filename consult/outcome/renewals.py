"""Prescription renewals: the patient asks to renew a prescription of theirs (active, or expired
less than 120 days ago, of a product for long-term treatment); the request waits for the
doctor who issued it, live in their Renewals inbox; a scheduler may hand it to another doctor
of the consultation's specialty; the doctor approves it (a new package: new key and access
code, linked to the request) or declines it with a reason, and the patient is told live.

One open request per prescription: asking again while one is open answers the open one,
stores nothing and tells nobody again, however many requests arrive at once (the partial
unique index uq_renewal_requests_one_open guarantees it). Every write is audited, and so is a
refusal to someone who is not the request's patient or doctor.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from consult.audit import Audit
from consult.clock import Clock
from consult.domain import Actor, Role
from consult.errors import Conflict, NotAllowed, NotFound
from consult.events import Push
from consult.notify import messages
from consult.notify.outbox import enqueue
from consult.outcome import keys
from consult.outcome import renewals_repository as rrepo
from consult.outcome import repository as repo
from consult.outcome.renewal import RenewalStatus, check_renewable
from consult.outcome.renewal_payloads import ApproveIn, RenewalFilter, RenewalOut
from consult.outcome.validity import Category, clinic_day, valid_until, validity_days
from consult.queue.service import check_doctor
from consult.storage import tables as t
from consult.storage.retry import retry_transient
from consult.storage.uow import Database, UnitOfWork

log = logging.getLogger(__name__)

_FILTERS = {
    RenewalFilter.OPEN: (RenewalStatus.OPEN,),
    RenewalFilter.DECIDED: (RenewalStatus.APPROVED, RenewalStatus.DECLINED),
}


def check_patient(actor: Actor) -> None:
    if not actor.is_patient:
        raise NotAllowed("only patients ask to renew their prescriptions", code="not_a_patient")


def check_scheduler(actor: Actor) -> None:
    if actor.role is not Role.SCHEDULER:
        raise NotAllowed(
            "only schedulers hand a renewal request to another doctor", code="not_a_scheduler"
        )


def renewed_prescription(
    original: Any, body: ApproveIn, today: date, doctor_id: int
) -> dict[str, Any]:
    """The new prescription's row (without its package): the original's product, issued
    today, with the doctor's changes; validity from the category again (``Invalid`` with the
    outcome's validity codes when a long-term choice breaks a rule)."""
    chosen = body.validity_days if body.validity_days is not None else original.validity_days
    therapy = body.therapy_days if body.therapy_days is not None else original.therapy_days
    days = validity_days(
        Category(original.category),
        long_term_eligible=original.long_term_eligible,
        chosen_days=chosen,
        therapy_days=therapy,
    )
    copied = (
        "patient_id",
        "product_id",
        "product_name",
        "substance",
        "strength",
        "form",
        "category",
        "long_term_eligible",
        "pack_size",
        "payment_level",
    )
    return {
        **{name: getattr(original, name) for name in copied},
        "doctor_id": doctor_id,
        "position": 1,
        "packs": body.packs if body.packs is not None else original.packs,
        "dosage_instruction": body.dosage_instruction or original.dosage_instruction,
        "issued_on": today,
        "dispense_from": None,
        "validity_days": days,
        "therapy_days": therapy,
        "valid_until": valid_until(today, days),
    }


class RenewalService:
    def __init__(self, db: Database, clock: Clock, audit: Audit) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit

    @retry_transient()
    async def request(
        self, actor: Actor, prescription_id: int, note: str
    ) -> tuple[RenewalOut, bool]:
        """The open request for the prescription, and whether it was made now (False: one was
        open already, and it is answered as it is)."""
        check_patient(actor)
        async with self._db.uow() as uow:
            row = await rrepo.lock_prescription(uow, prescription_id)
            if row is None or row.patient_id != actor.user_id:
                if row is not None:
                    self._audit.deny_after_rollback(
                        uow,
                        actor,
                        "renewal.request",
                        patient_id=row.patient_id,
                        consultation_id=row.consultation_id,
                    )
                raise NotFound(
                    f"no prescription {prescription_id} of yours", code="prescription_not_found"
                )
            now = self._clock.now()
            stored = await rrepo.open_for(uow, prescription_id)
            if stored is None:
                check_renewable(repo.product_of(row), repo.validity_of(row), now)
                stored = await rrepo.insert_open(
                    uow,
                    prescription_id=prescription_id,
                    patient_id=actor.user_id,
                    doctor_id=row.doctor_id,
                    note=note,
                    requested_at=now,
                )
                if stored is not None:
                    return await self._requested(uow, actor, row, stored), True
                # A concurrent request committed first: answer the one it stored.
                stored = await rrepo.open_for(uow, prescription_id)
                assert stored is not None
            # Nothing is written (the transaction rolls back), told or audited again.
            log.info("renewal %s asked again (prescription %s)", stored, prescription_id)
            return await rrepo.one(uow, stored, now), False

    async def _requested(
        self, uow: UnitOfWork, actor: Actor, prescription: Any, renewal_id: int
    ) -> RenewalOut:
        await self._audit.write(
            uow,
            actor,
            "renewal.request",
            patient_id=actor.user_id,
            consultation_id=prescription.consultation_id,
            detail=f"prescription {prescription.id}",
        )
        out = await rrepo.one(uow, renewal_id, self._clock.now())
        payload = {"renewal": out.model_dump(mode="json")}
        uow.collect(Push((prescription.doctor_id,), "renewal:requested", payload))
        await uow.commit()
        log.info("renewal %s of prescription %s asked", renewal_id, prescription.id)
        return out

    async def list_for(self, actor: Actor, status: RenewalFilter) -> list[RenewalOut]:
        """A doctor's requests (waiting for them, oldest first; ``decided``: those they
        decided), a patient's own (newest first), or every one for a scheduler."""
        statuses = _FILTERS[status]
        async with self._db.uow() as uow:
            now = self._clock.now()
            if actor.is_doctor:
                found = await rrepo.listed(uow, now, statuses, doctor_id=actor.user_id)
            elif actor.is_patient:
                found = await rrepo.listed(uow, now, statuses, patient_id=actor.user_id)
            else:
                found = await rrepo.listed(uow, now, statuses)
            await self._audit.reads(uow, actor, "renewal.read", (r.patient.id for r in found))
            await uow.commit()
        return found

    @retry_transient()
    async def approve(self, actor: Actor, renewal_id: int, body: ApproveIn) -> RenewalOut:
        """A new package with the renewed prescription, linked to the request."""
        check_doctor(actor)
        async with self._db.uow() as uow:
            row = await self._assigned(uow, actor, renewal_id, "renewal.approve")
            original = await rrepo.prescription(uow, row.prescription_id)
            if original.cancelled_at is not None:
                raise Conflict(
                    "the prescription was cancelled after the request: decline it instead",
                    code="renewal_cancelled",
                )
            now = self._clock.now()
            renewed = renewed_prescription(original, body, clinic_day(now), actor.user_id)
            package_id = await repo.insert(
                uow,
                t.prescription_packages,
                key=await repo.fresh_key(uow, t.prescription_packages),
                access_code=keys.new_access_code(),
                patient_id=row.patient_id,
                doctor_id=actor.user_id,
                consultation_id=original.consultation_id,
                renewal_id=row.id,
                issued_at=now,
            )
            await repo.insert_prescriptions(uow, [{**renewed, "package_id": package_id}])
            await rrepo.update(
                uow,
                row.id,
                status=RenewalStatus.APPROVED.value,
                decided_at=now,
                decided_by=actor.user_id,
                package_id=package_id,
            )
            return await self._decided(uow, actor, row, "renewal.approve")

    @retry_transient()
    async def decline(self, actor: Actor, renewal_id: int, reason: str) -> RenewalOut:
        check_doctor(actor)
        async with self._db.uow() as uow:
            row = await self._assigned(uow, actor, renewal_id, "renewal.decline")
            await rrepo.update(
                uow,
                row.id,
                status=RenewalStatus.DECLINED.value,
                decided_at=self._clock.now(),
                decided_by=actor.user_id,
                decline_reason=reason,
            )
            return await self._decided(uow, actor, row, "renewal.decline")

    async def _assigned(self, uow: UnitOfWork, actor: Actor, renewal_id: int, action: str) -> Any:
        """The open request, locked, waiting for this doctor."""
        row = await self._open(uow, renewal_id)
        if row.doctor_id != actor.user_id:
            self._audit.deny_after_rollback(
                uow, actor, action, patient_id=row.patient_id, consultation_id=row.consultation_id
            )
            raise NotAllowed(
                "this renewal request waits for another doctor", code="not_your_renewal"
            )
        return row

    @staticmethod
    async def _open(uow: UnitOfWork, renewal_id: int) -> Any:
        row = await rrepo.lock(uow, renewal_id)
        if row is None:
            raise NotFound(f"no renewal request {renewal_id}", code="renewal_not_found")
        if row.status != RenewalStatus.OPEN:
            raise Conflict(f"this renewal request is {row.status} already", code="renewal_decided")
        return row

    async def _decided(self, uow: UnitOfWork, actor: Actor, row: Any, action: str) -> RenewalOut:
        await self._audit.write(
            uow,
            actor,
            action,
            patient_id=row.patient_id,
            consultation_id=row.consultation_id,
            detail=f"renewal {row.id}",
        )
        out = await rrepo.one(uow, row.id, self._clock.now())
        to = await messages.recipient(uow, row.patient_id)
        approved = action == "renewal.approve"
        mail = messages.renewal_decided(row.patient_id, to.email, to.name, approved)
        await enqueue(uow, mail, self._clock.now())
        # To the doctor too: their other tabs take it out of the inbox.
        payload = {"renewal": out.model_dump(mode="json")}
        uow.collect(Push((row.patient_id, row.doctor_id), "renewal:decided", payload))
        await uow.commit()
        log.info("renewal %s %s by doctor %s", row.id, out.status, actor.user_id)
        return out

    @retry_transient()
    async def reassign(self, actor: Actor, renewal_id: int, doctor_id: int) -> RenewalOut:
        """A scheduler hands an open request to another doctor of the consultation's
        specialty."""
        check_scheduler(actor)
        async with self._db.uow() as uow:
            row = await self._open(uow, renewal_id)
            if not await rrepo.is_doctor(uow, doctor_id):
                raise NotFound(f"no doctor {doctor_id}", code="doctor_not_found")
            if doctor_id == row.doctor_id:
                raise Conflict(
                    "the request waits for this doctor already", code="renewal_same_doctor"
                )
            if not await rrepo.practises(uow, doctor_id, row.specialty_code):
                raise Conflict(
                    f"doctor {doctor_id} does not practise {row.specialty_code}, the specialty "
                    "of the prescription's consultation",
                    code="doctor_not_in_specialty",
                )
            await rrepo.update(uow, row.id, doctor_id=doctor_id)
            await self._audit.write(
                uow,
                actor,
                "renewal.reassign",
                patient_id=row.patient_id,
                consultation_id=row.consultation_id,
                detail=f"renewal {row.id}: doctor {row.doctor_id} -> {doctor_id}",
            )
            out = await rrepo.one(uow, row.id, self._clock.now())
            payload = {"renewal": out.model_dump(mode="json"), "from_doctor_id": row.doctor_id}
            uow.collect(Push((row.doctor_id, doctor_id), "renewal:reassigned", payload))
            await uow.commit()
        log.info("renewal %s handed to doctor %s", renewal_id, doctor_id)
        return out
