"""Follow-up payload models (FollowUpOut itself is in consult/schemas: the record embeds it)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from consult.schemas import FollowUpOut, Id, In, Out

MAX_QUESTION = 2000
MAX_ANSWER = 4000
MAX_CLIENT_ID = 64
CLIENT_ID_PATTERN = r"^[!-~]+$"  # visible ASCII: letters, digits, punctuation; no spaces
_CLIENT_ID = re.compile(CLIENT_ID_PATTERN)


def _visible_ascii(value: str) -> str:
    if not _CLIENT_ID.match(value):
        raise ValueError(
            "use visible ASCII characters only (letters, digits, punctuation; no spaces or "
            "control characters), e.g. a UUID"
        )
    return value


def client_id_field(whose: str) -> Any:
    return Field(
        min_length=1,
        max_length=MAX_CLIENT_ID,
        description=f"The {whose} own id for this request (e.g. a UUID), 1–64 visible ASCII "
        "characters; a retry reuses it and gets the stored item instead of a second one.",
        json_schema_extra={"pattern": CLIENT_ID_PATTERN},
    )


ClientId = Annotated[str, AfterValidator(_visible_ascii)]


class AskIn(In):
    question: str = Field(min_length=1, max_length=MAX_QUESTION)
    client_id: ClientId = client_id_field("patient's")
    doctor_id: Id | None = Field(
        default=None,
        description="Optional: the doctor meant; it must be the consultation's doctor.",
    )


class AnswerIn(In):
    answer: str = Field(min_length=1, max_length=MAX_ANSWER)
    client_id: ClientId = client_id_field("doctor's")


class FollowUpsQuery(In):
    """The query of ``GET /api/follow-ups`` (for the OpenAPI document)."""

    answered: Literal["true", "false"] = Field(
        default="false", description="A doctor's answered questions instead of the open ones."
    )


class FollowUpsOut(Out):
    follow_ups: list[FollowUpOut]


__all__ = ["AnswerIn", "AskIn", "FollowUpOut", "FollowUpsOut", "FollowUpsQuery"]
