"""Whether a value is out of range (pure): the laboratory's own flag (an HL7 v3
ObservationInterpretation code) when it gave one, else the value against the reference range.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

INTERPRETATION_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"


class ValueFlag(StrEnum):
    HIGH = "high"
    LOW = "low"
    ABNORMAL = "abnormal"
    NORMAL = "normal"


class ValueFlagSource(StrEnum):
    LABORATORY = "laboratory"  # the interpretation the laboratory sent
    RANGE = "range"  # computed here: the value against the reference range


# The v3 codes consult reads as a flag; others (POS, NEG, S, R, ...) flag nothing.
_BY_CODE: Final = {
    "H": ValueFlag.HIGH,
    "HH": ValueFlag.HIGH,  # critically high
    "HU": ValueFlag.HIGH,  # significantly high
    ">": ValueFlag.HIGH,  # off scale high
    "L": ValueFlag.LOW,
    "LL": ValueFlag.LOW,
    "LU": ValueFlag.LOW,
    "<": ValueFlag.LOW,
    "A": ValueFlag.ABNORMAL,
    "AA": ValueFlag.ABNORMAL,  # critically abnormal
    "N": ValueFlag.NORMAL,
}
CRITICAL: Final = frozenset({"HH", "LL", "AA"})
OUT_OF_RANGE: Final = frozenset({ValueFlag.HIGH, ValueFlag.LOW, ValueFlag.ABNORMAL})


def flag(
    interpretation: str | None,
    value: float | None,
    comparator: str | None,
    low: float | None,
    high: float | None,
) -> tuple[ValueFlag | None, ValueFlagSource | None]:
    """The value's flag and where it comes from; (None, None) when neither the laboratory nor
    the range says (no range, a text value, or a value given only as a bound such as "<0.1")."""
    if interpretation is not None and interpretation in _BY_CODE:
        return _BY_CODE[interpretation], ValueFlagSource.LABORATORY
    if value is None or comparator is not None or (low is None and high is None):
        return None, None
    if low is not None and value < low:
        return ValueFlag.LOW, ValueFlagSource.RANGE
    if high is not None and value > high:
        return ValueFlag.HIGH, ValueFlagSource.RANGE
    return ValueFlag.NORMAL, ValueFlagSource.RANGE
