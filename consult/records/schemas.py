"""Payload models of the record: recommendations, and the record read a page at a time."""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal

from pydantic import Field

from consult.domain import Client
from consult.outcome.issued import PackageOut, ReferralOut, SickLeaveOut
from consult.schemas import (
    ConsultationOut,
    FollowUpOut,
    FormStretchOut,
    Id,
    In,
    MessageOut,
    Out,
    PersonOut,
    RecordingOut,
)


class RecommendationIn(In):
    text: str = Field(min_length=1, max_length=10000)


class RecommendationOut(Out):
    id: int
    consultation_id: int
    doctor: PersonOut
    text: str
    created_at: datetime


# The record is read a page of consultations at a time, newest first, each with the first
# page of its transcript.
RECORD_PAGE: Final = 20
RECORD_MAX_PAGE: Final = 50
RECORD_TRANSCRIPT_PAGE: Final = 50


class RecordQuery(In):
    """The query of the record routes (for the OpenAPI document)."""

    before: Id | None = Field(
        default=None, description="Only consultations with a smaller id: the answer's next."
    )
    limit: int = Field(
        default=RECORD_PAGE, ge=1, le=RECORD_MAX_PAGE, description="At most this many entries."
    )


class RecordEntryOut(Out):
    consultation: ConsultationOut
    transcript: list[MessageOut] = Field(
        description=f"The first {RECORD_TRANSCRIPT_PAGE} messages, in order."
    )
    transcript_has_more: bool = Field(
        default=False,
        description="More messages follow the last one in transcript: read them with GET "
        "/api/patients/{patient_id}/record/{consultation_id}/messages?after=<its seq>.",
    )
    recommendations: list[RecommendationOut]
    follow_ups: list[FollowUpOut] = Field(default_factory=list)
    forms: list[FormStretchOut] = Field(
        default_factory=list, description="The forms used, in order, and when."
    )
    recordings: list[RecordingOut] = Field(default_factory=list)
    packages: list[PackageOut] = Field(
        default_factory=list,
        description="E-prescription packages issued in this consultation (with its renewals).",
    )
    referrals: list[ReferralOut] = Field(default_factory=list)
    sick_leaves: list[SickLeaveOut] = Field(default_factory=list)


class RecordOut(Out):
    patient: PersonOut
    entries: list[RecordEntryOut] = Field(description="Newest consultation first.")
    next: int | None = Field(
        default=None,
        description="Older entries follow: ask again with before = this. Null on the last page.",
    )


# The patient's access history ("who saw my data"), read a page at a time, newest first.
ACCESS_PAGE: Final = 20
ACCESS_MAX_PAGE: Final = 100


class AccessLogQuery(In):
    """The query of ``GET /api/patients/me/access-log`` (for the OpenAPI document)."""

    cursor: Id | None = Field(
        default=None, description="Only accesses older than this one: the answer's next."
    )
    limit: int = Field(
        default=ACCESS_PAGE, ge=1, le=ACCESS_MAX_PAGE, description="At most this many entries."
    )
    others: bool = Field(
        default=False, description="true: only others' accesses (doctors, schedulers), not yours."
    )


class AccessEntryOut(Out):
    id: int = Field(description="The access's audit row; entries come newest first.")
    at: datetime
    by: Literal["you", "doctor", "scheduler"]
    who: str = Field(description='The doctor\'s name, "scheduler" or "you".')
    doctor: PersonOut | None = Field(default=None, description="The doctor, when by is doctor.")
    action: str = Field(description="The audit action, e.g. document.read.")
    what: str = Field(description="The action in words, e.g. document downloaded.")
    consultation_id: int | None = None
    client: Client | None = Field(
        description="page (the web pages), api (a bearer-token client) or socket (the live "
        "connection); null for accesses recorded before the client was."
    )


class AccessLogOut(Out):
    entries: list[AccessEntryOut] = Field(description="Newest first.")
    next: int | None = Field(
        default=None,
        description="Older entries follow: ask again with cursor = this. Null on the last page.",
    )
