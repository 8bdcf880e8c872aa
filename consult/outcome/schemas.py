"""Draft payload models of the visit's outcome, as the doctor's console saves them and "Issue
and end" sends them. Shape only here (lengths, ranges, choices); the rules that need the
catalogue, ICD-10 or the day of issue are in checks.py.

Field names follow the FHIR R4 resources the record is exported as where that costs nothing:
MedicationRequest (``dosage_instruction``, ``dispense_from`` and the validity period,
``therapy_days`` as the expected supply duration), ServiceRequest (``priority``, ``reason``),
and a period's ``start`` and ``end``.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Final

from pydantic import BeforeValidator, Field, Strict, field_validator

from consult.outcome.products import MAX_PACK
from consult.outcome.referrals import Priority, ReferralKind
from consult.outcome.sick_leave import LetterCode, Recommendation
from consult.outcome.validity import LONG_TERM_MAX_DAYS, THERAPY_MAX_DAYS
from consult.schemas import Id, In

MAX_PRESCRIPTIONS: Final = 5  # one package of e-prescriptions
MAX_REFERRALS: Final = 5
MAX_PACKS: Final = 99


def _integral(value: Any) -> Any:
    # As consult.schemas' ids: JSON's 2.0 is 2; true is not a number.
    return int(value) if type(value) is float and value.is_integer() else value


# Counts, strict like consult.schemas' ids.
PackSize = Annotated[int, Strict(), Field(ge=1, le=MAX_PACK), BeforeValidator(_integral)]
Packs = Annotated[int, Strict(), Field(ge=1, le=MAX_PACKS), BeforeValidator(_integral)]
ValidityDays = Annotated[
    int, Strict(), Field(ge=1, le=LONG_TERM_MAX_DAYS), BeforeValidator(_integral)
]
TherapyDays = Annotated[int, Strict(), Field(ge=1, le=THERAPY_MAX_DAYS), BeforeValidator(_integral)]


# ICD-10 as typed: a category or subcategory, the dot optional ("J06.9", "j069").
Icd10Code = Annotated[str, Field(pattern=r"^\s*[A-Za-z][0-9]{2}\.?[0-9A-Za-z]{0,4}\s*$")]


class PaymentLevel(StrEnum):
    """What the patient pays: 100 %, 50 %, 30 %, R (flat rate), B (free)."""

    FULL = "100%"
    HALF = "50%"
    THIRTY = "30%"
    FLAT_RATE = "R"
    FREE = "B"


class PrescriptionDraft(In):
    """One e-prescription: one product."""

    product_id: Id = Field(description="The catalogue product.")
    pack_size: PackSize = Field(description="One of the product's pack sizes.")
    packs: Packs = 1
    dosage_instruction: str = Field(min_length=1, max_length=500)
    payment_level: PaymentLevel = PaymentLevel.FULL
    dispense_from: date | None = Field(
        default=None, description="'To be dispensed from': validity counts from it."
    )
    validity_days: ValidityDays | None = Field(
        default=None,
        description="Long-term treatment only; else the product's category decides.",
    )
    therapy_days: TherapyDays | None = Field(
        default=None, description="Days of therapy covered; required with validity_days."
    )


class ReferralDraft(In):
    kind: ReferralKind
    target: str = Field(min_length=1, max_length=200, description="A specialty or a test.")
    diagnosis: Icd10Code = Field(description="ICD-10 code.")
    reason: str = Field(default="", max_length=2000, description="The clinical reason.")
    priority: Priority = Priority.ROUTINE


class SickLeaveDraft(In):
    start: date
    end: date
    backdating_reason: str | None = Field(
        default=None,
        max_length=500,
        description="Why the leave starts before the day of issue (required then).",
    )
    recommendation: Recommendation = Field(description="1: must lie down; 2: may walk.")
    diagnosis: Icd10Code = Field(description="ICD-10 code.")
    letter_codes: list[LetterCode] = Field(
        default_factory=list,
        max_length=len(LetterCode),
        json_schema_extra={"uniqueItems": True},
    )
    employer_nip: str | None = Field(default=None, max_length=13, description="Optional.")

    @field_validator("letter_codes")
    @classmethod
    def _once_each(cls, codes: list[LetterCode]) -> list[LetterCode]:
        if len(set(codes)) != len(codes):
            raise ValueError("each letter code at most once")
        return sorted(codes)


class OutcomeDraft(In):
    """The whole outcome of a consultation, as saved while the doctor types."""

    recommendation: str = Field(default="", max_length=4000)
    prescriptions: list[PrescriptionDraft] = Field(
        default_factory=list, max_length=MAX_PRESCRIPTIONS
    )
    referrals: list[ReferralDraft] = Field(default_factory=list, max_length=MAX_REFERRALS)
    sick_leave: SickLeaveDraft | None = None
