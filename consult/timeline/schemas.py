"""Payload models of the timeline: a page of items, newest first, each one thing of one kind
with the features' own payload for it (the consultation, the package of e-prescriptions, ...).

Each kind's item model names its kind in ``kind`` (a literal), so that a client branches on it
and the OpenAPI document says which fields come with which kind. Adding a kind: its model
here, in ``TimelineItemOut``, and its entry in registry.py (a unit test checks they agree).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final, Literal

from pydantic import Field

from consult.booking.schemas import BookingOut
from consult.documents.schemas import DocumentOut
from consult.outcome.issued import PackageOut, ReferralOut, SickLeaveOut
from consult.outcome.renewal_payloads import RenewalOut
from consult.ratings.schemas import RatingOut
from consult.records.schemas import RecommendationOut
from consult.schemas import (
    ConsultationOut,
    FollowUpOut,
    FormStretchOut,
    Out,
    PersonOut,
    RecordingOut,
)

TIMELINE_PAGE: Final = 20
TIMELINE_MAX_PAGE: Final = 100


class TimelineEntryOut(Out):
    """What every item has, whatever its kind."""

    id: int = Field(description="The thing's id within its kind (a consultation's, a package's…).")
    occurred_at: datetime = Field(
        description="When it happened; the timeline is ordered by it, newest first."
    )
    consultation_id: int | None = Field(
        description="The consultation it belongs to, if any (the consultation's own id for a "
        "consultation)."
    )


class TranscriptLinkOut(Out):
    """Where a consultation's transcript is read, a page at a time (it is not inlined)."""

    messages: int = Field(description="How many messages it holds.")
    url: str = Field(
        description="GET it (with ?after=<seq>&limit=<n>) for the messages: "
        "/api/patients/{patient_id}/record/{consultation_id}/messages."
    )


class TimelineConsultationOut(TimelineEntryOut):
    """A walk-in consultation (occurred_at: when the patient joined the queue)."""

    kind: Literal["consultation"]
    consultation: ConsultationOut = Field(description="Its status, specialty, doctor, times.")
    forms: list[FormStretchOut] = Field(description="The forms used, in order, and when.")
    transcript: TranscriptLinkOut


class TimelineBookingOut(TimelineEntryOut):
    """A booked visit (occurred_at: the slot's start; cancelled ones too)."""

    kind: Literal["booking"]
    booking: BookingOut


class TimelineDocumentOut(TimelineEntryOut):
    """A document the patient uploaded (occurred_at: the upload)."""

    kind: Literal["document"]
    document: DocumentOut
    shared_into: list[int] = Field(
        description="The consultations it was shared into (in their chats), in order."
    )


class TimelineRecordingOut(TimelineEntryOut):
    """A call recording (occurred_at: its start)."""

    kind: Literal["recording"]
    recording: RecordingOut


class TimelineRecommendationOut(TimelineEntryOut):
    kind: Literal["recommendation"]
    recommendation: RecommendationOut


class TimelinePrescriptionOut(TimelineEntryOut):
    """A package of e-prescriptions (occurred_at: its issue), each prescription with its
    status as of the read (active, dispensable_from, expiring, expired, cancelled)."""

    kind: Literal["prescription"]
    package: PackageOut


class TimelineReferralOut(TimelineEntryOut):
    kind: Literal["referral"]
    referral: ReferralOut


class TimelineSickLeaveOut(TimelineEntryOut):
    kind: Literal["sick_leave"]
    sick_leave: SickLeaveOut


class TimelineFollowUpOut(TimelineEntryOut):
    """A follow-up question (occurred_at: when asked) with its answer, once given."""

    kind: Literal["follow_up"]
    follow_up: FollowUpOut


class TimelineRenewalOut(TimelineEntryOut):
    """A renewal request (occurred_at: when asked) with its decision, once made."""

    kind: Literal["renewal"]
    renewal: RenewalOut


class TimelineRatingOut(TimelineEntryOut):
    """A rating the patient gave (occurred_at: when first given). The patient's only."""

    kind: Literal["rating"]
    rating: RatingOut


TimelineItemOut = Annotated[
    TimelineConsultationOut
    | TimelineBookingOut
    | TimelineDocumentOut
    | TimelineRecordingOut
    | TimelineRecommendationOut
    | TimelinePrescriptionOut
    | TimelineReferralOut
    | TimelineSickLeaveOut
    | TimelineFollowUpOut
    | TimelineRenewalOut
    | TimelineRatingOut,
    Field(discriminator="kind"),
]


class TimelineOut(Out):
    patient: PersonOut
    items: list[TimelineItemOut] = Field(
        description="Newest first: by occurred_at; at one moment, by kind in the order of "
        "the kinds' list (consultation, booking, document, …, rating), then the newest id first."
    )
    next: str | None = Field(
        description="Older items follow: ask again with the same filters and cursor = this. "
        "Null on the last page."
    )
