"""The outcome's rules that need more than the draft's shape: the catalogue, ICD-10, the day
of issue, the patient's PESEL. "Issue and end" runs ``check_outcome`` before it writes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from consult.errors import Conflict, Invalid
from consult.outcome import icd10
from consult.outcome.folding import fold
from consult.outcome.pesel import Pesel, parse_pesel
from consult.outcome.products import Catalogue, Product
from consult.outcome.schemas import OutcomeDraft, PrescriptionDraft, SickLeaveDraft
from consult.outcome.sick_leave import check_nip, check_period
from consult.outcome.validity import valid_until, validity_days


@dataclass(frozen=True)
class CheckedPrescription:
    draft: PrescriptionDraft
    product: Product
    validity_days: int
    valid_until: date


@dataclass(frozen=True)
class CheckedOutcome:
    prescriptions: list[CheckedPrescription]
    referral_diagnoses: list[icd10.Diagnosis]
    sick_leave_diagnosis: icd10.Diagnosis | None
    employer_nip: str | None


def check_prescription(
    draft: PrescriptionDraft, catalogue: Catalogue, issued_on: date
) -> CheckedPrescription:
    """``Invalid``: ``product_unknown``, ``pack_size_unknown``, or a validity rule's code."""
    product = catalogue.get(draft.product_id)
    if product is None:
        raise Invalid("no such product in the catalogue", code="product_unknown")
    if draft.pack_size not in product.pack_sizes:
        sizes = ", ".join(map(str, product.pack_sizes))
        raise Invalid(f"{product.name} comes in packs of {sizes}", code="pack_size_unknown")
    days = validity_days(
        product.category,
        long_term_eligible=product.long_term_eligible,
        chosen_days=draft.validity_days,
        therapy_days=draft.therapy_days,
    )
    return CheckedPrescription(
        draft, product, days, valid_until(issued_on, days, draft.dispense_from)
    )


def check_pesel_on_file(draft: OutcomeDraft, pesel: str | None) -> Pesel | None:
    """The patient's PESEL, which an e-prescription and an e-ZLA need (``Conflict`` with
    ``pesel_required`` when the profile has none)."""
    if not draft.prescriptions and draft.sick_leave is None:
        return parse_pesel(pesel) if pesel else None
    if not pesel:
        raise Conflict(
            "the patient's PESEL must be in their profile for an e-prescription or sick leave",
            code="pesel_required",
        )
    return parse_pesel(pesel)


def _check_sick_leave(draft: SickLeaveDraft, issued_on: date) -> tuple[icd10.Diagnosis, str | None]:
    check_period(draft.start, draft.end, issued_on, draft.backdating_reason)
    nip = check_nip(draft.employer_nip) if draft.employer_nip else None
    return icd10.check_diagnosis(draft.diagnosis), nip


def check_outcome(
    draft: OutcomeDraft, catalogue: Catalogue, issued_on: date, pesel: str | None
) -> CheckedOutcome:
    """Every rule of the draft, or the first broken one's ``Invalid`` or ``Conflict``."""
    check_pesel_on_file(draft, pesel)
    prescriptions = [check_prescription(p, catalogue, issued_on) for p in draft.prescriptions]
    diagnoses = [icd10.check_diagnosis(r.diagnosis) for r in draft.referrals]
    sick, nip = _check_sick_leave(draft.sick_leave, issued_on) if draft.sick_leave else (None, None)
    return CheckedOutcome(prescriptions, diagnoses, sick, nip)


def same_substance(products: Iterable[Product], active_substances: Iterable[str]) -> list[str]:
    """The substances about to be prescribed that the patient already has an active
    prescription for: a warning for the doctor, never a refusal."""
    active = {fold(s) for s in active_substances}
    return sorted({p.substance for p in products if fold(p.substance) in active})
