"""How a basic account becomes verified.

The patient gives their PESEL and asks; an ``IdentityCheck`` decides. The one shipped is
``StaffCheck``: the request waits in a queue until a member of staff (the scheduler: the
clinic's front desk, who already handles patients' tickets and renewal requests) has seen an
identity document, in person or on a video call, and confirms it, or rejects it with a reason.
Either decision is audited with the patient's id.

An external identity provider (the national login service, a bank's identity) replaces the
queue by implementing ``IdentityCheck.begin`` (send the patient to the provider and answer with
where to go) and calling ``mark_verified`` from the route that receives the provider's answer:
everything else (what a verified account may do) reads ``users.identity`` and is unchanged.
"""

from __future__ import annotations

from typing import Protocol

from consult.accounts.checks import check_email_confirmed
from consult.audit import Audit
from consult.clock import Clock
from consult.domain import Actor, Identity
from consult.errors import Conflict, NotAllowed, NotFound
from consult.identity import repository as repo
from consult.identity.schemas import PendingRequestOut, VerificationOut
from consult.outcome.pesel import parse_pesel
from consult.storage.uow import Database, UnitOfWork


class IdentityCheck(Protocol):
    async def begin(self, actor: Actor, pesel: str) -> VerificationOut:
        """Start verifying the patient with this PESEL (validated)."""
        ...

    async def status(self, actor: Actor) -> VerificationOut: ...


async def mark_verified(uow: UnitOfWork, user_id: int, pesel: str) -> None:
    """The account is verified, with this PESEL in its profile (any check's last step)."""
    await repo.set_verified(uow, user_id, pesel)


def _check_patient(actor: Actor) -> None:
    if not actor.is_patient:
        raise NotAllowed("only patients verify their identity here", code="not_a_patient")


def _check_scheduler(actor: Actor) -> None:
    if actor.role != "scheduler":
        raise NotAllowed("only schedulers confirm identities", code="not_a_scheduler")


class StaffCheck:
    def __init__(self, db: Database, clock: Clock, audit: Audit) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit

    async def begin(self, actor: Actor, pesel: str) -> VerificationOut:
        _check_patient(actor)
        number = parse_pesel(pesel, today=self._clock.now().date()).number
        async with self._db.uow() as uow:
            await repo.lock_user(uow, actor.user_id)
            if await repo.identity_of(uow, actor.user_id) == Identity.VERIFIED:
                raise Conflict("your identity is verified already", code="already_verified")
            await check_email_confirmed(uow, actor, "verifying your identity")
            latest = await repo.latest(uow, actor.user_id)
            if latest is not None and latest.status == "pending":
                raise Conflict(
                    "your request waits for the staff already", code="verification_pending"
                )
            request_id = await repo.add_request(uow, actor.user_id, number, self._clock.now())
            await self._audit.write(
                uow, actor, "identity.request", patient_id=actor.user_id, detail=f"{request_id}"
            )
            out = await self._status(uow, actor.user_id)
            await uow.commit()
        return out

    async def status(self, actor: Actor) -> VerificationOut:
        _check_patient(actor)
        async with self._db.reader() as uow:
            return await self._status(uow, actor.user_id)

    async def _status(self, uow: UnitOfWork, user_id: int) -> VerificationOut:
        identity = await repo.identity_of(uow, user_id)
        latest = await repo.latest(uow, user_id)
        if latest is None:
            return VerificationOut(identity=identity)
        return VerificationOut(
            identity=identity,
            request_id=latest.id,
            status=latest.status,
            requested_at=latest.requested_at,
            decided_at=latest.decided_at,
            note=latest.note if latest.status == "rejected" else None,
        )

    async def pending(self, actor: Actor) -> list[PendingRequestOut]:
        """The queue, oldest first: each request's PESEL and the birth date it encodes."""
        _check_scheduler(actor)
        async with self._db.uow() as uow:
            rows = await repo.pending(uow)
            await self._audit.reads(uow, actor, "identity.requests.read", [r.user_id for r in rows])
            await uow.commit()
        return [
            PendingRequestOut(
                id=r.id,
                user_id=r.user_id,
                name=r.name,
                email=r.email,
                pesel=r.pesel,
                born=parse_pesel(r.pesel).born,
                requested_at=r.requested_at,
            )
            for r in rows
        ]

    async def decide(self, actor: Actor, request_id: int, *, confirm: bool, note: str) -> None:
        _check_scheduler(actor)
        async with self._db.uow() as uow:
            request = await repo.lock_request(uow, request_id)
            if request is None:
                raise NotFound(f"no identity request {request_id}", code="request_not_found")
            if request.status != "pending":
                raise Conflict(f"this request is {request.status} already", code="request_decided")
            status = "confirmed" if confirm else "rejected"
            await repo.decide(uow, request_id, status, actor.user_id, self._clock.now(), note)
            if confirm:
                await mark_verified(uow, request.user_id, request.pesel)
            await self._audit.write(
                uow,
                actor,
                "identity.confirm" if confirm else "identity.reject",
                patient_id=request.user_id,
                detail=f"request {request_id}: {note}",
            )
            await uow.commit()
