"""Payload models of prescription renewals: the patient's request, the doctor's approval or
refusal, a scheduler's hand-over, and the request as every party reads it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Final

from pydantic import Field

from consult.outcome.issued import PackageOut, PrescriptionOut
from consult.outcome.renewal import RenewalStatus
from consult.outcome.schemas import Packs, TherapyDays, ValidityDays
from consult.schemas import Id, In, Out, PersonOut

MAX_NOTE: Final = 500
MAX_REASON: Final = 500


class RenewalIn(In):
    note: str = Field(
        default="", max_length=MAX_NOTE, description="Optional, for the doctor (0-500)."
    )


class ApproveIn(In):
    """What the new prescription changes; every field left out is the original's."""

    dosage_instruction: str | None = Field(default=None, min_length=1, max_length=500)
    packs: Packs | None = None
    validity_days: ValidityDays | None = Field(
        default=None,
        description="Long-term treatment only (above the category's days, up to 365); with "
        "therapy_days.",
    )
    therapy_days: TherapyDays | None = Field(
        default=None, description="Days of therapy covered (at most 360)."
    )


class DeclineIn(In):
    reason: str = Field(min_length=1, max_length=MAX_REASON, description="Shown to the patient.")


class ReassignIn(In):
    doctor_id: Id = Field(
        description="A doctor practising the specialty of the prescription's consultation."
    )


class RenewalFilter(StrEnum):
    OPEN = "open"
    DECIDED = "decided"  # approved or declined


class RenewalsQuery(In):
    """The query of ``GET /api/renewals`` (for the OpenAPI document)."""

    status: RenewalFilter = Field(
        default=RenewalFilter.OPEN, description="open (default), or decided: approved or declined."
    )


class RenewalSpecialtyOut(Out):
    code: str
    name: str


class RenewalOut(Out):
    id: int
    status: RenewalStatus
    note: str
    requested_at: datetime
    decided_at: datetime | None
    decline_reason: str | None
    patient: PersonOut
    doctor: PersonOut = Field(
        description="The doctor it waits for (the issuing doctor, or the one a scheduler "
        "handed it to); once decided, the one who decided."
    )
    specialty: RenewalSpecialtyOut | None = Field(
        description="The specialty of the consultation the prescription came from (null only "
        "for a prescription issued without one, which none is today)."
    )
    prescription: PrescriptionOut = Field(description="The prescription to renew, as it is now.")
    package: PackageOut | None = Field(
        description="Once approved: the new package (new key and access code; renewal_of is "
        "the prescription's id)."
    )


class RenewalsOut(Out):
    renewals: list[RenewalOut]
