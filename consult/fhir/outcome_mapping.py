"""What was issued at the end of a visit, as FHIR R4 resources: an e-prescription as a
MedicationRequest, a referral as a ServiceRequest, sick leave as an Observation, and each
one's printout as a DocumentReference. Pure; the choices are in docs/protocol.md, "FHIR R4
export"."""

from __future__ import annotations

from typing import Any, Final

from consult.fhir import codes as c
from consult.outcome.issued import PackageOut, PrescriptionOut, ReferralOut, SickLeaveOut
from consult.outcome.printout_files import (
    PACKAGE_FILE,
    REFERRAL_FILE,
    SICK_LEAVE_FILE,
    PrintoutFile,
)
from consult.outcome.sick_leave import Recommendation
from consult.outcome.validity import State

# consult's prescription status -> MedicationRequest.status. Not yet dispensable is active (its
# validityPeriod starts later); expired is completed: nothing more will be done with it.
PRESCRIPTION_STATUS: Final = {
    State.ACTIVE: "active",
    State.EXPIRING: "active",
    State.DISPENSABLE_FROM: "active",
    State.EXPIRED: "completed",
    State.CANCELLED: "cancelled",
}
_REFERRAL_KINDS: Final = {
    "specialist_consultation": "Specialist consultation",
    "diagnostic_test": "Diagnostic test",
    "hospital": "Hospital treatment",
    "rehabilitation": "Rehabilitation",
}
_LEAVE_RECOMMENDATIONS: Final = {
    Recommendation.MUST_LIE_DOWN: "must lie down",
    Recommendation.MAY_WALK: "may walk",
}


def encounter_of(consultation_id: int | None, encounters: set[int]) -> dict[str, str] | None:
    """The Encounter of a consultation, when the bundle holds it."""
    if consultation_id is None or consultation_id not in encounters:
        return None
    return c.reference("Encounter", consultation_id)


def _cancelled(reason: str | None) -> str | None:
    return f"Cancelled: {reason}" if reason else None


def medication_request(
    package: PackageOut, rx: PrescriptionOut, patient_id: int, encounters: set[int]
) -> c.Resource:
    """One e-prescription of a package: the package's key names the package (identifier and
    groupIdentifier alike: the prescriptions of one package share it)."""
    key = {"use": "official", "type": c.text("e-prescription package key"), "value": package.key}
    packs = f"{rx.packs} × {rx.pack_size} ({rx.substance}); payment level {rx.payment_level}"
    prior = c.reference("MedicationRequest", package.renewal_of) if package.renewal_of else None
    return c.resource(
        "MedicationRequest",
        rx.id,
        {
            "identifier": [key],
            "groupIdentifier": key,
            "status": PRESCRIPTION_STATUS[rx.status],
            "statusReason": c.text(rx.cancel_reason),
            "intent": "order",
            "medicationCodeableConcept": c.text(f"{rx.product_name} {rx.strength}, {rx.form}"),
            "subject": c.reference("Patient", patient_id),
            "encounter": encounter_of(package.consultation_id, encounters),
            "authoredOn": c.instant(package.issued_at),
            "requester": c.reference("Practitioner", package.doctor.id),
            "note": c.notes(packs),
            "dosageInstruction": [{"text": rx.dosage_instruction}],
            "dispenseRequest": {
                "validityPeriod": {
                    "start": c.day(rx.dispense_from or rx.issued_on),
                    "end": c.day(rx.valid_until),
                },
                "quantity": {"value": rx.packs * rx.pack_size},
                "expectedSupplyDuration": c.days(rx.therapy_days),
            },
            "priorPrescription": prior,
        },
    )


def service_request(referral: ReferralOut, patient_id: int, encounters: set[int]) -> c.Resource:
    kind = _REFERRAL_KINDS.get(referral.kind, referral.kind)
    key = {"use": "official", "type": c.text("e-referral key"), "value": referral.key}
    return c.resource(
        "ServiceRequest",
        referral.id,
        {
            "identifier": [key],
            "status": "revoked" if referral.cancelled_at is not None else "active",
            "intent": "order",
            "category": [c.text(kind)],
            "priority": referral.priority.value,
            "code": c.text(f"{kind}: {referral.target}"),
            "subject": c.reference("Patient", patient_id),
            "encounter": encounter_of(referral.consultation_id, encounters),
            "authoredOn": c.instant(referral.issued_at),
            "requester": c.reference("Practitioner", referral.doctor.id),
            "reasonCode": [c.diagnosis(referral.diagnosis)],
            "note": c.notes(referral.reason, _cancelled(referral.cancel_reason)),
        },
    )


