"""Referral (e-skierowanie) vocabulary: what it refers to and how urgently. Its other rules
(a target, a valid ICD-10 diagnosis) are in checks.py with the other drafts' rules."""

from __future__ import annotations

from enum import StrEnum


class ReferralKind(StrEnum):
    SPECIALIST_CONSULTATION = "specialist_consultation"
    DIAGNOSTIC_TEST = "diagnostic_test"
    HOSPITAL = "hospital"
    REHABILITATION = "rehabilitation"


class Priority(StrEnum):
    """The urgency, in FHIR ServiceRequest.priority's values (the two a referral uses)."""

    ROUTINE = "routine"
    URGENT = "urgent"
