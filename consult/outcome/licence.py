"""The doctor's licence number (numer prawa wykonywania zawodu, NPWZ), on every document.

The rule, as the Supreme Medical Chamber (Naczelna Izba Lekarska) publishes it for verifying
the number: seven digits KABCDEF, unique, carrying no information, never starting with 0; K is
the check digit, (A*1 + B*2 + C*3 + D*4 + E*5 + F*6) mod 11. Its own example: 5425740. A sum
giving 0 (a leading 0) or 10 (not one digit) makes no number, so such numbers are never issued.
"""

from __future__ import annotations

from consult.errors import Invalid


def _check_digit(body: str) -> int:
    return sum(int(d) * w for w, d in enumerate(body, start=1)) % 11


def check_licence(raw: str) -> str:
    """The licence number, or ``Invalid``: ``licence_invalid_format`` (not 7 digits, or
    starting with 0) or ``licence_bad_checksum``."""
    number = raw.strip()
    if len(number) != 7 or not number.isascii() or not number.isdigit() or number[0] == "0":
        raise Invalid(
            "a licence number has 7 digits and does not start with 0",
            code="licence_invalid_format",
        )
    if _check_digit(number[1:]) != int(number[0]):
        raise Invalid("this licence number's check digit is wrong", code="licence_bad_checksum")
    return number


def make_licence(body: int) -> str:
    """A valid licence number from six digits (``body``, 0-999999), or the next body that makes
    one (about 2 in 11 have no check digit): demo accounts and tests."""
    while True:
        digits = f"{body % 1_000_000:06d}"
        check = _check_digit(digits)
        if 0 < check < 10:
            return f"{check}{digits}"
        body += 1
