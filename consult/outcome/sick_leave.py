"""Sick leave (e-ZLA) rules: the period, the recommendation, the letter codes, the employer.

The period may start at most 3 days before the day of issue, and the doctor states why when
it starts before it; it ends on or after its start. One certificate covers at most 182 days,
the longest period of sick pay (a longer one would never be paid, so it is a typo).
"""

from __future__ import annotations

from datetime import date, timedelta
from enum import IntEnum, StrEnum
from typing import Final

from consult.errors import Invalid

MAX_BACKDATE_DAYS: Final = 3
MAX_DAYS: Final = 182
_NIP_WEIGHTS: Final = (6, 5, 7, 2, 3, 4, 5, 6, 7)


class Recommendation(IntEnum):
    """The e-ZLA's "wskazania lekarskie"."""

    MUST_LIE_DOWN = 1
    MAY_WALK = 2


class LetterCode(StrEnum):
    """The letter codes the certificate may carry (the employer sees none of them but B)."""

    PREGNANCY = "B"
    TUBERCULOSIS = "D"
    INFECTIOUS_DISEASE = "E"


def check_period(start: date, end: date, issued_on: date, backdating_reason: str | None) -> int:
    """The period's length in days, or ``Invalid``: ``sick_leave_period_reversed``,
    ``sick_leave_backdated_too_far``, ``sick_leave_backdating_reason_required``,
    ``sick_leave_too_long``."""
    if end < start:
        raise Invalid("the sick leave ends before it starts", code="sick_leave_period_reversed")
    if start < issued_on - timedelta(days=MAX_BACKDATE_DAYS):
        raise Invalid(
            f"sick leave may start at most {MAX_BACKDATE_DAYS} days before the day of issue",
            code="sick_leave_backdated_too_far",
        )
    if start < issued_on and not (backdating_reason and backdating_reason.strip()):
        raise Invalid(
            "sick leave starting before the day of issue states why",
            code="sick_leave_backdating_reason_required",
        )
    days = (end - start).days + 1
    if days > MAX_DAYS:
        raise Invalid(
            f"one sick leave certificate covers at most {MAX_DAYS} days",
            code="sick_leave_too_long",
        )
    return days


def check_nip(raw: str) -> str:
    """The employer's tax id (NIP) as 10 digits (hyphens and spaces dropped), or ``Invalid``:
    ``nip_invalid_format`` or ``nip_bad_checksum`` (the weighted sum of the first nine digits
    mod 11 is the tenth; a sum giving 10 makes no NIP)."""
    number = raw.replace("-", "").replace(" ", "").strip()
    if len(number) != 10 or not number.isascii() or not number.isdigit():
        raise Invalid("a NIP has 10 digits", code="nip_invalid_format")
    check = sum(int(d) * w for d, w in zip(number, _NIP_WEIGHTS, strict=False)) % 11
    if check != int(number[9]):
        raise Invalid("this NIP's check digit is wrong", code="nip_bad_checksum")
    return number
