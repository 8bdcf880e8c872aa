"""Which referral books which visit (pure rules; the rows come from referral_repository.py).

A referral opens bookings of one specialty: a referral of kind ``specialist_consultation`` or
``rehabilitation`` whose ``target`` is that specialty's code (``cardiology``,
``rehabilitation``). Referrals to a diagnostic test or to hospital open no bookings here: this
clinic books no tests or hospital stays. A specialty marked ``referral_required`` is booked
only with such a referral of the patient's that is not cancelled and not used by another
active booking; a booking of any other specialty may carry one too (and then uses it).
"""

from __future__ import annotations

from dataclasses import dataclass

from consult.errors import Conflict

# ReferralKind's values (consult.outcome.referrals, a layer above booking) that open bookings;
# tests/unit/test_referral_matching.py checks they are still its members.
BOOKABLE_KINDS = frozenset({"specialist_consultation", "rehabilitation"})


@dataclass(frozen=True)
class ReferralState:
    """What booking needs to know of a referral of the patient's."""

    id: int
    kind: str
    target: str
    cancelled: bool
    # The active booking that uses it, if any.
    used_by_booking: int | None


def matches(referral: ReferralState, specialty: str) -> bool:
    return referral.kind in BOOKABLE_KINDS and referral.target == specialty


def check_usable(referral: ReferralState) -> None:
    """Cancelled or used referrals book nothing."""
    if referral.cancelled:
        raise Conflict(f"referral {referral.id} was cancelled", code="referral_cancelled")
    if referral.used_by_booking is not None:
        raise Conflict(
            f"referral {referral.id} is used by booking {referral.used_by_booking}; cancel "
            "that booking to use it again",
            code="referral_used",
            details={"booking_id": referral.used_by_booking},
        )


def check_for_slot(referral: ReferralState, specialty: str, specialty_name: str) -> None:
    """``referral`` may book a slot of ``specialty``."""
    check_usable(referral)
    if not matches(referral, specialty):
        raise Conflict(
            f"referral {referral.id} ({referral.kind.replace('_', ' ')}: {referral.target}) "
            f"does not refer to {specialty_name}",
            code="referral_other_target",
            details={"target": referral.target, "specialty": specialty},
        )


def check_required(referral_required: bool, specialty_name: str) -> None:
    """A booking without a referral, of a specialty that needs one."""
    if referral_required:
        raise Conflict(
            f"{specialty_name} is booked only with a referral: book from your referral "
            "(referral_id)",
            code="referral_required",
        )


def check_opens_bookings(referral: ReferralState, specialty_known: bool) -> None:
    """``referral`` opens bookings at all (for listing its slots)."""
    check_usable(referral)
    if referral.kind not in BOOKABLE_KINDS:
        raise Conflict(
            f"a {referral.kind.replace('_', ' ')} referral is not booked here",
            code="referral_not_bookable",
        )
    if not specialty_known:
        raise Conflict(
            f"no specialty {referral.target!r} is booked here",
            code="referral_not_bookable",
        )
