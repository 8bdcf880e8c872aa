"""The rule for a new password (NIST SP 800-63B §3.1.1.2): at least 12 characters, not a
common password, and nothing else (no required digits, cases or symbols: they make passwords
harder to remember, not to guess).

"Common" is the shipped list of the 30,000 most common leaked passwords
(data/common-passwords.txt, its origin and licence in data/COMMON-PASSWORDS.md), compared
without case, and also with the digits and symbols at either end taken off: "Password1234!"
is "password" with a counter and a mark, the first thing a guesser tries.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from consult.errors import Invalid

MIN_LENGTH = 12
MAX_LENGTH = 200  # argon2 hashes anything; this only bounds the work per request
_LIST = Path(__file__).parent / "data" / "common-passwords.txt"
_EDGES = "0123456789!@#$%^&*()-_=+[]{};:'\",.<>/?\\|`~ "


@cache
def common_passwords() -> frozenset[str]:
    return frozenset(_LIST.read_text(encoding="utf-8").split())


def is_common(password: str) -> bool:
    lowered = password.lower()
    known = common_passwords()
    stripped = lowered.strip(_EDGES)
    return lowered in known or (len(stripped) >= 4 and stripped in known)


def check_new_password(password: str, email: str = "") -> None:
    """Raise ``Invalid`` (400) with ``weak_password`` or ``common_password``."""
    if len(password) < MIN_LENGTH:
        raise Invalid(
            f"a password needs at least {MIN_LENGTH} characters (a few words make a good one)",
            code="weak_password",
            details={"min_length": MIN_LENGTH},
        )
    if len(password) > MAX_LENGTH:
        raise Invalid(f"a password has at most {MAX_LENGTH} characters", code="weak_password")
    if is_common(password) or (email and password.lower() == email.strip().lower()):
        raise Invalid(
            "this password is among the most common ones (or is your e-mail); choose another",
            code="common_password",
        )
