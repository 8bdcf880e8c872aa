"""Payloads of sign-up, passwords, sessions and two-factor login."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, StrictBool

from consult.schemas import In, Out, UserOut


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


class SessionRow(Out):
    id: str = Field(description="The first 16 hex digits of the session's token hash.")
    created_at: datetime
    expires_at: datetime
    ip: str | None = Field(description="The client address the login came from.")
    current: bool = Field(description="The session this request came with.")


class TotpSetupOut(Out):
    secret: str = Field(description="Base32: type it into an authenticator app.")
    uri: str = Field(description="The otpauth:// URI (a QR code of it is scanned instead).")


class LoginOut(Out):
    """A session, or (staff, and patients who turned it on) the TOTP step's challenge."""

    token: str | None = Field(description="Bearer token for API and Socket.IO clients.")
    expires_at: datetime | None
    user: UserOut | None
    totp_required: bool = Field(
        default=False, description="True: send the code with the challenge to /api/login/totp."
    )
    challenge: str | None = Field(default=None, description="Valid 5 minutes, once.")
    totp_setup: TotpSetupOut | None = Field(
        default=None, description="Staff without TOTP yet: the secret to add to their app."
    )
    recovery_codes: list[str] | None = Field(
        default=None, description="When this login turned TOTP on: shown once, keep them."
    )


class TotpIn(In):
    challenge: str = Field(min_length=1, max_length=200)
    code: str = Field(
        min_length=1, max_length=20, description="6 digits, or a recovery code (xxxxx-xxxxx)."
    )


class CodeIn(In):
    code: str = Field(min_length=1, max_length=20)


class PasswordIn(In):
    password: str = Field(min_length=1, max_length=1000)


class RecoveryCodesOut(Out):
    recovery_codes: list[str] = Field(description="Each works once; shown this time only.")
