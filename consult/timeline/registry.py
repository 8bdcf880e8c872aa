"""The kinds of thing the timeline lists, one entry each, in the order items of the same moment
come in (a consultation before what was issued in it). Each entry says where its rows are (the
patient's, as the reader may see them) and reads a page's items of its kind through the owning
feature's repository, in a few statements for them all.

A new kind (the laboratory results, say) is one more entry here and its model in schemas.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

import sqlalchemy as sa

from consult.booking import repository as booking_repo
from consult.calls import repository as calls_repo
from consult.documents import repository as documents_repo
from consult.domain import ConsultationStatus
from consult.followups import repository as follow_up_repo
from consult.outcome import renewals_repository as renewals_repo
from consult.outcome import repository as outcome_repo
from consult.queue import repository as queue_repo
from consult.ratings import repository as ratings_repo
from consult.records import repository as records_repo
from consult.storage import tables as t
from consult.storage.uow import UnitOfWork
from consult.timeline.kinds import Fields, Kind, Loader, Scope, Source
from consult.timeline.schemas import (
    TimelineBookingOut,
    TimelineConsultationOut,
    TimelineDocumentOut,
    TimelineFollowUpOut,
    TimelinePrescriptionOut,
    TimelineRatingOut,
    TimelineRecommendationOut,
    TimelineRecordingOut,
    TimelineReferralOut,
    TimelineRenewalOut,
    TimelineSickLeaveOut,
    TranscriptLinkOut,
)

_C = t.consultations.c


def _in_record(scope: Scope) -> tuple[sa.ColumnElement[bool], ...]:
    # As the record: a patient's consultations but cancelled ones (a ticket given up in the
    # queue, or an interrupted consultation whose patient never came back), and what was done
    # in them.
    return (_C.patient_id == scope.patient_id, _C.status != ConsultationStatus.CANCELLED)


# --- consultations --------------------------------------------------------------------------


def _consultations(scope: Scope) -> Source:
    # When the patient asked for it: it never changes, so a cursor stays put.
    return Source(t.consultations, _C.created_at, _C.id, _in_record(scope))


async def _load_consultations(uow: UnitOfWork, ids: list[int], scope: Scope) -> dict[int, Fields]:
    consultations = await queue_repo.list_consultations(uow, _C.id.in_(ids))
    forms = await calls_repo.stretches_of(uow, consultations)
    found = await uow.conn.execute(sa.select(_C.id, _C.last_seq).where(_C.id.in_(ids)))
    messages = {r.id: r.last_seq for r in found}  # sequence numbers have no gaps
    base = f"/api/patients/{scope.patient_id}/record"
    return {
        c.id: {
            "consultation_id": c.id,
            "consultation": c,
            "forms": forms[c.id],
            "transcript": TranscriptLinkOut(messages=messages[c.id], url=f"{base}/{c.id}/messages"),
        }
        for c in consultations
    }


# --- booked visits --------------------------------------------------------------------------

_B = t.bookings.c


def _bookings(scope: Scope) -> Source:
    # When the visit is (or was): a booked visit is dated by its slot.
    slots = t.slots.c
    return Source(
        t.bookings.join(t.slots, slots.id == _B.slot_id),
        slots.starts_at,
        _B.id,
        (_B.patient_id == scope.patient_id,),
    )


# --- documents and recordings ---------------------------------------------------------------

_D = t.documents.c
_M = t.messages.c


def _documents(scope: Scope) -> Source:
    where = [_D.patient_id == scope.patient_id, _D.deleted_at.is_(None)]
    if scope.reader.is_doctor:
        where.append(documents_repo.doctor_may_open(scope.reader.user_id, scope.patient_id))
    return Source(t.documents, _D.created_at, _D.id, tuple(where))


async def _load_documents(uow: UnitOfWork, ids: list[int], scope: Scope) -> dict[int, Fields]:
    rows = await uow.conn.execute(sa.select(t.documents).where(_D.id.in_(ids)))
    shared = await uow.conn.execute(
        sa.select(_M.document_id, _M.consultation_id)
        .where(_M.document_id.in_(ids))
        .distinct()
        .order_by(_M.document_id, _M.consultation_id)
    )
    into: dict[int, list[int]] = {i: [] for i in ids}
    for r in shared:
        into[r.document_id].append(r.consultation_id)
    return {
        r.id: {
            "consultation_id": None,
            "document": documents_repo.document_out(r),
            "shared_into": into[r.id],
        }
        for r in rows
    }


_R = t.recordings.c


def _recordings(scope: Scope) -> Source:
    return Source(
        t.recordings.join(t.consultations, _C.id == _R.consultation_id),
        _R.started_at,
        _R.id,
        _in_record(scope),
    )


async def _load_recordings(uow: UnitOfWork, ids: list[int], scope: Scope) -> dict[int, Fields]:
    rows = await uow.conn.execute(sa.select(t.recordings).where(_R.id.in_(ids)))
    recordings = [calls_repo.recording_out(r) for r in rows]
    return {r.id: {"consultation_id": r.consultation_id, "recording": r} for r in recordings}


# --- what the doctor wrote, the patient asked, what was issued and rated -------------------

_REC = t.recommendations.c


def _recommendations(scope: Scope) -> Source:
    return Source(
        t.recommendations.join(t.consultations, _C.id == _REC.consultation_id),
        _REC.created_at,
        _REC.id,
        (_REC.patient_id == scope.patient_id, *_in_record(scope)),
    )


def _patients(table: sa.Table, at: str) -> Callable[[Scope], Source]:
    """The rows of ``table`` with the patient's ``patient_id``, dated by its column ``at``."""

    def source(scope: Scope) -> Source:
        c = table.c
        return Source(table, c[at], c.id, (c.patient_id == scope.patient_id,))

    return source


