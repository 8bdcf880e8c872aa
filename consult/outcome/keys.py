"""The numbers a package of e-prescriptions and an e-referral carry: a 44-digit key (printed as
a barcode; the pharmacy or the clinic reads the document with it) and a 4-digit access code
(the patient gives it with their PESEL).

Both come from ``secrets``: a key or a code must not be guessable from another one. A key is
one of 10^44, so two equal keys are not expected; the unique index on the key column is what
guarantees it, and an insert that meets it retries with a new key.
"""

from __future__ import annotations

import re
import secrets
from typing import Final

KEY_DIGITS: Final = 44
CODE_DIGITS: Final = 4
_KEY: Final = re.compile(rf"[0-9]{{{KEY_DIGITS}}}")
_CODE: Final = re.compile(rf"[0-9]{{{CODE_DIGITS}}}")


def new_key() -> str:
    """44 random digits, leading zeros kept (the key is a string, never a number)."""
    return f"{secrets.randbelow(10**KEY_DIGITS):0{KEY_DIGITS}d}"


def new_access_code() -> str:
    """4 random digits, 0000-9999."""
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def is_key(value: str) -> bool:
    return _KEY.fullmatch(value) is not None


def is_access_code(value: str) -> bool:
    return _CODE.fullmatch(value) is not None
