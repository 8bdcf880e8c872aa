"""Rating payload models: the patient's rating, their list, the figures (schedulers, /metrics)
and a doctor's own figures with the comments (no patient named)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, Strict

from consult.ratings.policy import CHANGE_DAYS, FIGURES_DAYS, MAX_COMMENT, RatingKind
from consult.schemas import In, Out, PersonOut


def _integral(value: Any) -> Any:
    # JSON has one kind of number: 4.0 is 4 (as ids take it). True is not a score.
    return int(value) if type(value) is float and value.is_integer() else value


Score = Annotated[int, Strict(), Field(ge=1, le=5), BeforeValidator(_integral)]


class RatingIn(In):
    """A rating, whole: a change replaces the score and the comment (an omitted comment is
    none)."""

    score: Score = Field(description="1 (poor) to 5 (excellent).")
    comment: str = Field(default="", max_length=MAX_COMMENT, description="Optional.")


class RatedSpecialtyOut(Out):
    code: str
    name: str


class RatingOut(Out):
    id: int
    kind: RatingKind = Field(
        description="consultation (the consultation itself), booking (a booked visit's "
        "booking process) or service (the service as a whole, once per visit)."
    )
    consultation_id: int | None = Field(description="The consultation rated (or null).")
    booking_id: int | None = Field(description="The booked visit rated (or null).")
    doctor: PersonOut
    specialty: RatedSpecialtyOut
    score: int
    comment: str
    rated_at: datetime = Field(description="When it was first given.")
    changed_at: datetime | None = Field(description="Its last change (null: never changed).")
    changeable_until: datetime = Field(
        description=f"Until when it may be changed ({CHANGE_DAYS} days after it was given)."
    )


class RatingsOut(Out):
    ratings: list[RatingOut]


class RatingFiguresOut(Out):
    count: int
    average: float | None = Field(description="Rounded to 2 decimals; null when count is 0.")
    distribution: list[int] = Field(
        description="How many gave each score: [ones, twos, threes, fours, fives]."
    )


class RatingKindFiguresOut(Out):
    consultation: RatingFiguresOut
    booking: RatingFiguresOut
    service: RatingFiguresOut


class RatingSpecialtyFiguresOut(Out):
    specialty: RatedSpecialtyOut
    figures: RatingKindFiguresOut


class RatingDoctorFiguresOut(Out):
    doctor: PersonOut
    figures: RatingKindFiguresOut


class RatingsSummaryOut(Out):
    """The ratings given in the last ``days`` days (by when each was first given)."""

    days: int = Field(default=FIGURES_DAYS)
    since: datetime
    until: datetime
    overall: RatingKindFiguresOut
    specialties: list[RatingSpecialtyFiguresOut] = Field(description="Those rated, by name.")
    doctors: list[RatingDoctorFiguresOut] = Field(description="Those rated, by name.")


class RatingCommentOut(Out):
    """A comment as its doctor sees it: no patient, and the day only."""

    kind: RatingKind
    score: int
    comment: str
    rated_on: date
    specialty: RatedSpecialtyOut


class DoctorRatingsOut(Out):
    days: int = Field(default=FIGURES_DAYS)
    since: datetime
    until: datetime
    figures: RatingKindFiguresOut
    comments: list[RatingCommentOut] = Field(
        description="The comments given with these ratings, newest first (at most 100)."
    )
