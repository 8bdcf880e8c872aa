"""Payload models of what was issued: packages of e-prescriptions with each prescription's
status, referrals, sick leave, and the outcome of a consultation that holds them."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import Field

from consult.outcome.referrals import Priority, ReferralKind
from consult.outcome.renewal import RenewalStatus
from consult.outcome.validity import Category, State
from consult.schemas import Out


class IssuerOut(Out):
    id: int
    name: str
    licence_number: str | None


class DiagnosisOut(Out):
    code: str = Field(description="ICD-10, with its dot: J06.9")
    title: str


class PrescriptionOut(Out):
    id: int
    package_id: int
    product_id: int
    product_name: str
    substance: str
    strength: str
    form: str
    category: Category
    pack_size: int
    packs: int
    dosage_instruction: str
    payment_level: str
    issued_on: date
    dispense_from: date | None
    validity_days: int
    therapy_days: int | None
    valid_until: date = Field(description="The last day it may be dispensed.")
    status: State
    expires_in_days: int | None = Field(
        description="Days left to dispense it (0 on its last day); null once expired or cancelled."
    )
    cancelled_at: datetime | None
    cancel_reason: str | None
    renewable: bool = Field(description="The patient may ask to renew it now.")
    renewal_status: RenewalStatus | None = Field(
        description="The status of the latest renewal request for it; null if none was made."
    )


class PackageOut(Out):
    id: int
    key: str = Field(description="44 digits: the pharmacy reads the package with it.")
    access_code: str = Field(description="4 digits, given with the patient's PESEL.")
    consultation_id: int | None
    issued_at: datetime
    doctor: IssuerOut
    renewal_of: int | None = Field(
        description="The prescription whose renewal request this package answers."
    )
    prescriptions: list[PrescriptionOut]


class ReferralOut(Out):
    id: int
    key: str
    access_code: str
    consultation_id: int
    issued_at: datetime
    doctor: IssuerOut
    kind: ReferralKind
    target: str
    diagnosis: DiagnosisOut
    reason: str
    priority: Priority
    cancelled_at: datetime | None
    cancel_reason: str | None
    used_by_booking: int | None = Field(description="The active booking that uses it.")


class SickLeaveOut(Out):
    id: int
    consultation_id: int
    issued_at: datetime
    doctor: IssuerOut
    start: date
    end: date
    days: int
    backdating_reason: str | None
    recommendation: int = Field(description="1: must lie down; 2: may walk.")
    diagnosis: DiagnosisOut
    letter_codes: list[str]
    employer_nip: str | None
    cancelled_at: datetime | None
    cancel_reason: str | None


class OutcomeOut(Out):
    consultation_id: int
    patient_id: int
    issued_at: datetime
    doctor: IssuerOut
    recommendation: str | None
    packages: list[PackageOut] = Field(description="At most one: up to 5 prescriptions.")
    referrals: list[ReferralOut]
    sick_leave: SickLeaveOut | None
    warnings: list[str] = Field(
        default_factory=list,
        description="For the doctor: substances the patient already had an active "
        "prescription for when it was issued.",
    )


class DraftOut(Out):
    consultation_id: int
    version: int
    updated_at: datetime | None
    draft: dict[str, object] = Field(description="The saved draft (OutcomeDraft's shape).")
    warnings: list[str] = Field(
        description="Substances in the draft that the patient has an active prescription for."
    )


class IssuedOut(Out):
    """Everything issued to one patient, newest first."""

    packages: list[PackageOut]
    referrals: list[ReferralOut]
    sick_leaves: list[SickLeaveOut]
