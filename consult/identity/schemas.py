"""Identity verification's payloads."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import Field

from consult.domain import Identity
from consult.schemas import In, Out

Status = Literal["pending", "confirmed", "rejected"]


class VerificationIn(In):
    pesel: str = Field(min_length=1, max_length=20)


class VerificationOut(Out):
    """The patient's latest request (none: ``request`` is null)."""

    identity: Identity
    request_id: int | None = None
    status: Status | None = None
    requested_at: datetime | None = None
    decided_at: datetime | None = None
    note: str | None = Field(default=None, description="A rejection's reason.")


class PendingRequestOut(Out):
    id: int
    user_id: int
    name: str
    email: str
    pesel: str
    born: date = Field(description="The date of birth the PESEL encodes: check the document.")
    requested_at: datetime


class PendingRequestsOut(Out):
    requests: list[PendingRequestOut]


class ConfirmIn(In):
    document: str = Field(
        min_length=3,
        max_length=100,
        description="What was checked: the document's kind and number (its last characters).",
    )


class RejectIn(In):
    reason: str = Field(min_length=3, max_length=200)