Read = Callable[[UnitOfWork, sa.ColumnElement[bool], Scope], Awaitable[Sequence[Any]]]


def _each(table: sa.Table, field: str, read: Read) -> Loader:
    """A loader through a feature's reader of payloads (each with ``id`` and maybe a
    ``consultation_id``): ``read(uow, <the rows of the page>, scope)``."""

    async def load(uow: UnitOfWork, ids: list[int], scope: Scope) -> dict[int, Fields]:
        found = await read(uow, table.c.id.in_(ids), scope)
        return {
            x.id: {"consultation_id": getattr(x, "consultation_id", None), field: x} for x in found
        }

    return load


KINDS: Final = (
    Kind("consultation", TimelineConsultationOut, _consultations, _load_consultations),
    Kind(
        "booking",
        TimelineBookingOut,
        _bookings,
        _each(t.bookings, "booking", lambda u, w, s: booking_repo.list_bookings(u, w)),
    ),
    Kind("document", TimelineDocumentOut, _documents, _load_documents),
    Kind("recording", TimelineRecordingOut, _recordings, _load_recordings),
    Kind(
        "recommendation",
        TimelineRecommendationOut,
        _recommendations,
        _each(
            t.recommendations, "recommendation", lambda u, w, s: records_repo.recommendations(u, w)
        ),
    ),
    Kind(
        "prescription",
        TimelinePrescriptionOut,
        _patients(t.prescription_packages, "issued_at"),
        _each(
            t.prescription_packages, "package", lambda u, w, s: outcome_repo.packages(u, w, s.now)
        ),
    ),
    Kind(
        "referral",
        TimelineReferralOut,
        _patients(t.referrals, "issued_at"),
        _each(t.referrals, "referral", lambda u, w, s: outcome_repo.referrals(u, w)),
    ),
    Kind(
        "sick_leave",
        TimelineSickLeaveOut,
        _patients(t.sick_leaves, "issued_at"),
        _each(t.sick_leaves, "sick_leave", lambda u, w, s: outcome_repo.sick_leaves(u, w)),
    ),
    Kind(
        "follow_up",
        TimelineFollowUpOut,
        _patients(t.follow_ups, "asked_at"),
        _each(t.follow_ups, "follow_up", lambda u, w, s: follow_up_repo.list_follow_ups(u, w)),
    ),
    Kind(
        "renewal",
        TimelineRenewalOut,
        _patients(t.renewal_requests, "requested_at"),
        # A renewal's consultation is its prescription's: RenewalOut names none (null here).
        _each(t.renewal_requests, "renewal", lambda u, w, s: renewals_repo.renewals(u, [w], s.now)),
    ),
    Kind(
        "rating",
        TimelineRatingOut,
        _patients(t.ratings, "rated_at"),
        _each(t.ratings, "rating", lambda u, w, s: ratings_repo.listed(u, w)),
        doctors=False,
    ),
)
NAMES: Final = tuple(k.name for k in KINDS)
# A kind's place in KINDS orders the items of one moment (the page's ``rank`` column).
RANK: Final = {k.name: i for i, k in enumerate(KINDS)}
