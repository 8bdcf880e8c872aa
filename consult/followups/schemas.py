"""Follow-up payload models (FollowUpOut itself is in consult/schemas: the record embeds it)."""

from __future__ import annotations

from pydantic import Field

from consult.schemas import FollowUpOut, In, Out

MAX_QUESTION = 2000
MAX_ANSWER = 4000


class AskIn(In):
    question: str = Field(min_length=1, max_length=MAX_QUESTION)
    doctor_id: int | None = Field(
        default=None,
        description="Optional: the doctor meant; it must be the consultation's doctor.",
    )


class AnswerIn(In):
    answer: str = Field(min_length=1, max_length=MAX_ANSWER)


class FollowUpsOut(Out):
    follow_ups: list[FollowUpOut]


__all__ = ["AnswerIn", "AskIn", "FollowUpOut", "FollowUpsOut"]