def _component(name: str, value: dict[str, Any] | None) -> dict[str, Any]:
    return {"code": c.text(name), "valueCodeableConcept": value}


def sick_leave(leave: SickLeaveOut, patient_id: int, encounters: set[int]) -> c.Resource:
    """Sick leave as an Observation: the doctor's finding that the patient is unfit for work
    over a period (effectivePeriod), its days as the value, the diagnosis, the recommendation
    and the letter codes as components."""
    advice = _LEAVE_RECOMMENDATIONS.get(Recommendation(leave.recommendation))
    components = [
        _component("diagnosis", c.diagnosis(leave.diagnosis)),
        _component("recommendation", c.text(advice)),
    ] + [_component("letter code", c.text(letter)) for letter in leave.letter_codes]
    backdated = leave.backdating_reason
    return c.resource(
        "Observation",
        f"sick-leave-{leave.id}",
        {
            "status": "cancelled" if leave.cancelled_at is not None else "final",
            "code": c.text("Sick leave (e-ZLA): unfit for work"),
            "subject": c.reference("Patient", patient_id),
            "encounter": encounter_of(leave.consultation_id, encounters),
            "effectivePeriod": {"start": c.day(leave.start), "end": c.day(leave.end)},
            "issued": c.instant(leave.issued_at),
            "performer": [c.reference("Practitioner", leave.doctor.id)],
            "valueQuantity": c.days(leave.days),
            "note": c.notes(
                f"Starts before the day of issue: {backdated}" if backdated else None,
                _cancelled(leave.cancel_reason),
            ),
            "component": components,
        },
    )


# --- printouts --------------------------------------------------------------------------------


def printouts(
    packages: list[PackageOut],
    referrals: list[ReferralOut],
    leaves: list[SickLeaveOut],
    patient_id: int,
    origin: str,
    encounters: set[int],
) -> list[c.Resource]:
    """Each issued document's printout (its PDF route, never inlined), pointing at what it
    prints (``context.related``): a package's MedicationRequests, the ServiceRequest, the
    sick leave's Observation."""
    found = [
        _printout(
            PACKAGE_FILE,
            "e-prescription package",
            p,
            [c.reference("MedicationRequest", rx.id) for rx in p.prescriptions],
            patient_id,
            origin,
            encounters,
        )
        for p in packages
    ]
    found += [
        _printout(
            REFERRAL_FILE,
            "e-referral",
            r,
            [c.reference("ServiceRequest", r.id)],
            patient_id,
            origin,
            encounters,
        )
        for r in referrals
    ]
    found += [
        _printout(
            SICK_LEAVE_FILE,
            "sick leave certificate (e-ZLA)",
            s,
            [c.reference("Observation", f"sick-leave-{s.id}")],
            patient_id,
            origin,
            encounters,
        )
        for s in leaves
    ]
    return found


def _printout(
    file: PrintoutFile,
    what: str,
    issued: PackageOut | ReferralOut | SickLeaveOut,
    related: list[dict[str, str]],
    patient_id: int,
    origin: str,
    encounters: set[int],
) -> c.Resource:
    attachment = {
        "contentType": "application/pdf",
        "url": origin + file.url(issued.id),
        "title": file.filename(issued.id, issued.issued_at),
        "creation": c.instant(issued.issued_at),
    }
    encounter = encounter_of(issued.consultation_id, encounters)
    return c.resource(
        "DocumentReference",
        f"printout-{file.kind}-{issued.id}",
        {
            "status": "current",
            "type": c.text("printout"),
            "category": [c.text(what)],
            "subject": c.reference("Patient", patient_id),
            "date": c.instant(issued.issued_at),
            "author": [c.reference("Practitioner", issued.doctor.id)],
            "description": f"Printout of the {what}",
            "content": [{"attachment": attachment}],
            "context": {"encounter": [encounter] if encounter else [], "related": related},
        },
    )
