"""TOTP (RFC 6238, with pyotp): 6 digits every 30 s from a shared secret, one step either side
accepted (clocks drift); and recovery codes, each usable once, for a lost phone."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

import pyotp

ISSUER = "consult"
RECOVERY_CODES = 10
STAFF_ROLES = frozenset({"doctor", "scheduler"})


def new_secret() -> str:
    return pyotp.random_base32()


def uri(secret: str, email: str) -> str:
    """The otpauth:// URI an authenticator app takes (as a QR code or typed)."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def code_matches(secret: str, code: str, now: datetime | None = None) -> bool:
    """Whether ``code`` is the secret's at ``now``: by default the real time, not the service's
    clock. The code comes from the user's phone, which knows only the real time; a clock moved
    by a test (days ahead) must not turn every code wrong."""
    digits = code.replace(" ", "")
    if len(digits) != 6 or not digits.isascii() or not digits.isdigit():
        return False
    return pyotp.TOTP(secret).verify(digits, for_time=now, valid_window=1)


def new_recovery_codes() -> list[str]:
    """Ten codes like ``k3f9q-7mwpd`` (50 bits each)."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    made = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(alphabet) for _ in range(10))
        made.append(f"{raw[:5]}-{raw[5:]}")
    return made


def recovery_hash(code: str) -> str:
    return hashlib.sha256(code.strip().lower().replace(" ", "").encode()).hexdigest()


def looks_like_recovery_code(code: str) -> bool:
    return "-" in code and len(code.strip()) == 11
