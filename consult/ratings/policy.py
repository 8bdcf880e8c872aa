"""The rules of a rating (pure): what may be rated, and for how long a rating may change.

A visit is a walk-in consultation that ended with a doctor, or a booking whose slot is over
and was not cancelled. A consultation is rated as such and for the service as a whole; a
booking for its booking process and for the service. Each once per visit: rating again is a
change (PUT), allowed for ``CHANGE_DAYS`` days after the first rating.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from consult.errors import Conflict

CHANGE_DAYS = 7
FIGURES_DAYS = 30  # the schedulers' and doctors' figures cover the last 30 days
MAX_COMMENT = 1000
SCORES = (1, 2, 3, 4, 5)
COMMENTS_SHOWN = 100  # a doctor's newest comments, at most


class RatingKind(StrEnum):
    CONSULTATION = "consultation"  # the consultation itself (walk-in)
    BOOKING = "booking"  # the booking process of a booked visit
    SERVICE = "service"  # the service as a whole, once per visit of either kind


@dataclass(frozen=True)
class Visit:
    """What a rating is about, as the rating keeps it."""

    patient_id: int
    doctor_id: int
    specialty_code: str
    consultation_id: int | None = None
    booking_id: int | None = None

    def audit_detail(self, kind: RatingKind) -> str:
        if self.booking_id is not None:
            return f"{kind} rating of booking {self.booking_id}"
        return f"{kind} rating"


def changeable_until(rated_at: datetime) -> datetime:
    return rated_at + timedelta(days=CHANGE_DAYS)


def check_changeable(rated_at: datetime, now: datetime) -> None:
    """A change after the days allowed is refused; the rating stays as it is."""
    until = changeable_until(rated_at)
    if now > until:
        raise Conflict(
            f"a rating can be changed for {CHANGE_DAYS} days after it was first given; "
            "this one is final now",
            code="rating_locked",
            details={"changeable_until": _instant(until)},
        )


def check_visit_over(ends_at: datetime, now: datetime) -> None:
    """A booked visit is rated once its slot has ended."""
    if now < ends_at:
        raise Conflict(
            "this visit has not taken place yet: rate it once its time is over",
            code="visit_not_over",
            details={"ends_at": _instant(ends_at)},
        )


def _instant(moment: datetime) -> str:
    # As the payloads write instants (pydantic: "Z" for UTC), so a client compares them as text.
    return moment.isoformat().replace("+00:00", "Z")
