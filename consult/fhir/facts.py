"""What the FHIR export is made from: a patient's record as the features' payloads, read by
reading.py and turned into resources by mapping.py. Plain data; nothing here reads or maps."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from consult.documents.schemas import DocumentOut
from consult.outcome.issued import PackageOut, ReferralOut, SickLeaveOut
from consult.results.schemas import ResultOut
from consult.schemas import ConsultationOut, FollowUpOut, FormStretchOut, RecordingOut


@dataclass(frozen=True)
class PatientFacts:
    id: int
    name: str
    pesel: str | None


@dataclass(frozen=True)
class DoctorFacts:
    id: int
    name: str
    licence_number: str | None


@dataclass(frozen=True)
class Participation:
    """A doctor who accepted the consultation, and when (``consultation_doctors``)."""

    doctor_id: int
    accepted_at: datetime


@dataclass(frozen=True)
class Visit:
    """One consultation of the record, with the forms used and the doctors who took it."""

    consultation: ConsultationOut
    forms: list[FormStretchOut]
    participants: list[Participation]


@dataclass(frozen=True)
class Recommendation:
    """A recommendation the doctor wrote into the record during the consultation."""

    id: int
    consultation_id: int
    doctor_id: int
    text: str
    created_at: datetime


@dataclass(frozen=True)
class SharedDocument:
    """A document the patient uploaded, and the consultations it was shared into."""

    document: DocumentOut
    consultation_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class RecordFacts:
    """Everything of one patient's the export holds. ``doctors`` names every doctor the rest
    refers to; ``visits`` are newest first."""

    patient: PatientFacts
    doctors: dict[int, DoctorFacts]
    visits: list[Visit] = field(default_factory=list)
    recommendations: list[Recommendation] = field(default_factory=list)
    follow_ups: list[FollowUpOut] = field(default_factory=list)
    recordings: list[RecordingOut] = field(default_factory=list)
    documents: list[SharedDocument] = field(default_factory=list)
    packages: list[PackageOut] = field(default_factory=list)
    referrals: list[ReferralOut] = field(default_factory=list)
    sick_leaves: list[SickLeaveOut] = field(default_factory=list)
    results: list[ResultOut] = field(default_factory=list)  # laboratory and imaging, newest first
