"""Payloads of sign-up, passwords, sessions and two-factor login."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictBool

from consult.schemas import In, Out, SessionRow


class SignUpIn(In):
    email: str = Field(min_length=3, max_length=254)
    name: str = Field(min_length=1, max_length=120)
    password: str = Field(min_length=1, max_length=1000)
    accept_terms: StrictBool = Field(description="Must be true: the terms of service are accepted.")


class AcceptedOut(Out):
    """The same answer whether or not the address has an account (no account enumeration)."""

    status: Literal["check_your_email"] = "check_your_email"


class TokenIn(In):
    token: str = Field(min_length=1, max_length=200)


class ForgotIn(In):
    email: str = Field(min_length=3, max_length=254)


class ResetIn(In):
    token: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1000)


class PasswordChangeIn(In):
    current_password: str = Field(min_length=1, max_length=1000)
    new_password: str = Field(min_length=1, max_length=1000)


class SessionsOut(Out):
    sessions: list[SessionRow]


class LoggedOutOut(Out):
    ended: int = Field(description="How many sessions ended, this one included.")
