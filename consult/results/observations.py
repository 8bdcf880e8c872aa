"""One Observation of a report read into an ObservationDraft: its code (a coding is needed:
a value's history is kept by code), its value, the first reference range and the laboratory's
interpretation flag. Pure; problems go to ``Issues``."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final

from consult.results.drafts import ObservationDraft
from consult.results.flags import INTERPRETATION_SYSTEM
from consult.results.issues import Issues
from consult.results.texts import MAX_DISPLAY, coded, instant, text

OBSERVATION_STATUSES: Final = (
    "registered",
    "preliminary",
    "final",
    "amended",
    "corrected",
    "cancelled",
    "entered-in-error",
    "unknown",
)
MAX_VALUE = 1000
MAX_UNIT = 60
# value[x] kinds consult does not take, as FHIR names the elements.
_OTHER_VALUES: Final = (
    "valueBoolean",
    "valueRange",
    "valueRatio",
    "valueSampledData",
    "valueTime",
    "valueDateTime",
    "valuePeriod",
)
_TAKEN = "valueQuantity, valueInteger, valueString or valueCodeableConcept"


def observation(resource: Any, at: str, found: Issues) -> ObservationDraft | None:
    code = coded(resource.code, f"{at}.code", found, need_code=True)
    status = resource.status
    if status not in OBSERVATION_STATUSES:
        found.add(
            "value", f"status must be one of {', '.join(OBSERVATION_STATUSES)}", f"{at}.status"
        )
    value = _value(resource, at, found)
    low, high, range_text = _range(resource, at, found)
    period = resource.effectivePeriod
    effective = (
        instant(resource.effectiveDateTime)
        or instant(resource.effectiveInstant)
        or instant(period.start if period else None)
    )
    if code is None or value is None:
        return None
    kind, number, shown, comparator, unit = value
    return ObservationDraft(
        code=code,
        status=status or "unknown",
        value_kind=kind,
        value_number=number,
        value_text=shown,
        comparator=comparator,
        unit=unit,
        low=low,
        high=high,
        range_text=range_text,
        interpretation=_interpretation(resource, at, found),
        effective_at=effective,
    )


_Value = tuple[str, float | None, str | None, str | None, str | None]


def _value(resource: Any, at: str, found: Issues) -> _Value | None:
    """(kind, number, text, comparator, unit) of the value, or None when refused."""
    quantity = resource.valueQuantity
    if quantity is not None:
        if quantity.value is None:
            found.add("required", "valueQuantity needs a value", f"{at}.valueQuantity.value")
            return None
        comparator = quantity.comparator
        shown = f"{comparator or ''}{_decimal(quantity.value)}"
        unit = text(quantity.unit or quantity.code, MAX_UNIT, f"{at}.valueQuantity.unit", found)
        return "quantity", float(quantity.value), shown, comparator, unit
    if resource.valueInteger is not None:
        return "integer", float(resource.valueInteger), str(resource.valueInteger), None, None
    if resource.valueString is not None:
        said = text(resource.valueString, MAX_VALUE, f"{at}.valueString", found)
        return "string", None, said, None, None
    if resource.valueCodeableConcept is not None:
        concept = coded(
            resource.valueCodeableConcept, f"{at}.valueCodeableConcept", found, need_code=False
        )
        return "concept", None, concept.display if concept else None, None, None
    for name in _OTHER_VALUES:
        if getattr(resource, name) is not None:
            found.add("not-supported", f"{name} is not taken: send {_TAKEN}", f"{at}.{name}")
            return None
    if resource.dataAbsentReason is not None:
        reason = coded(resource.dataAbsentReason, f"{at}.dataAbsentReason", found, need_code=False)
        return "absent", None, reason.display if reason else None, None, None
    if resource.component:
        found.add(
            "not-supported",
            "components are not taken: send each as an Observation of its own",
            f"{at}.component",
        )
        return None
    found.add("required", f"a value is needed ({_TAKEN}), or a dataAbsentReason", at)
    return None


def _decimal(value: Decimal) -> str:
    """A decimal as the laboratory wrote it, never in exponent form."""
    return format(value, "f")


def _range(resource: Any, at: str, found: Issues) -> tuple[float | None, float | None, str | None]:
    """The first reference range: its bounds and its text (the bounds' own, when it has
    none: "4.0–10.0", "≤ 5.2", "≥ 40")."""
    ranges = resource.referenceRange or []
    if not ranges:
        return None, None, None
    first = ranges[0]
    low = first.low.value if first.low is not None else None
    high = first.high.value if first.high is not None else None
    shown = first.text
    if shown is None and low is not None and high is not None:
        shown = f"{_decimal(low)}–{_decimal(high)}"
    elif shown is None and low is not None:
        shown = f"≥ {_decimal(low)}"
    elif shown is None and high is not None:
        shown = f"≤ {_decimal(high)}"
    range_text = text(shown, MAX_DISPLAY, f"{at}.referenceRange[0].text", found)
    return (
        float(low) if low is not None else None,
        float(high) if high is not None else None,
        range_text,
    )


def _interpretation(resource: Any, at: str, found: Issues) -> str | None:
    """The laboratory's flag: the first interpretation's v3 ObservationInterpretation code (a
    coding of another system, or none, flags nothing)."""
    for concept in resource.interpretation or []:
        for coding in concept.coding or []:
            if coding.system == INTERPRETATION_SYSTEM and coding.code:
                return text(coding.code, 8, f"{at}.interpretation", found)
    return None
