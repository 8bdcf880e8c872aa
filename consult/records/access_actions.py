"""Which audit rows the patient's access history lists, and how each reads.

The history answers "who saw my data": the allowed reads of stored health data that name the
patient (their record, consultations, transcripts, documents, recordings, issued documents and
printouts, bookings, follow-ups, renewal requests, ratings' comments, results, and the
scheduler's queue overview that showed them waiting). Not listed:

- writes and live participation (chat messages, calls, uploads, the outcome issued, a ticket
  moved, a laboratory's result delivered): what a doctor wrote lands in the record itself, and
  in a live visit the patient was there;
- refusals: nothing was shown (they stay in the audit log for the operator);
- reading the history itself (``READ``): it is audited like every read of the log, but each
  look would add a line to what it shows, and it shows no health data.

An action not named here is not listed: a new read action is added to ``LISTED`` on purpose
(tests/unit/test_access_actions.py finds every action string in the source and fails on one
that is in neither ``LISTED`` nor ``NOT_LISTED``).
"""

from __future__ import annotations

from typing import Final

# Reading one's own access history (GET /api/patients/me/access-log).
READ: Final = "access_log.read"

# The listed actions and what each says to the patient.
LISTED: Final[dict[str, str]] = {
    "record.read": "record read",
    "record.fhir.read": "FHIR export",
    "record.timeline.read": "timeline read",
    "record.archive.read": "whole record downloaded",
    "consultation.read": "consultation read",
    "chat.read": "transcript read",
    "document.list": "document list read",
    "document.read": "document downloaded",
    "call.recording.read": "recording played",
    "outcome.read": "visit outcome read",
    "outcome.draft.read": "outcome draft read",
    "outcome.documents.read": "prescriptions and documents read",
    "outcome.printout.read": "printout",
    "booking.read": "bookings read",
    "referral.slots.read": "referral's slots read",
    "follow_up.read": "follow-up questions read",
    "renewal.read": "renewal requests read",
    "rating.read": "ratings read",
    "result.read": "laboratory and imaging results read",
    "queue.overview.read": "seen waiting in the queue overview",
    "identity.requests.read": "identity check: PESEL seen by the front desk",
}

# Every other action the audit log holds, each left out for a reason in the docstring above.
NOT_LISTED: Final = frozenset(
    {
        READ,
        "refused",
        "session.login",
        "session.logout_all",
        "account.totp.enable",
        "account.totp.disable",
        "account.signup",
        "account.email_confirm",
        "account.password_reset",
        "account.password_change",
        "identity.request",
        "identity.confirm",
        "identity.reject",
        "consultation.start",
        "consultation.accept",
        "consultation.end",
        "chat.write",
        "chat.receipt",
        "chat.typing",
        "call.read",
        "call.join",
        "call.form",
        "call.form.request",
        "call.form.decline",
        "call.recording.consent",
        "call.recording.start",
        "call.recording.stop",
        "record.recommendation.write",
        "slot.open",
        "schedule.add",
        "schedule.remove",
        "booking.create",
        "booking.cancel",
        "scheduler.move",
        "scheduler.drop",
        "scheduler.doctor_away",
        "document.upload",
        "document.share",
        "document.delete",
        "follow_up.ask",
        "follow_up.answer",
        "outcome.draft.write",
        "outcome.issue",
        "profile.pesel.write",
        "renewal.request",
        "renewal.approve",
        "renewal.decline",
        "renewal.reassign",
        "rating.rate",
        "rating.change",
        "result.receive",
    }
)

# The printouts' audit detail starts with the kind's name (consult/outcome/printing.py).
_PRINTOUTS = (
    ("package", "prescription printout"),
    ("referral", "referral printout"),
    ("sick leave", "sick leave printout"),
)


def what(action: str, detail: str | None, consultation_id: int | None) -> str:
    """What an access did, in words (``action`` is one of ``LISTED``)."""
    if action == "record.read" and consultation_id is not None:
        return "transcript read"  # a transcript page read through the record
    if action == "record.fhir.read" and detail:
        return "prescriptions read (FHIR search)"  # detail: "MedicationRequest?status=…"
    if action == "booking.read" and detail:
        return "booking's calendar file downloaded"  # detail: "booking 12" (the .ics)
    if action == "outcome.printout.read" and detail:
        for kind, words in _PRINTOUTS:
            if detail.startswith(kind + " "):
                return words
    return LISTED[action]
