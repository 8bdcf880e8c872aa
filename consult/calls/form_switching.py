"""Switching a consultation's form: at once, or (up to video) after the other participant's
consent. Every switch is a stretch in ``consultation_forms`` (the forms-used timeline); a
request waiting for consent is a row of ``form_switch_requests``, so any node answers it. Runs
inside the caller's unit of work, on the consultation row it locked; the caller makes the media
follow the form after commit."""

from __future__ import annotations

from typing import Any

from consult.audit import Audit
from consult.calls import repository as repo
from consult.calls.forms import SwitchRequest, check_answerable, has_call, needs_consent
from consult.calls.recording_control import to_both
from consult.calls.schemas import FormChangeOut, FormRequestOut
from consult.clock import Clock
from consult.domain import Actor, Form
from consult.errors import Conflict, NotFound
from consult.events import Push
from consult.storage.uow import UnitOfWork


def request_out(request: SwitchRequest) -> FormRequestOut:
    return FormRequestOut(
        consultation_id=request.consultation_id,
        form=request.form,
        previous=request.previous,
        requested_by=request.requested_by,
        to_user=request.to_user,
        at=request.at,
    )


class FormSwitching:
    def __init__(self, clock: Clock, audit: Audit) -> None:
        self._clock = clock
        self._audit = audit

    async def request(
        self, uow: UnitOfWork, actor: Actor, row: Any, form: Form, *, hangup: bool
    ) -> FormChangeOut | FormRequestOut:
        """Switch at once, or (up to video) ask the other participant first."""
        current = await repo.current_form(uow, row)
        if hangup and not has_call(current):
            raise NotFound("This consultation has no call to hang up.", code="media_no_call")
        if form is current:
            raise Conflict(f"The consultation is in {form} already.", code="form_unchanged")
        if not needs_consent(current, form):
            return await self.switch(uow, actor, row, current, form, actor.user_id)
        other = row.doctor_id if actor.user_id == row.patient_id else row.patient_id
        request = SwitchRequest(row.id, form, current, actor.user_id, other, self._clock.now())
        await repo.put_request(uow, request)
        out = request_out(request)
        await self._audit.write(
            uow,
            actor,
            "call.form.request",
            patient_id=row.patient_id,
            consultation_id=row.id,
            detail=f"{current} -> {form}",
        )
        uow.collect(Push((other,), "call:form-requested", out.model_dump(mode="json")))
        return out

    async def answer(self, uow: UnitOfWork, actor: Actor, row: Any, accept: bool) -> FormChangeOut:
        request = check_answerable(await repo.open_request(uow, row.id), actor.user_id)
        await repo.delete_request(uow, row.id)
        current = await repo.current_form(uow, row)
        if accept and request.form is not current:
            return await self.switch(uow, actor, row, current, request.form, request.requested_by)
        change = FormChangeOut(
            consultation_id=row.id,
            form=current,
            previous=current,
            requested_by=request.requested_by,
            at=self._clock.now(),
            declined=not accept,
        )
        await self._audit.write(
            uow,
            actor,
            "call.form.decline",
            patient_id=row.patient_id,
            consultation_id=row.id,
            detail=f"{current} -> {request.form}",
        )
        uow.collect(to_both(row, "call:form-changed", change))
        return change

    async def switch(
        self,
        uow: UnitOfWork,
        actor: Actor,
        row: Any,
        current: Form,
        form: Form,
        requested_by: int,
    ) -> FormChangeOut:
        now = self._clock.now()
        await repo.switch_form(uow, row, form, requested_by, now)
        await repo.delete_request(uow, row.id)
        await self._audit.write(
            uow,
            actor,
            "call.form",
            patient_id=row.patient_id,
            consultation_id=row.id,
            detail=f"{current} -> {form}",
        )
        change = FormChangeOut(
            consultation_id=row.id, form=form, previous=current, requested_by=requested_by, at=now
        )
        uow.collect(to_both(row, "call:form-changed", change))
        return change
