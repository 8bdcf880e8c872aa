"""PESEL, the Polish national identification number: 11 digits YYMMDDZZZXQ.

The month carries the century (January is 01 for 1900-1999, 21 for 2000-2099, 41 for
2100-2199, 61 for 2200-2299, 81 for 1800-1899), X is odd for men and even for women, and Q is
the check digit: (10 - (sum of the first ten digits times 1, 3, 7, 9, 1, 3, 7, 9, 1, 3) mod 10)
mod 10. A patient's PESEL must be in their profile before an e-prescription or an e-ZLA.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Final, Literal

from consult.errors import Invalid

Sex = Literal["female", "male"]  # FHIR's Patient.gender values

# The PESEL's identifier system (HL7's OID of the Polish register): how FHIR names a patient by
# PESEL, in the record's export and in the results laboratories send.
PESEL_SYSTEM: Final = "urn:oid:2.16.840.1.113883.3.4424.1.1.616"

_WEIGHTS: Final = (1, 3, 7, 9, 1, 3, 7, 9, 1, 3)
# Month offset (the tens added to the month) -> the century's first year.
_CENTURIES: Final = {80: 1800, 0: 1900, 20: 2000, 40: 2100, 60: 2200}


@dataclass(frozen=True)
class Pesel:
    number: str
    born: date
    sex: Sex


def _check_digit(first_ten: str) -> int:
    return (10 - sum(int(d) * w for d, w in zip(first_ten, _WEIGHTS, strict=True)) % 10) % 10


def parse_pesel(raw: str, *, today: date | None = None) -> Pesel:
    """The PESEL's date of birth and sex, or ``Invalid`` with the reason as its code:
    ``pesel_not_digits``, ``pesel_invalid_length``, ``pesel_bad_checksum``, ``pesel_bad_date``
    (no such day, or, given ``today``, a birth in the future)."""
    number = raw.strip()
    if not number.isascii() or not number.isdigit():
        raise Invalid("a PESEL has digits only", code="pesel_not_digits")
    if len(number) != 11:
        raise Invalid("a PESEL has 11 digits", code="pesel_invalid_length")
    if _check_digit(number[:10]) != int(number[10]):
        raise Invalid("this PESEL's check digit is wrong (a typo?)", code="pesel_bad_checksum")
    born = _birth_date(number)
    if born is None or (today is not None and born > today):
        raise Invalid("this PESEL's date of birth is not a real date", code="pesel_bad_date")
    return Pesel(number=number, born=born, sex="male" if int(number[9]) % 2 else "female")


def _birth_date(number: str) -> date | None:
    coded_month = int(number[2:4])
    offset = coded_month // 20 * 20
    century = _CENTURIES.get(offset)
    if century is None:
        return None
    try:
        return date(century + int(number[:2]), coded_month - offset, int(number[4:6]))
    except ValueError:
        return None


def make_pesel(born: date, serial: int, sex: Sex) -> str:
    """A valid PESEL for ``born`` (1800-2299) and ``sex``: demo accounts and tests.
    ``serial`` (0-999) tells people born on one day apart."""
    offset = next(o for o, first in _CENTURIES.items() if first <= born.year < first + 100)
    sex_digit = (serial % 5) * 2 + (1 if sex == "male" else 0)
    birth = f"{born.year % 100:02d}{born.month + offset:02d}{born.day:02d}"
    first_ten = f"{birth}{serial % 1000:03d}{sex_digit}"
    return first_ten + str(_check_digit(first_ten))
