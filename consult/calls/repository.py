"""SQL of calls: the forms timeline, recording consents and recordings."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from consult.calls.forms import SwitchRequest
from consult.clock import as_utc
from consult.domain import Form
from consult.schemas import FormStretchOut, RecordingOut
from consult.storage import tables as t
from consult.storage.uow import UnitOfWork

_F = t.consultation_forms.c
_RC = t.recording_consents.c
_R = t.recordings.c
_SR = t.form_switch_requests.c


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


async def stretches_of(
    uow: UnitOfWork, consultations: Sequence[Any]
) -> dict[int, list[FormStretchOut]]:
    """Each consultation's forms in order (one statement for them all); without rows, its
    first form throughout."""
    rows: dict[int, list[Any]] = {c.id: [] for c in consultations}
    if rows:
        found = await uow.conn.execute(
            sa.select(t.consultation_forms)
            .where(_F.consultation_id.in_(list(rows)))
            .order_by(_F.consultation_id, _F.id)
        )
        for r in found:
            rows[r.consultation_id].append(r)
    return {c.id: _stretches(c, rows[c.id]) for c in consultations}


def _stretches(consultation: Any, rows: list[Any]) -> list[FormStretchOut]:
    if not rows:
        return [
            FormStretchOut(
                form=Form(consultation.form),
                started_at=_utc(consultation.started_at),
                ended_at=_utc(consultation.ended_at),
            )
        ]
    out = [
        FormStretchOut(
            form=Form(r.form),
            started_at=_utc(r.started_at),
            ended_at=_utc(r.ended_at),
            requested_by=r.requested_by,
        )
        for r in rows
    ]
    # A stretch left open by a consultation that ended (e.g. in another process) ends with it.
    if out[-1].ended_at is None and consultation.ended_at is not None:
        out[-1] = out[-1].model_copy(update={"ended_at": as_utc(consultation.ended_at)})
    return out


async def current_form(uow: UnitOfWork, consultation: Any) -> Form:
    form = (
        await uow.conn.execute(
            sa.select(_F.form)
            .where(_F.consultation_id == consultation.id)
            .order_by(_F.id.desc())
            .limit(1)
        )
    ).scalar()
    return Form(form if form is not None else consultation.form)


async def switch_form(
    uow: UnitOfWork, consultation: Any, form: Form, requested_by: int | None, now: datetime
) -> None:
    """Close the open stretch and open one in ``form`` (the first switch also writes down the
    form the consultation started in)."""
    has_rows = (
        await uow.conn.execute(
            sa.select(sa.func.count()).where(_F.consultation_id == consultation.id)
        )
    ).scalar_one()
    if not has_rows:
        await uow.conn.execute(
            t.consultation_forms.insert().values(
                consultation_id=consultation.id,
                form=consultation.form,
                started_at=consultation.started_at or now,
                ended_at=now,
                requested_by=None,
            )
        )
    else:
        await close_stretch(uow, consultation.id, now)
    await uow.conn.execute(
        t.consultation_forms.insert().values(
            consultation_id=consultation.id,
            form=str(form),
            started_at=now,
            ended_at=None,
            requested_by=requested_by,
        )
    )


async def close_stretch(uow: UnitOfWork, consultation_id: int, now: datetime) -> None:
    await uow.conn.execute(
        t.consultation_forms.update()
        .where(_F.consultation_id == consultation_id, _F.ended_at.is_(None))
        .values(ended_at=now)
    )


async def put_request(uow: UnitOfWork, request: SwitchRequest) -> None:
    """The consultation's open switch request, replacing one still open. The caller holds the
    consultation's row (participant_row), so two requests do not race."""
    await delete_request(uow, request.consultation_id)
    await uow.conn.execute(
        t.form_switch_requests.insert().values(
            consultation_id=request.consultation_id,
            form=str(request.form),
            previous=str(request.previous),
            requested_by=request.requested_by,
            to_user=request.to_user,
            at=request.at,
        )
    )


async def open_request(uow: UnitOfWork, consultation_id: int) -> SwitchRequest | None:
    row = (
        await uow.conn.execute(
            sa.select(t.form_switch_requests).where(_SR.consultation_id == consultation_id)
        )
    ).first()
    if row is None:
        return None
    return SwitchRequest(
        row.consultation_id,
        Form(row.form),
        Form(row.previous),
        row.requested_by,
        row.to_user,
        as_utc(row.at),
    )


async def delete_request(uow: UnitOfWork, consultation_id: int) -> None:
    await uow.conn.execute(
        t.form_switch_requests.delete().where(_SR.consultation_id == consultation_id)
    )


async def add_consent(
    uow: UnitOfWork, consultation_id: int, user_id: int, consent: bool, now: datetime
) -> None:
    await uow.conn.execute(
        t.recording_consents.insert().values(
            consultation_id=consultation_id, user_id=user_id, consent=consent, at=now
        )
    )


async def consents(uow: UnitOfWork, consultation_id: int) -> dict[int, bool]:
    """Each participant's latest answer (no row: no consent)."""
    rows = await uow.conn.execute(
        sa.select(_RC.user_id, _RC.consent)
        .where(_RC.consultation_id == consultation_id)
        .order_by(_RC.id)
    )
    latest: dict[int, bool] = {}
    for user_id, consent in rows:
        latest[user_id] = bool(consent)
    return latest


async def add_recording(
    uow: UnitOfWork, consultation_id: int, stored_name: str, now: datetime
) -> int:
    return int(
        (
            await uow.conn.execute(
                t.recordings.insert()
                .values(
                    consultation_id=consultation_id,
                    stored_name=stored_name,
                    status="recording",
                    started_at=now,
                )
                .returning(_R.id)
            )
        ).scalar_one()
    )


async def finish_recording(
    uow: UnitOfWork, recording_id: int, now: datetime, *, recorded: bool
) -> bool:
    """The call's recording stopped: composed next when anything was recorded. False when it
    was finished already (by the node that took the call over, or by the one it was taken
    from): only one of them composes it."""
    done = await uow.conn.execute(
        t.recordings.update()
        .where(_R.id == recording_id, _R.status == "recording")
        .values(status="composing" if recorded else "failed", ended_at=now)
    )
    return bool(done.rowcount)


async def composed(
    uow: UnitOfWork, recording_id: int, *, size: int | None, sha256: str | None
) -> None:
    """The composed file is kept (its size and checksum), or composing failed (None)."""
    await uow.conn.execute(
        t.recordings.update()
        .where(_R.id == recording_id, _R.status == "composing")
        .values(status="ready" if sha256 is not None else "failed", size=size, sha256=sha256)
    )


async def recordings_in_progress(uow: UnitOfWork, consultation_id: int) -> list[Any]:
    """The consultation's recordings being written (id, stored_name): the running one, and
    any a node that died while recording left behind."""
    rows = await uow.conn.execute(
        sa.select(_R.id, _R.stored_name)
        .where(_R.consultation_id == consultation_id, _R.status == "recording")
        .order_by(_R.id)
    )
    return list(rows)


async def call_facts(uow: UnitOfWork, consultation_id: int) -> tuple[Any, Form] | None:
    """What a call's media follows, read afresh: the consultation (status, participants) and
    its form now; None for no such consultation."""
    c = t.consultations.c
    row = (
        await uow.conn.execute(
            sa.select(c.id, c.status, c.patient_id, c.doctor_id, c.form).where(
                c.id == consultation_id
            )
        )
    ).first()
    return None if row is None else (row, await current_form(uow, row))


async def calls_facts(
    uow: UnitOfWork, consultation_ids: Iterable[int]
) -> dict[int, tuple[str, Form]]:
    """Each consultation's status and form now, in two statements for them all."""
    ids = sorted(consultation_ids)
    if not ids:
        return {}
    c = t.consultations.c
    rows = await uow.conn.execute(sa.select(c.id, c.status, c.form).where(c.id.in_(ids)))
    facts = {r.id: (str(r.status), Form(r.form)) for r in rows}
    latest = (
        sa.select(sa.func.max(_F.id))
        .where(_F.consultation_id.in_(ids))
        .group_by(_F.consultation_id)
    )
    for cid, form in await uow.conn.execute(
        sa.select(_F.consultation_id, _F.form).where(_F.id.in_(latest))
    ):
        facts[cid] = (facts[cid][0], Form(form))
    return facts


async def recording_row(uow: UnitOfWork, recording_id: int) -> Any:
    return (await uow.conn.execute(sa.select(t.recordings).where(_R.id == recording_id))).first()


async def recordings_of(uow: UnitOfWork, consultation_ids: Iterable[int]) -> list[RecordingOut]:
    ids = list(consultation_ids)
    if not ids:
        return []
    rows = await uow.conn.execute(
        sa.select(t.recordings).where(_R.consultation_id.in_(ids)).order_by(_R.id)
    )
    return [recording_out(r) for r in rows]


async def stored_names(uow: UnitOfWork, recording_ids: Iterable[int]) -> dict[int, str]:
    """Recordings' file names in the recordings folder, by id."""
    ids = sorted(recording_ids)
    if not ids:
        return {}
    rows = await uow.conn.execute(sa.select(_R.id, _R.stored_name).where(_R.id.in_(ids)))
    return {r.id: r.stored_name for r in rows}


def recording_out(r: Any) -> RecordingOut:
    return RecordingOut(
        id=r.id,
        consultation_id=r.consultation_id,
        status=r.status,
        started_at=as_utc(r.started_at),
        ended_at=_utc(r.ended_at),
        size=r.size,
        sha256=r.sha256,
        url=f"/api/consultations/{r.consultation_id}/recordings/{r.id}",
    )
